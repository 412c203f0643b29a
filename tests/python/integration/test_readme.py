"""The README's Python session runs as shown."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_python_session():
    text = README.read_text()
    blocks = re.findall(r"```python\n(>>> .*?)```", text, re.S)
    assert blocks, "the README has no Python session"
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for i, block in enumerate(blocks):
        runner.run(parser.get_doctest(block, {}, f"README block {i}", str(README), 0))
    results = runner.summarize(verbose=False)
    assert results.failed == 0 and results.attempted > 5

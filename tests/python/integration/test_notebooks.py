"""Every notebooks/*.ipynb, executed headless (nbclient, Debian's python3 kernel) against a throwaway PostgreSQL
seeded with realistic strategies: no cell may fail and each notebook must draw at least one plot. Rules files a
notebook saves go to a temporary directory ($STRATEGY_CONSUMER_RULES_DIR), never into the source tree."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from strategy_consumer import samples
from strategy_consumer.rule_authoring import RULES_DIR_VARIABLE
from strategy_consumer.postgres_client import PostgresClient
from strategy_consumer.rules import RuleSet
from strategy_consumer.services import find_binary, produce
from strategy_consumer.testing import create_test_strategy

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
STRATEGIES = 3000  # messages, about 12% of them re-discoveries of earlier ones


def suspicious() -> list[dict]:
    """A few strategies StrategyInspector warns about, so the outlier cells have something to show."""
    metrics = create_test_strategy()["performance_metrics"]
    return [create_test_strategy(symbol="BTC/USD", strategy_type="PIVOT", parameters={"period": p},
                                 performance_metrics={**metrics, **extra})
            for p, extra in ((7, {"total_trades": 11}), (9, {"win_rate": 0.94}), (11, {"sharpe_ratio": 4.6}))]


@pytest.fixture(scope="module")
def database(pg):
    name = pg.create_database("notebooks")
    client = PostgresClient(host=pg.host, port=pg.port, database=name, user=pg.user, max_connections=2)
    stream = list(samples.sample_stream(STRATEGIES, seed=2026, rediscover_ratio=0.12)) + suspicious()
    # In batches, as the consumer writes them: a re-discovery in a later batch updates the stored row.
    updated = 0
    for start in range(0, len(stream), 500):
        result = client.bulk_insert_strategies(stream[start:start + 500])
        assert result.failure_count == 0, result.failures[:3]
        updated += result.updated
    assert updated > 0
    return {"POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_DB": name, "POSTGRES_USER": pg.user,
            "POSTGRES_PASSWORD": ""}


# A rule the service once ran and has since dropped: the letters it left are what 03-rule-authoring replays.
OLD_RULES = """\
from strategy_consumer.rules import rule


@rule(description="the old bar: 60 trades")
def at_least_60_trades(s):
    trades = s.metric("total_trades")
    if trades is not None and trades < 60:
        return f"only {trades} trades"
"""


@pytest.fixture(scope="module")
def dead_letters(pg, kafka, tmp_path_factory):
    """A dead-letter topic as a service running OLD_RULES left it (and two invalid messages), written by the
    binary into a database of its own; the environment that points the notebooks at it."""
    suffix = uuid.uuid4().hex[:8]
    topic, dlq = f"nb-strategies-{suffix}", f"nb-dlq-{suffix}"
    kafka.create_topic(topic, 2)
    kafka.create_topic(dlq, 1)
    invalid = [{"symbol": "BTC/USD", "strategy_type": "PIVOT", "parameters": {"period": 99}, "score": 1.0},
               {"symbol": "ETH/USD", "strategy_type": "NOT_A_STRATEGY", "parameters": {}, "score": 0.5}]
    produce(kafka.bootstrap, topic, list(samples.sample_stream(300, seed=7)) + invalid)
    rules = tmp_path_factory.mktemp("old_rules") / "old_rules.py"
    rules.write_text(OLD_RULES)
    database = pg.create_database(f"nb_service_{suffix}")
    subprocess.run([find_binary("strategy-consumer"), f"--kafka_bootstrap_servers={kafka.bootstrap}",
                    f"--kafka_topic={topic}", f"--dlq_topic={dlq}", f"--kafka_group_id=service-{suffix}",
                    *pg.flags(database), "--http_port=0", "--idle_timeout_seconds=1", f"--rules={rules}"],
                   check=True, capture_output=True, timeout=120)
    return {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "KAFKA_DLQ_TOPIC": dlq, "KAFKA_GROUP_ID": f"nb-{suffix}"}


def kernel_manager(tmp_path: Path) -> AsyncKernelManager:
    """The python3 kernel on this interpreter (Debian's /usr/bin/python3 under scripts/test), whatever other
    kernel specs the machine has."""
    spec = tmp_path / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)


def kernel_environment(database: dict, dead_letters: dict, rules_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "KAFKA_", "JPY_", "DISPLAY"))}
    env.update(database)
    env.update(dead_letters)
    env[RULES_DIR_VARIABLE] = str(rules_dir)  # where 03-rule-authoring saves its rules file
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["MPLBACKEND"] = "Agg"  # never a GUI; the notebooks' %matplotlib inline renders PNGs through Agg
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # ipykernel's debugger warns on stderr otherwise
    return env


def png_outputs(nb) -> list[bytes]:
    return [base64.b64decode(out["data"]["image/png"])
            for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_and_plots(path, database, dead_letters, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, km=kernel_manager(tmp_path), timeout=120, allow_errors=False,
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    rules_dir = tmp_path / "rules"
    client.execute(env=kernel_environment(database, dead_letters, rules_dir))  # raises CellExecutionError naming the failing cell

    errors = [out for cell in nb.cells for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
    pngs = png_outputs(nb)
    assert pngs and all(p.startswith(b"\x89PNG") for p in pngs), f"{path.name} drew no plot"
    if os.environ.get("NOTEBOOK_PNG_DIR"):  # to look at the plots: NOTEBOOK_PNG_DIR=/tmp/plots
        out = Path(os.environ["NOTEBOOK_PNG_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        for i, png in enumerate(pngs, 1):
            (out / f"{path.stem}-{i}.png").write_bytes(png)
    if path.stem == "03-rule-authoring":
        # The file it saved is where the environment said, and loads as the service would load it.
        saved = sorted(rules_dir.glob("*.py"))
        assert [p.name for p in saved] == ["backtest_consistency.py"]
        assert RuleSet.load(saved).names == ["profit_factor_contradicts_return", "short_discovery_window"]
        text = "\n".join(o.get("text", "") for cell in nb.cells for o in cell.get("outputs", []))
        assert f"strategy-consumer --rules {ROOT / 'examples' / 'rules'} --rules {saved[0]}" in text
        # What would pass now: the old rule's letters replayed through today's rules, the invalid ones still fail.
        [line] = [t for t in text.splitlines() if "letters read from " + dead_letters["KAFKA_DLQ_TOPIC"] in t]
        read, replayed, passed, failing = (int(line.split(" letters read")[0]), int(line.split(": ")[1].split()[0]),
                                           int(line.split("replayed, ")[1].split()[0]),
                                           int(line.split("), ")[1].split()[0]))
        assert read == replayed >= 2 and passed > 0 and failing >= 2 and passed + failing == replayed, line


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:3] == ["01-strategy-overview.ipynb", "02-parameter-landscape.ipynb",
                                               "03-rule-authoring.ipynb"]

"""The type stub _core.pyi names exactly what the built module has."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import strategy_consumer
from strategy_consumer import _core

STUB = Path(strategy_consumer.__file__).with_name("_core.pyi")


def stub_names() -> dict[str, set[str]]:
    tree = ast.parse(STUB.read_text())
    out: dict[str, set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {n.name if isinstance(n, ast.FunctionDef) else n.target.id for n in node.body
                              if isinstance(n, (ast.FunctionDef, ast.AnnAssign))}
            out[""].add(node.name)
        elif isinstance(node, ast.FunctionDef):
            out[""].add(node.name)
        elif isinstance(node, ast.AnnAssign):
            out[""].add(node.target.id)
    return out


def module_names() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"": {n for n in dir(_core) if not n.startswith("_") or n == "__version__"}}
    for name in list(out[""]):
        obj = getattr(_core, name)
        if inspect.isclass(obj):
            out[name] = {n for n in vars(obj) if not n.startswith("_") or n == "__init__"}
    return out


def test_stub_matches_module():
    assert stub_names() == module_names()


def test_package_exports_are_explicit_and_importable():
    for name in strategy_consumer.__all__:
        assert hasattr(strategy_consumer, name), name
    from strategy_consumer.postgres_client import PostgresClient  # noqa: F401  (the seed's import paths)
    from strategy_consumer.strategy_inspector import StrategyInspector  # noqa: F401
    assert (Path(strategy_consumer.__file__).parent / "py.typed").exists()


def test_errors_derive_from_builtins():
    from strategy_consumer import errors
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.ConfigError, errors.StrategyConsumerError)
    assert issubclass(errors.FencedError, errors.DatabaseError)

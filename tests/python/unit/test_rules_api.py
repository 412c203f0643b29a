"""strategy_consumer.rules on its own (pure Python): the decorator, the read-only view, evaluation and loading."""

from __future__ import annotations

import os
import sys
import textwrap
from datetime import datetime, timezone

import pytest

from strategy_consumer import rules as rules_module
from strategy_consumer.rules import Issue, Rule, RuleLoadError, RuleSet, Strategy, rule

MESSAGE = {
    "symbol": "BTC/USD", "strategy_type": "MACD_CROSSOVER",
    "parameters": {"shortEmaPeriod": 12, "longEmaPeriod": 26, "signalPeriod": 9},
    "current_score": 0.85,
    "performance_metrics": {"total_return": 0.15, "sharpe_ratio": 1.2, "max_drawdown": -0.05, "win_rate": 0.65,
                            "profit_factor": 1.8, "total_trades": 150, "avg_trade_duration": 2.5},
    "discovery_symbol": "BTC/USD",
    "discovery_start_time": "2026-10-01T00:00:00Z", "discovery_end_time": "2026-10-31T12:00:00+02:00",
}


def record(**overrides):
    """A record dict as the C++ engine hands it over."""
    r = {"symbol": "BTC/USD", "strategy_type": "MACD_CROSSOVER",
         "parameters": {"shortEmaPeriod": 12, "longEmaPeriod": 26, "signalPeriod": 9}, "score": 0.85,
         "performance_metrics": {"total_trades": 150, "win_rate": 0.65}, "discovery_symbol": None,
         "discovery_start_us": None, "discovery_end_us": None, "strategy_hash": "abc"}
    r.update(overrides)
    return r


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


# ---- the decorator ----

def test_decorator_forms_and_defaults():
    @rule
    def plain(s):
        """Plain rule.

        More text."""

    @rule()
    def empty_call(s):
        pass

    @rule(name="custom-name.v2", description="explained", severity="warn", batch=True)
    def configured(ss):
        return [None] * len(ss)

    assert isinstance(plain, Rule) and plain.name == "plain" and plain.description == "Plain rule."
    assert plain.severity == "reject" and plain.batch is False
    assert empty_call.name == "empty_call" and empty_call.description == ""
    assert (configured.name, configured.description, configured.severity, configured.batch) == (
        "custom-name.v2", "explained", "warn", True)
    assert configured([1, 2]) == [None, None]  # still callable: analysts test their rules directly
    assert plain.__name__ == "plain" and "plain" in repr(plain)


@pytest.mark.parametrize("kwargs, message", [
    ({"severity": "error"}, "severity"),
    ({"name": "has space"}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 65}, "name"),
])
def test_decorator_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rule(**kwargs)(lambda s: None)


# ---- the view ----

def test_view_is_read_only_with_attributes_and_helpers():
    s = Strategy.from_message(MESSAGE)
    assert (s.symbol, s.strategy_type, s.score, s.current_score) == ("BTC/USD", "MACD_CROSSOVER", 0.85, 0.85)
    assert s.parameters["shortEmaPeriod"] == 12 and s.parameter("nope", 7) == 7
    assert s.metric("total_trades") == 150 and s.metric("nope") is None and s.metric("nope", 0) == 0
    assert s.discovery_start_time == datetime(2026, 10, 1, tzinfo=timezone.utc)
    assert s.discovery_end_time == datetime(2026, 10, 31, 10, 0, tzinfo=timezone.utc)
    with pytest.raises(AttributeError):
        s.symbol = "ETH/USD"
    with pytest.raises(TypeError):
        s.parameters["shortEmaPeriod"] = 1
    with pytest.raises(TypeError):
        s.performance_metrics["win_rate"] = 1.0
    bare = Strategy.from_record(record(performance_metrics=None, discovery_start_us=86_400_000_000))
    assert bare.performance_metrics is None and bare.metric("win_rate", -1) == -1
    assert bare.discovery_start_time == datetime(1970, 1, 2, tzinfo=timezone.utc) and bare.discovery_end_time is None


def test_view_of_a_record_does_not_let_rules_change_the_record():
    r = record()
    s = Strategy.from_record(r)
    with pytest.raises(TypeError):
        s.parameters["signalPeriod"] = 99
    assert r["parameters"]["signalPeriod"] == 9


# ---- evaluation ----

def test_verdicts_pass_refuse_and_explain():
    @rule(description="described")
    def verdicts(s):
        return {1: None, 2: True, 3: False, 4: "too risky", 5: "", 6: 42}[s.score]

    @rule
    def undescribed(s):
        return s.score != 3

    ev = RuleSet([verdicts, undescribed]).evaluate([record(score=float(i)) for i in range(1, 7)])
    by = {(i.rule, i.index): i for i in ev.issues}
    assert set(by) == {("verdicts", 2), ("verdicts", 3), ("verdicts", 4), ("verdicts", 5),
                       ("undescribed", 2)}
    assert by["verdicts", 2] == Issue(2, "verdicts", "reject", "described", False)
    assert by["verdicts", 3].message == "too risky"
    assert by["verdicts", 4].message == "described"  # an empty reason is a plain False
    assert by["verdicts", 5].error and "rule returned int" in by["verdicts", 5].message
    assert by["undescribed", 2].message == "refused by rule undescribed"
    stats = {s.rule: s for s in ev.stats}
    assert stats["verdicts"][1:5] == (6, 3, 0, 1)
    assert stats["undescribed"][1:5] == (6, 1, 0, 0)
    assert all(s.seconds >= 0 for s in ev.stats)
    assert [i.rule for i in ev.rejections(3)] == ["verdicts"] and ev.warnings(3) == []


def test_a_raising_rule_refuses_with_the_exception_text_and_where():
    @rule
    def divides(s):
        return s.metric("total_trades") / s.metric("win_rate")

    ev = RuleSet([divides]).evaluate([record(), record(performance_metrics={"total_trades": 5, "win_rate": 0})])
    assert ev.issues == [Issue(0, "divides", "reject", ev.issues[0].message, True),
                         Issue(1, "divides", "reject", ev.issues[1].message, True)]
    # the first returned a float (not a verdict), the second raised
    assert "rule returned float" in ev.issues[0].message
    assert ev.issues[1].message.startswith("ZeroDivisionError: division by zero (at test_rules_api.py:")
    assert "in divides" in ev.issues[1].message
    assert ev.stats[0][1:5] == (2, 0, 0, 2)


def test_system_exit_in_a_rule_is_an_error_not_an_exit():
    @rule
    def exits(s):
        sys.exit(3)

    ev = RuleSet([exits]).evaluate([record()])
    assert ev.issues[0].error and ev.issues[0].message.startswith("SystemExit: 3")


def test_warn_rules_warn_even_when_they_fail():
    @rule(severity="warn")
    def cautious(s):
        if s.score > 2:
            raise KeyError("boom")
        return s.score < 1 or "score between 1 and 2"

    ev = RuleSet([cautious]).evaluate([record(score=0.5), record(score=1.5), record(score=3.0)])
    assert [(i.index, i.severity, i.error) for i in ev.issues] == [(1, "warn", False), (2, "warn", True)]
    assert ev.issues[0].message == "score between 1 and 2"
    assert ev.issues[1].message.startswith("KeyError: 'boom'")
    assert ev.stats[0][1:5] == (3, 0, 1, 1)


def test_batch_rules_get_the_list_once_and_answer_per_item():
    calls = []

    @rule(batch=True, description="odd scores")
    def batched(strategies):
        calls.append(len(strategies))
        return [None if s.score % 2 == 0 else False for s in strategies]

    @rule(batch=True)
    def short_answer(strategies):
        return [None]

    @rule(batch=True)
    def raises(strategies):
        raise RuntimeError("no")

    ev = RuleSet([batched, short_answer, raises]).evaluate([record(score=float(i)) for i in range(4)])
    assert calls == [4]
    assert [(i.rule, i.index) for i in ev.issues if i.rule == "batched"] == [("batched", 1), ("batched", 3)]
    wrong = [i for i in ev.issues if i.rule == "short_answer"]
    assert len(wrong) == 4 and all(i.error for i in wrong)
    assert "returned 1 verdict(s) for 4 strategies" in wrong[0].message
    raised = [i.message for i in ev.issues if i.rule == "raises"]
    assert len(raised) == 4
    assert all(m.startswith("RuntimeError: no (at test_rules_api.py:") and m.endswith("in raises)") for m in raised)
    assert {s.rule: s[1:5] for s in ev.stats} == {"batched": (4, 2, 0, 0), "short_answer": (4, 0, 0, 4),
                                                   "raises": (4, 0, 0, 4)}


def test_long_reasons_are_cut():
    @rule
    def verbose(s):
        return "x" * 5000

    message = RuleSet([verbose]).evaluate([record()]).issues[0].message
    assert len(message) == 500 and message.endswith("...")


def test_duplicate_rule_names_are_refused():
    a = rule(name="same")(lambda s: None)
    b = rule(name="same")(lambda s: None)
    with pytest.raises(RuleLoadError, match="two rules are named 'same'"):
        RuleSet([a, b])
    assert len(RuleSet([a, a])) == 1


def test_check_takes_a_message_a_record_or_a_view():
    @rule
    def few(s):
        return s.metric("total_trades", 0) >= 100 or "few trades"

    rs = RuleSet([few])
    assert rs.check(MESSAGE) == []
    assert [i.message for i in rs.check(record(performance_metrics={"total_trades": 3}))] == ["few trades"]
    assert rs.check(Strategy.from_message(MESSAGE)) == []


# ---- loading ----

RULES_FILE = """
    from strategy_consumer.rules import rule

    LIMIT = {limit}

    @rule
    def limit(s):
        return s.score <= LIMIT or f"score above {{LIMIT}}"

    def helper(s):  # not a rule
        return False
"""


def test_load_a_file_a_directory_a_module_and_objects(tmp_path, monkeypatch):
    one = write(tmp_path / "one.py", RULES_FILE.format(limit=1))
    rules_dir = tmp_path / "dir"
    rules_dir.mkdir()
    write(rules_dir / "b_second.py", "from strategy_consumer.rules import rule\n@rule\ndef second(s): pass\n")
    write(rules_dir / "a_first.py", "from strategy_consumer.rules import rule\n@rule\ndef first(s): pass\n")
    write(rules_dir / "_helpers.py", "raise RuntimeError('never loaded')\n")
    package_dir = tmp_path / "site"
    package_dir.mkdir()
    write(package_dir / "team_rules_for_test.py",
          "from strategy_consumer.rules import rule\n@rule(severity='warn')\ndef team(s): pass\n")
    monkeypatch.syspath_prepend(str(package_dir))
    inline = rule(name="inline")(lambda s: None)

    rs = RuleSet.load([str(one), rules_dir, "team_rules_for_test", inline])
    assert rs.names == ["limit", "first", "second", "team", "inline"]
    assert rs.files == (str(one), str(rules_dir), str(rules_dir / "a_first.py"), str(rules_dir / "b_second.py"),
                        str(package_dir / "team_rules_for_test.py"))
    import team_rules_for_test
    assert RuleSet.load([team_rules_for_test]).names == ["team"]
    assert [i.message for i in rs.evaluate([record(score=2.0)]).issues] == ["score above 1"]


def test_files_are_compiled_afresh_on_every_load(tmp_path):
    path = write(tmp_path / "rules.py", RULES_FILE.format(limit=1))
    stat = path.stat()
    assert RuleSet.load([path]).evaluate([record(score=2.0)]).issues
    # Same size, same mtime: a bytecode cache keyed on them would serve the old version.
    write(path, RULES_FILE.format(limit=5))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert RuleSet.load([path]).evaluate([record(score=2.0)]).issues == []
    assert not (tmp_path / "__pycache__").exists()


def test_a_module_name_is_reloaded(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    module_file = write(tmp_path / "reloaded_rules_for_test.py", RULES_FILE.format(limit=1))
    assert RuleSet.load(["reloaded_rules_for_test"]).evaluate([record(score=2.0)]).issues
    write(module_file, RULES_FILE.format(limit=10) + "    # longer: a new size for the bytecode check\n")
    assert RuleSet.load(["reloaded_rules_for_test"]).evaluate([record(score=2.0)]).issues == []


@pytest.mark.parametrize("text, expected", [
    ("from strategy_consumer.rules import rule\n\n@rule\ndef broken(s)\n    return None\n",
     r"bad\.py:4: SyntaxError: expected ':'"),
    ("from strategy_consumer.rules import rule\nimport no_such_module_anywhere\n",
     r"bad\.py:2: ModuleNotFoundError: No module named 'no_such_module_anywhere'"),
    ("x = 1\n\ndef f():\n    return 1 / 0\n\nf()\n", r"bad\.py:4: ZeroDivisionError: division by zero"),
    ("from strategy_consumer.rules import rule\n@rule(severity='fatal')\ndef f(s): pass\n",
     r"bad\.py:2: ValueError: @rule: severity must be"),
    ("def not_a_rule(s):\n    return False\n", r"bad\.py: defines no rules"),
    ("import sys\nsys.exit(4)\n", r"bad\.py:2: SystemExit: 4"),
])
def test_load_errors_name_the_file_and_line(tmp_path, text, expected):
    path = write(tmp_path / "bad.py", text)
    with pytest.raises(RuleLoadError, match=expected) as caught:
        RuleSet.load([path])
    assert caught.value.source == str(path)
    assert isinstance(caught.value, ValueError)
    # A file that failed leaves no half-run module behind.
    assert not [m for m in sys.modules if m.startswith("_strategy_rules_bad_")]


def test_missing_sources_and_bad_types(tmp_path):
    with pytest.raises(RuleLoadError, match=r"nowhere\.py: no such file"):
        RuleSet.load([str(tmp_path / "nowhere.py")])
    with pytest.raises(RuleLoadError, match=r"no_such_rules_module: cannot import: ModuleNotFoundError"):
        RuleSet.load(["no_such_rules_module"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuleLoadError, match="a directory without rule files"):
        RuleSet.load([empty])
    with pytest.raises(RuleLoadError, match="a rules source is"):
        RuleSet.load([42])


def test_the_engine_entry_point_is_ruleset_load(tmp_path):
    path = write(tmp_path / "r.py", RULES_FILE.format(limit=1))
    assert rules_module.load_rule_set([str(path)]).names == ["limit"]
    assert set(rules_module.__all__) >= {"rule", "RuleSet", "Strategy", "RuleLoadError", "load_rule_set"}


def test_the_example_rules_load_and_mean_what_they_say():
    from pathlib import Path
    examples = Path(__file__).resolve().parents[3] / "examples" / "rules"
    rs = RuleSet.load([examples])
    assert rs.names == ["crossover_periods_inverted", "too_few_trades", "suspiciously_perfect_win_rate",
                        "drawdown_large_for_return"]
    metrics = dict(MESSAGE["performance_metrics"])
    good = Strategy.from_message(MESSAGE)
    assert rs.check(good) == []
    cases = {
        "too_few_trades": dict(MESSAGE, performance_metrics=dict(metrics, total_trades=12)),
        "suspiciously_perfect_win_rate": dict(MESSAGE, performance_metrics=dict(metrics, win_rate=0.99)),
        "drawdown_large_for_return": dict(MESSAGE, performance_metrics=dict(metrics, max_drawdown=-0.5)),
        "crossover_periods_inverted": dict(MESSAGE, strategy_type="DOUBLE_EMA_CROSSOVER",
                                           parameters={"shortEmaPeriod": 30, "longEmaPeriod": 20}),
    }
    for name, message in cases.items():
        issues = rs.check(message)
        assert [i.rule for i in issues] == [name], name
        assert issues[0].severity == ("warn" if name == "drawdown_large_for_return" else "reject")
        assert not issues[0].error
    assert "shortEmaPeriod=30 is not shorter than longEmaPeriod=20" in rs.check(
        cases["crossover_periods_inverted"])[0].message

"""The dashboards and alerts that ship with the service name only metrics a running consumer exports. (promtool's
checks and unit tests of the alerts, and the KEDA ScaledObject, are tests/python/unit/test_deploy.py.)"""

from __future__ import annotations

import json
import re

import yaml

from strategy_consumer.services import repo_root

from test_operations import Service, all_committed, invalid_for_validation, strategy, wait_for

ROOT = repo_root()
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "strategy-consumer.json"
# Series that come from elsewhere: a drain job has exited before any scrape, so its failure is kube-state-metrics'.
EXTERNAL_SERIES = {"kube_job_status_failed"}


def expressions() -> dict[str, list[str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    rules = yaml.safe_load(ALERTS.read_text())["groups"]
    return {
        "dashboard": [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        + [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"],
        "alerts": [r["expr"] for g in rules for r in g["rules"]],
    }


def series_named(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:strategy_consumer|kube)_[a-z0-9_]+)\b", expr))


def exported_names(metrics_text: str) -> set[str]:
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names


def test_every_metric_in_the_dashboard_and_the_alerts_is_exported(env):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "strategy-consumer" and len(dashboard["panels"]) >= 8
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("throughput", "lag", "latency", "dead letters", "rule", "stalls", "retries"):
        assert topic in titles, topic

    env.produce([strategy(i) for i in range(20)] + [b"{broken", invalid_for_validation(3)], partition=0)
    rules = str(ROOT / "examples" / "rules")
    with Service(env.flags(f"--rules={rules}", "--kafka_property=statistics.interval.ms=500")) as svc:
        svc.wait_http()
        wait_for("all committed", lambda: all_committed(env), timeout=90)
        wait_for("lag series", lambda: "strategy_consumer_consumer_lag_messages{" in svc.get("/metrics")[1],
                 timeout=30)
        exported = exported_names(svc.get("/metrics")[1])
        assert svc.stop() == 0
    assert "strategy_consumer_rule_evaluations_total" in exported  # with rules, the rule families are there
    for where, exprs in expressions().items():
        named = set().union(*(series_named(e) for e in exprs))
        assert named, where
        unknown = named - exported - EXTERNAL_SERIES
        assert not unknown, f"{where} names series the service does not export: {sorted(unknown)}"

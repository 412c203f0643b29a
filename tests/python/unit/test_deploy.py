"""The files that deploy the service, checked without running it: the Kubernetes manifests (linted, and saying what
operators expect), the KEDA ScaledObject, the Dockerfile against the package lists and the binary's libraries, and
the Prometheus alerts (promtool check, and promtool's unit tests on synthetic series)."""

from __future__ import annotations

import os
import re
import subprocess

import yaml

from strategy_consumer.services import find_binary, repo_root

ROOT = repo_root()
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
ALERT_TESTS = ROOT / "tests" / "data" / "prometheus" / "alerts_test.yaml"


def manifests() -> dict[str, dict]:
    out = {}
    for path in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out[doc["kind"]] = doc
    return out


def test_kubernetes_manifests_lint_and_say_what_operators_expect():
    lint = subprocess.run(["yamllint", "--strict", str(ROOT / "deploy")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    m = manifests()
    assert set(m) == {"ConfigMap", "Secret", "Deployment", "CronJob", "ScaledObject"}  # KEDA: below

    dep = m["Deployment"]
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080}]
    live, ready = c["livenessProbe"], c["readinessProbe"]
    assert live["httpGet"]["path"] == "/health" and ready["httpGet"]["path"] == "/ready"
    assert (live["initialDelaySeconds"], live["periodSeconds"]) == (30, 10)
    assert (ready["initialDelaySeconds"], ready["periodSeconds"]) == (5, 5)
    assert pod["securityContext"]["runAsNonRoot"] is True

    cron = m["CronJob"]
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    job_pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (jc,) = job_pod["containers"]
    flags = dict(a.split("=", 1) for a in jc["args"])
    assert float(flags["--idle_timeout_seconds"]) > 0 and float(flags["--max_processing_time_seconds"]) > 0
    assert job_pod["restartPolicy"] == "Never" and job_pod["securityContext"]["runAsNonRoot"] is True

    # Every setting comes from the ConfigMap and the Secret, under the names the binary reads.
    config, secret = m["ConfigMap"]["data"], m["Secret"]["stringData"]
    assert set(config) <= {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC_STRATEGIES", "KAFKA_GROUP_ID", "POSTGRES_HOST",
                           "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "BATCH_SIZE",
                           "BATCH_TIMEOUT_SECONDS", "MAX_RETRIES"}
    assert "POSTGRES_PASSWORD" in secret and "POSTGRES_PASSWORD" not in config
    for container in (c, jc):
        refs = {(next(iter(r)), next(iter(r.values()))["name"]) for r in container["envFrom"]}
        assert refs == {("configMapRef", m["ConfigMap"]["metadata"]["name"]),
                        ("secretRef", m["Secret"]["metadata"]["name"])}
    # The flags in the manifests are flags the binary knows.
    help_text = subprocess.run([find_binary("strategy-consumer"), "--help"], capture_output=True, text=True).stdout
    for arg in c["args"] + jc["args"]:
        assert arg.split("=", 1)[0] in help_text, arg


def packages(name: str) -> list[str]:
    lines = (ROOT / "deps" / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_dockerfile_installs_exactly_the_package_lists():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2, "multi-stage: build, then runtime"
    build, runtime = stages
    assert build.startswith("debian:bookworm-slim AS build") and runtime.startswith("debian:bookworm-slim")
    # Build stage: the project's own setup script, which installs the building part of deps/debian-packages.txt
    # (the lines above "#### tests") and nothing else.
    assert re.search(r"^RUN scripts/setup --build\b", build, flags=re.M)
    assert "COPY deps/ deps/" in build and "COPY scripts/ scripts/" in build
    common = (ROOT / "scripts" / "lib" / "common.sh").read_text()
    assert re.search(r'debian_packages\(\) \{ grep .*"\$ROOT/deps/\$\{1:-debian-packages.txt\}"', common)
    setup = (ROOT / "scripts" / "setup").read_text()
    assert 'list="${1:-debian-packages.txt}"' in setup and 'done < <(packages)' in setup
    assert "sed '/^#### tests/q' \"$ROOT/deps/$list\"" in setup and 'debian_packages "$list"' in setup
    listed = (ROOT / "deps" / "debian-packages.txt").read_text().splitlines()
    building = set(line for line in listed[:listed.index("#### tests, the demo, the benchmarks and the notebooks")]
                   if line and not line.startswith("#"))
    assert {"build-essential", "cmake", "librdkafka-dev", "libpqxx-dev", "pybind11-dev", "python3-dev",
            "libprotobuf-dev", "protobuf-compiler"} <= building
    assert not building & {"postgresql", "python3-pandas", "prometheus", "python3-pytest"}
    assert '"${missing[@]}"' in setup
    assert re.search(r"cmake --preset default\b", build) and "--target strategy-consumer" in build
    # Runtime stage: exactly deps/debian-runtime-packages.txt.
    assert "COPY deps/debian-runtime-packages.txt /tmp/debian-runtime-packages.txt" in runtime
    assert "xargs apt-get install" in runtime
    # No package is named anywhere in the Dockerfile itself: the lists are the only source.
    for pkg in set(packages("debian-packages.txt")) | set(packages("debian-runtime-packages.txt")):
        assert not re.search(rf"(?<![\w.-]){re.escape(pkg)}(?![\w.-])", "\n".join(
            line for line in text.splitlines() if line.startswith(("RUN", "    &&", "       |"))
            and "apt-get" in line)), pkg
    assert re.search(r"^USER 10001", runtime, flags=re.M)
    assert re.search(r"^EXPOSE 8080$", runtime, flags=re.M)
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD curl -fsS .*http://127\.0\.0\.1:8080/health", runtime, flags=re.M)
    assert "curl" in packages("debian-runtime-packages.txt")


def test_runtime_package_list_provides_every_library_of_the_binary():
    runtime = set(packages("debian-runtime-packages.txt"))
    full = set(packages("debian-packages.txt"))
    assert not runtime & {"build-essential", "cmake", "libgtest-dev"}, "the runtime stage has no build tools"
    # Each runtime package is a real package of this distribution (installed here as a dependency of the list).
    for pkg in runtime:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        assert "install ok installed" in r.stdout, f"{pkg}: not installed on a machine set up from the list"
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                        subprocess.run(["readelf", "-d", find_binary("strategy-consumer")], capture_output=True,
                                       text=True, check=True).stdout)
    assert "libcpp-httplib.so.0.11" in needed
    assert "libjemalloc.so.2" in needed, "the binary's allocator (cpp/CMakeLists.txt) was not linked"
    for lib in needed:
        path = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
        match = re.search(rf"^\s+{re.escape(lib)} \(libc6,x86-64\) => (\S+)$", path, flags=re.M)
        assert match, lib
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(match[1])], capture_output=True, text=True)
        if owner.returncode != 0:  # merged /usr: dpkg knows the /lib path
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(match[1]).replace("/usr/lib/", "/lib/", 1)],
                                   capture_output=True, text=True)
        package = owner.stdout.split(":", 1)[0]
        assert package in runtime, f"{lib} comes from {package}, which deps/debian-runtime-packages.txt lacks"
    # Their -dev counterparts are what the full list builds with.
    assert {"libspdlog-dev", "librdkafka-dev", "libpqxx-dev", "libcpp-httplib-dev", "libssl-dev"} <= full



def test_the_binary_allocator_gives_freed_pages_back_within_a_second():
    # jemalloc prints its options at exit with stats_print; the binary's own malloc_conf (cpp/app/main.cpp) sets
    # the decay, the environment's MALLOC_CONF adds to it.
    run = subprocess.run([find_binary("strategy-consumer"), "--help"], capture_output=True, text=True,
                         env={**os.environ, "MALLOC_CONF": "stats_print:true"}, check=True)
    assert "Version: \"5." in run.stderr, "jemalloc is not the binary's allocator"
    assert re.search(r"^\s*opt\.dirty_decay_ms: 1000\b", run.stderr, flags=re.M), run.stderr[:2000]
    assert re.search(r"^\s*opt\.muzzy_decay_ms: 0\b", run.stderr, flags=re.M)


def test_alert_rules_check_and_pass_their_unit_tests():
    check = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 6 rules found" in check.stdout
    unit = subprocess.run(["promtool", "test", "rules", ALERT_TESTS.name], cwd=ALERT_TESTS.parent,
                          capture_output=True, text=True)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    # Every alert is exercised by the unit tests.
    alerts = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    tested = {t["alertname"] for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
              for t in case["alert_rule_test"]}
    assert alerts == tested == {"StrategyConsumerLagGrowing", "StrategyConsumerStalled",
                                "StrategyConsumerDeadLetterRateHigh", "StrategyConsumerNoCommitWhileLagging",
                                "StrategyConsumerRuleErrors", "StrategyConsumerDrainJobFailed"}


def test_keda_scaled_object_scales_the_deployment_on_the_groups_lag():
    m = manifests()
    scaled, deployment, config = m["ScaledObject"], m["Deployment"], m["ConfigMap"]["data"]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    # The group, topic and brokers the Deployment's consumers use (the ConfigMap), so the lag is theirs.
    assert meta["consumerGroup"] == config["KAFKA_GROUP_ID"]
    assert meta["topic"] == config["KAFKA_TOPIC_STRATEGIES"]
    assert meta["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    # Never more consumers than partitions: idle consumers are not asked for, and the ceiling says so.
    assert meta["allowIdleConsumers"] == "false"
    assert int(meta["lagThreshold"]) >= int(config["BATCH_SIZE"])
    assert "partition" in (ROOT / "deploy" / "kubernetes" / "scaledobject.yaml").read_text().split("apiVersion")[0]

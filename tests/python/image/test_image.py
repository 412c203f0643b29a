"""The container image, built and run for real: scripts/build-image builds it (podman, no Docker engine), then the
image drains strategies from the dev broker into a throwaway PostgreSQL, both on the host (--network=host).

ctest label `image` (it builds the image, minutes on a cold cache): `scripts/test -LE image` runs everything else.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from strategy_consumer.services import free_port
from strategy_consumer.testing import create_test_strategies

ROOT = Path(__file__).resolve().parents[3]
PODMAN = str(ROOT / "scripts" / "podman")  # podman with runc and the machine's open-files limit
UID_GID = 10001  # deploy/kubernetes: securityContext runAsUser and runAsGroup


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}: exit {result.returncode}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def image() -> str:
    """strategy-consumer:<version>, (re)built from this tree by scripts/build-image."""
    result = subprocess.run([str(ROOT / "scripts" / "build-image")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=3000)
    assert result.returncode == 0, f"scripts/build-image failed (exit {result.returncode}):\n{result.stderr[-6000:]}"
    name = result.stdout.strip().splitlines()[-1]
    version = next(line for line in (ROOT / "CMakeLists.txt").read_text().splitlines()
                   if line.startswith("project(")).split("VERSION ")[1].split()[0]
    assert name == f"strategy-consumer:{version}"
    return name


@pytest.fixture
def container_name():
    """A unique container name; the container is removed whatever the test did."""
    name = f"strategy-consumer-test-{uuid.uuid4().hex[:10]}"
    yield name
    podman("rm", "--force", "--time", "5", name, check=False)


def test_image_keeps_docker_settings_and_the_non_root_user(image):
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    config = inspected["Config"]
    # --format docker: the OCI format would have dropped the HEALTHCHECK (podman shows it beside Config).
    healthcheck = inspected.get("Healthcheck") or config.get("Healthcheck") or {}
    assert healthcheck.get("Test", [""])[-1].startswith("curl -fsS -o /dev/null http://127.0.0.1:8080/health"), \
        inspected
    assert config["User"] == f"{UID_GID}:{UID_GID}"
    assert config["Entrypoint"] == ["/usr/local/bin/strategy-consumer"]
    # The user and the group both exist under those ids (`useradd --user-group` used to give the group 999).
    out = podman("run", "--rm", "--entrypoint", "getent", image, "passwd", str(UID_GID)).stdout
    assert out.startswith(f"strategy-consumer:x:{UID_GID}:{UID_GID}:"), out
    out = podman("run", "--rm", "--entrypoint", "getent", image, "group", str(UID_GID)).stdout
    assert out.startswith(f"strategy-consumer:x:{UID_GID}:"), out


def test_help(image):
    result = podman("run", "--rm", image, "--help")
    for flag in ("--kafka_bootstrap_servers", "--postgres_host", "--idle_timeout_seconds", "--http_port"):
        assert flag in result.stdout, flag


def test_drains_the_dev_broker_into_postgres_as_uid_10001(image, env, container_name):
    produced = env.produce(create_test_strategies(300, seed=16))
    http_port = free_port()
    # The flags the suite gives the binary on the host (broker and database on 127.0.0.1), less the program.
    args = env.flags(f"--http_port={http_port}", "--http_host=127.0.0.1", "--idle_timeout_seconds=5")[1:]
    podman("run", "--detach", "--name", container_name, "--network=host", image, *args)

    # /health answered from inside the container, by its own curl, while the drain runs.
    deadline, health = time.time() + 60, None
    while time.time() < deadline:
        health = podman("exec", container_name, "curl", "-fsS", f"http://127.0.0.1:{http_port}/health", check=False)
        if health.returncode == 0:
            break
        state = podman("inspect", "--format", "{{.State.Running}}", container_name).stdout.strip()
        assert state == "true", "the container stopped before /health answered:\n" + \
            podman("logs", container_name, check=False).stderr[-4000:]
        time.sleep(0.2)
    assert health is not None and health.returncode == 0, health.stderr if health else "never tried"

    # The process (PID 1 of the container: the ENTRYPOINT's exec form) runs as 10001:10001, not root.
    status = podman("exec", container_name, "cat", "/proc/1/status").stdout
    ids = {line.split(":")[0]: line.split()[1:] for line in status.splitlines() if line.startswith(("Uid", "Gid"))}
    assert ids == {"Uid": [str(UID_GID)] * 4, "Gid": [str(UID_GID)] * 4}, ids
    cmdline = podman("exec", container_name, "cat", "/proc/1/cmdline").stdout
    assert cmdline.split("\0")[0] == "/usr/local/bin/strategy-consumer", cmdline

    exit_code = podman("wait", container_name, timeout=180).stdout.strip()
    logs = podman("logs", container_name, check=False)
    assert exit_code == "0", f"exit {exit_code}\n{logs.stderr[-4000:]}"

    # Every message produced is a row, and the stored offsets cover them all.
    assert env.query("SELECT count(*) FROM strategies")[0][0] == produced == 300
    assert sum(env.stored_offsets().values()) == produced

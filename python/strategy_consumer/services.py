"""Throwaway PostgreSQL and Kafka-protocol dev broker, for tests, the demo and the benchmarks.

Both listen on 127.0.0.1 only, on ports nobody else holds, and are stopped by ``stop()`` or by leaving the
``with`` block. PostgreSQL runs from Debian's ``postgresql`` package as the ``postgres`` user (``initdb`` refuses
root) in a temporary directory; the broker is the project's ``strategy-kafka-dev`` (librdkafka's mock cluster).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterable, Optional

__all__ = ["PostgresServer", "DevBroker", "find_binary", "free_port", "repo_root"]

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin",)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def find_binary(name: str) -> str:
    """Path of a project binary: $STRATEGY_CONSUMER_BIN / $STRATEGY_KAFKA_DEV, else the build tree, else PATH."""
    env = {"strategy-consumer": "STRATEGY_CONSUMER_BIN", "strategy-kafka-dev": "STRATEGY_KAFKA_DEV"}.get(name)
    if env and os.environ.get(env):
        return os.environ[env]
    built = repo_root() / "build" / "cpp" / name
    if built.exists():
        return str(built)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"{name} not found: build the project (scripts/build) or set ${env}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    raise FileNotFoundError("PostgreSQL 15 server binaries not found: apt-get install postgresql")


class PostgresServer:
    """A PostgreSQL 15 cluster of its own: ``with PostgresServer() as pg: pg.dsn()``.

    ``fsync=False`` (the default) makes tests fast; the benchmarks keep it on.
    """

    def __init__(self, fsync: bool = False, settings: Optional[dict] = None):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user = "postgres"
        self.password = ""
        self.fsync = fsync
        self.settings = dict(settings or {})
        self.dir: Optional[Path] = None
        self._bin = _pg_bin()
        self._as_root = os.geteuid() == 0

    # The server must not run as root: as root we hand the directory to the postgres user.
    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        if self._as_root:
            args = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)

    def start(self) -> "PostgresServer":
        self.dir = Path(tempfile.mkdtemp(prefix="strategy-consumer-pg-"))
        if self._as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run([str(self._bin / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", self.user,
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        self._pg_ctl_start()
        return self

    def _options(self) -> str:
        opts = {"listen_addresses": "127.0.0.1", "port": str(self.port), "unix_socket_directories": str(self.dir),
                "fsync": "on" if self.fsync else "off", "synchronous_commit": "on" if self.fsync else "off",
                "full_page_writes": "on" if self.fsync else "off", "max_connections": "100", **self.settings}
        return " ".join(f"-c {k}={v}" for k, v in opts.items())

    def _pg_ctl_start(self) -> None:
        self._run([str(self._bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"),
                   "-o", self._options(), "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        if self.dir is None:
            return
        try:
            self._run([str(self._bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop"])
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def pause(self, mode: str = "fast") -> None:
        """Stops the server but keeps its data (``resume()`` starts it again on the same port)."""
        self._run([str(self._bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop"])

    def resume(self) -> None:
        self._pg_ctl_start()

    def restart(self, mode: str = "immediate") -> None:
        self.pause(mode)
        self.resume()

    def log(self) -> str:
        try:
            return (self.dir / "server.log").read_text(errors="replace")
        except (OSError, TypeError):
            return ""

    def dsn(self, database: str = "postgres") -> str:
        return f"host={self.host} port={self.port} dbname={database} user={self.user}"

    def connect(self, database: str = "postgres"):
        import psycopg2

        conn = psycopg2.connect(self.dsn(database))
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> str:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name

    def flags(self, database: str) -> list[str]:
        """strategy-consumer flags that point at this server."""
        return [f"--postgres_host={self.host}", f"--postgres_port={self.port}", f"--postgres_database={database}",
                f"--postgres_username={self.user}"]

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class DevBroker:
    """The project's Kafka-protocol dev broker: ``with DevBroker(topics={"t": 4}) as kafka: kafka.bootstrap``."""

    def __init__(self, topics: Optional[dict[str, int]] = None, brokers: int = 1, binary: Optional[str] = None):
        self.topics = dict(topics or {})
        self.brokers = brokers
        self.binary = binary or find_binary("strategy-kafka-dev")
        self.bootstrap = ""
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "DevBroker":
        args = [self.binary, "--brokers", str(self.brokers)]
        for name, partitions in self.topics.items():
            args += ["--topic", f"{name}:{partitions}"]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1)
        line = self.proc.stdout.readline().strip()
        if not line:
            self.stop()
            raise RuntimeError("strategy-kafka-dev did not print its address")
        self.bootstrap = line
        return self

    def command(self, line: str, timeout: float = 10.0) -> str:
        """Sends one control command (``down 1``, ``up 1``, ``down-all``, ``up-all``, ``topic NAME N``)."""
        assert self.proc and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer.startswith("ok"):
            raise RuntimeError(f"dev broker refused {line!r}: {answer}")
        return answer

    def create_topic(self, name: str, partitions: int) -> None:
        self.command(f"topic {name} {partitions}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except Exception:
                pass
        self.proc = None

    def __enter__(self) -> "DevBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def produce(bootstrap: str, topic: str, values: Iterable, partition: Optional[int] = None,
            key_of=None) -> int:
    """Produces each value (dict -> JSON, str -> UTF-8, bytes as they are) and waits until all are acknowledged."""
    import json

    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True,
                         "message.max.bytes": 16 * 1024 * 1024})
    errors: list = []
    count = 0

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)

    for value in values:
        if isinstance(value, dict):
            payload = json.dumps(value).encode()
        elif isinstance(value, str):
            payload = value.encode()
        else:
            payload = value
        kwargs = {}
        if partition is not None:
            kwargs["partition"] = partition
        if key_of is not None:
            kwargs["key"] = key_of(value)
        while True:
            try:
                producer.produce(topic, payload, on_delivery=on_delivery, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining or errors:
        raise RuntimeError(f"produce to {topic}: {remaining} not delivered, errors {errors[:3]}")
    return count


__all__.append("produce")

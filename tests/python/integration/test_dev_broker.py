"""strategy-kafka-dev, the librdkafka mock cluster every other integration test relies on.

Each test starts its own broker (binary from $STRATEGY_KAFKA_DEV, else build/cpp/strategy-kafka-dev) and
stops it, and talks to it with the real clients: kcat and confluent_kafka.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

REPO_ROOT = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


def broker_binary() -> Path:
    path = Path(os.environ.get("STRATEGY_KAFKA_DEV", REPO_ROOT / "build" / "cpp" / "strategy-kafka-dev"))
    if not path.is_file():
        pytest.fail(f"{path} not found: build it (cmake --build build --target strategy-kafka-dev) "
                    "or point STRATEGY_KAFKA_DEV at it")
    return path


class DevBroker:
    """One running strategy-kafka-dev: its address, its stdin commands, its shutdown."""

    def __init__(self, args: list[str], stderr_path: Path, stdin: int) -> None:
        self.stderr_path = stderr_path
        with open(stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen([str(broker_binary()), *args], stdin=stdin, stdout=subprocess.PIPE,
                                         stderr=stderr, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=self._pump_stdout, daemon=True)
        self._pump.start()
        self.address = self.read_line(STARTUP_TIMEOUT_S)

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def read_line(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no stdout line within {timeout} s; stderr: {self.stderr()}") from None
        assert line is not None, f"broker stdout closed (exit {self.proc.poll()}); stderr: {self.stderr()}"
        return line

    def command(self, line: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.read_line(10.0)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not go; never leaves the process behind."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._pump.join(STOP_TIMEOUT_S)  # EOF once the process is gone
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def start_broker(tmp_path: Path) -> Iterator:
    started: list[DevBroker] = []

    def start(*args: str, stdin: int = subprocess.PIPE) -> DevBroker:
        broker = DevBroker(list(args), tmp_path / f"broker-{len(started)}.stderr", stdin)
        started.append(broker)
        return broker

    try:
        yield start
    finally:
        for broker in started:
            broker.stop()


def can_connect(host_port: str) -> bool:
    host, port = host_port.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except ConnectionRefusedError:
        return False


def produce(address: str, topic: str, records: list[tuple[str, str]]) -> list[tuple[int, int]]:
    """Produces (key, value) records; returns their (partition, offset) in order, failing on any error."""
    producer = Producer({"bootstrap.servers": address, "enable.idempotence": True})
    reports: dict[int, tuple[int, int]] = {}
    errors: list[str] = []

    def on_delivery(index: int, err, msg) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            reports[index] = (msg.partition(), msg.offset())

    for index, (key, value) in enumerate(records):
        producer.produce(topic, key=key, value=value,
                         on_delivery=lambda err, msg, index=index: on_delivery(index, err, msg))
    assert producer.flush(15) == 0, "messages still in flight after 15 s"
    assert errors == []
    assert sorted(reports) == list(range(len(records)))
    return [reports[i] for i in range(len(records))]


def consume_exactly(consumer: Consumer, count: int, timeout: float = 30.0) -> list[tuple[int, int, str, str]]:
    """Polls until `count` messages arrived, then briefly more to catch anything extra."""
    got: list[tuple[int, int, str, str]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None or msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
        if msg.error() is None:
            got.append((msg.partition(), msg.offset(), msg.key().decode(), msg.value().decode()))
    assert len(got) == count, f"got {len(got)} of {count} messages in {timeout} s"
    extra = consumer.poll(1.0)
    assert extra is None or extra.error() is not None, f"unexpected extra message {extra.value()!r}"
    return got


def test_kcat_produces_and_consumes_back_exactly_what_was_sent(start_broker) -> None:
    broker = start_broker("--topic", "kcat-topic:3")
    assert all(part.startswith("127.0.0.1:") for part in broker.address.split(","))
    records = [(f"key-{i}", f"value-{i}") for i in range(60)]

    subprocess.run(["kcat", "-P", "-b", broker.address, "-t", "kcat-topic", "-K", ":"],
                   input="".join(f"{k}:{v}\n" for k, v in records), text=True, check=True, timeout=30)
    out = subprocess.run(["kcat", "-C", "-b", broker.address, "-t", "kcat-topic", "-o", "beginning", "-e",
                          "-q", "-f", "%p %o %k %s\n"],
                         capture_output=True, text=True, check=True, timeout=30).stdout

    consumed = [line.split(" ") for line in out.splitlines()]
    assert sorted((k, v) for _, _, k, v in consumed) == sorted(records)
    by_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for partition, offset, _, value in consumed:
        by_partition[int(partition)].append((int(offset), int(value.rsplit("-", 1)[1])))
    assert len(by_partition) > 1, "keys should spread over the 3 partitions"
    assert set(by_partition) <= {0, 1, 2}
    for entries in by_partition.values():
        offsets = [offset for offset, _ in entries]
        assert offsets == list(range(len(entries))), "each partition holds offsets 0..n-1"
        sent_order = [index for _, index in entries]
        assert sent_order == sorted(sent_order), "a partition keeps the order messages were sent in"


def test_confluent_kafka_group_resumes_after_its_commit(start_broker) -> None:
    broker = start_broker("--topic", "group-topic:3")
    consumer_config = {
        "bootstrap.servers": broker.address,
        "group.id": "resume-group",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # The mock rebalances only when the departed member's session expires.
        "session.timeout.ms": 6000,
    }
    first = [(f"k{i}", f"first-{i}") for i in range(12)]
    second = [(f"k{i}", f"second-{i}") for i in range(9)]

    first_positions = produce(broker.address, "group-topic", first)
    consumer = Consumer(consumer_config)
    consumer.subscribe(["group-topic"])
    got = consume_exactly(consumer, len(first))
    assert sorted((k, v) for _, _, k, v in got) == sorted(first)
    assert sorted((p, o) for p, o, _, _ in got) == sorted(first_positions)
    consumer.commit(asynchronous=False)

    # Consumed but never committed: the group must hand these out again.
    produce(broker.address, "group-topic", second)
    got = consume_exactly(consumer, len(second))
    assert sorted(v for _, _, _, v in got) == sorted(v for _, v in second)
    consumer.close()

    end_of_first = defaultdict(int)
    for partition, offset in first_positions:
        end_of_first[partition] = max(end_of_first[partition], offset + 1)

    reopened = Consumer(consumer_config)
    try:
        committed = reopened.committed([TopicPartition("group-topic", p) for p in range(3)], timeout=10)
        assert {tp.partition: tp.offset for tp in committed if tp.offset >= 0} == dict(end_of_first)
        reopened.subscribe(["group-topic"])
        got = consume_exactly(reopened, len(second))
        assert sorted((k, v) for _, _, k, v in got) == sorted(second)
        assert all(offset >= end_of_first[partition] for partition, offset, _, _ in got)
    finally:
        reopened.close()


def test_address_file_holds_the_printed_address(start_broker, tmp_path: Path) -> None:
    address_file = tmp_path / "kafka.address"
    broker = start_broker("--topic", "file-topic:3", "--address-file", str(address_file))

    assert address_file.read_text().strip() == broker.address
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("kafka.address")] == ["kafka.address"]
    metadata = Producer({"bootstrap.servers": address_file.read_text().strip()}).list_topics(timeout=10)
    assert len(metadata.topics["file-topic"].partitions) == 3

    broker.stop()
    assert broker.proc.returncode == 0
    assert not address_file.exists(), "a clean exit removes the address file"


def test_sigterm_stops_it_cleanly_even_with_stdin_closed_and_a_client_connected(start_broker) -> None:
    broker = start_broker("--topic", "stop-topic:3", stdin=subprocess.DEVNULL)
    time.sleep(0.5)
    assert broker.proc.poll() is None, "EOF on stdin must not stop the broker"
    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": "stop-group",
                         "session.timeout.ms": 6000})
    try:
        assert len(consumer.list_topics("stop-topic", timeout=10).topics["stop-topic"].partitions) == 3

        started = time.monotonic()
        broker.proc.send_signal(signal.SIGTERM)
        assert broker.proc.wait(STOP_TIMEOUT_S) == 0
        assert time.monotonic() - started < STOP_TIMEOUT_S
        assert "stopping on SIGTERM" in broker.stderr()
    finally:
        consumer.close()


def test_sigint_also_exits_zero(start_broker) -> None:
    broker = start_broker()
    broker.proc.send_signal(signal.SIGINT)
    assert broker.proc.wait(STOP_TIMEOUT_S) == 0


def test_stdin_commands_take_brokers_down_and_up_and_create_topics(start_broker) -> None:
    broker = start_broker("--brokers", "2", "--topic", "fault-topic:3")
    first, second = broker.address.split(",")

    assert broker.command("down 1") == "ok"
    assert not can_connect(first)
    assert can_connect(second)
    assert broker.command("up 1") == "ok"
    assert can_connect(first), "a broker comes back on the same port"

    assert broker.command("down-all") == "ok"
    assert not can_connect(first) and not can_connect(second)
    assert broker.command("up-all") == "ok"
    assert can_connect(first) and can_connect(second)

    assert broker.command("topic made-later 5") == "ok"
    assert broker.command("topic made-later 5").startswith("error ")
    assert broker.command("down 3").startswith("error ")
    assert broker.command("topic bad/name 2").startswith("error ")
    assert broker.command("explode").startswith("error ")

    # After the outage the cluster serves clients normally.
    positions = produce(broker.address, "made-later", [(f"k{i}", f"after-up-{i}") for i in range(10)])
    assert {partition for partition, _ in positions} <= set(range(5))
    metadata = Producer({"bootstrap.servers": broker.address}).list_topics(timeout=10)
    assert len(metadata.topics["made-later"].partitions) == 5
    assert len(metadata.topics["fault-topic"].partitions) == 3


def test_unknown_topics_are_auto_created_with_four_partitions(start_broker) -> None:
    """Documented in dev_broker.cpp: naming a topic in a metadata request creates it."""
    broker = start_broker()
    producer = Producer({"bootstrap.servers": broker.address})
    metadata = producer.list_topics("never-created", timeout=10)
    assert len(metadata.topics["never-created"].partitions) == 4

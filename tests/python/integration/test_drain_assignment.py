"""Drain jobs read their partitions without joining the group (--kafka_assignment=auto: direct in drain mode): the
first row lands in well under a second of the job's start instead of after the group join, and a drain job next to
a service of the same group, both reading every partition, still applies every message exactly once (the stored
offsets fence whichever commits second)."""

from __future__ import annotations

import time

from test_faults import (FAST_SESSION, Consumer, Producer, assert_all_applied_once, assert_rows_match_offsets,
                         distinct_strategies, make_env, produce_spread)


def first_row_seconds(env, started: float, timeout: float = 60) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        [(first,)] = env.query("SELECT extract(epoch FROM min(at))::float8 FROM applied")
        if first is not None:
            return first - started
        time.sleep(0.02)
    raise AssertionError("no row within the timeout")


def test_drain_job_assigns_itself_every_partition_and_starts_at_once(pg, kafka):
    env = make_env(pg, kafka, partitions=8)
    consumers = []
    try:
        layout = produce_spread(env, distinct_strategies(2_000, "direct", seed=11))
        drain = Consumer(env.flags("--idle_timeout_seconds=1", "--batch_size=200"), "direct-drain")
        consumers.append(drain)
        assert drain.wait(120) == 0, drain.tail()
        assert_all_applied_once(env, layout)
        first = first_row_seconds(env, drain.started)
        messages = drain.messages()
        assert any(m.startswith("assigned all 8 partition(s) of") for m in messages), drain.tail()
        assert not any(m.startswith("subscribed to") for m in messages)
        # The process start (exec, connecting to PostgreSQL, the schema) to the first committed row: no group join.
        assert first < 2.0, f"first row {first:.2f} s after start"
        print(f"direct: first row {first:.2f} s after the process started")

        # The same work as a group member pays the join (the dev broker delays a new group's first assignment
        # by 3 s, as a real broker's group.initial.rebalance.delay.ms does).
        more = produce_spread(env, distinct_strategies(400, "grouped", seed=12))
        env.query("TRUNCATE applied")
        grouped = Consumer(env.flags("--idle_timeout_seconds=1", "--kafka_assignment=group"), "group-drain")
        consumers.append(grouped)
        assert grouped.wait(120) == 0, grouped.tail()
        assert any(m.startswith("subscribed to") for m in grouped.messages())
        joined = first_row_seconds(env, grouped.started)
        assert joined > first, (joined, first)
        print(f"group: first row {joined:.2f} s after the process started")
        assert sorted(h for (h,) in env.query("SELECT strategy_hash FROM applied")) == \
            sorted(h for hashes in more.values() for h in hashes)
    finally:
        for c in consumers:
            c.stop()
        env.close()


def test_service_and_drain_jobs_of_one_group_apply_everything_once(pg, kafka):
    """A service (group member) and drain jobs (direct) on the same topic and group while messages keep coming:
    both read every partition, the one that commits second is fenced and rereads from the stored offsets; every
    message is applied exactly once and the offsets end at the topic's end."""
    env = make_env(pg, kafka, partitions=4)
    msgs = distinct_strategies(8_000, "overlap", seed=13)
    producer = Producer(kafka.bootstrap, env.topic, env.partitions, msgs, per_second=1000)
    consumers = []
    try:
        service = Consumer(env.flags("--batch_size=100", *FAST_SESSION), "service")
        consumers.append(service)
        producer.start()
        service.wait_for(lambda c: c.batches() >= 1, 60, "its first batch")
        for k in range(3):  # one after another while the stream goes on, each for 2 s
            job = Consumer(env.flags("--max_processing_time_seconds=2", "--batch_size=150"), f"job{k}")
            consumers.append(job)
            assert job.wait(120) == 0, job.tail()
            assert_rows_match_offsets(env, producer.layout)
        producer.finish()
        service.wait_for(lambda c: env.stored_offsets() == env.end_offsets(), 120, "everything committed")
        rc, _ = service.terminate(deadline=30)
        assert rc == 0, service.tail()
        assert_all_applied_once(env, producer.layout)
        # They did overlap: writes were fenced (and reread), not merely taken in turns.
        fenced = sum(c.count("abandoned: ") for c in consumers)
        jobs_committed = sum(c.batches() for c in consumers[1:])
        assert jobs_committed > 0 and service.batches() > 0
        assert fenced > 0, "no write was fenced: the consumers never read the same messages"
        print(f"{fenced} batch(es) fenced; the jobs committed {jobs_committed} batch(es), the service "
              f"{service.batches()}")
    finally:
        for c in consumers:
            c.stop()
        env.close()

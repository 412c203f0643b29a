"""The binary's configuration surface and the schema it creates."""

from __future__ import annotations

import subprocess

import pytest

from strategy_consumer.services import find_binary

BIN = find_binary("strategy-consumer")
SECRET = "s3cr3t-Pa55word"


def run(*args, env=None, timeout=60):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("args, names", [
    (["--batch_size=0"], "--batch_size"),
    (["--batch_size", "abc"], "--batch_size"),
    (["--postgres_port=70000"], "--postgres_port"),
    (["--kafka_auto_offset_reset=sideways"], "--kafka_auto_offset_reset"),
    (["--kafka_topic=bad topic!"], "--kafka_topic"),
    (["--no_such_flag=1"], "--no_such_flag"),
    (["--kafka_property=novalue"], "--kafka_property"),
    (["--message_format=xml"], "--message_format"),
    (["--parameters_layout=flat"], "--parameters_layout"),
    (["--strategy_hash_scheme=md5"], "--strategy_hash_scheme"),
    (["--kafka_property=no.such.librdkafka.setting=1", "--kafka_bootstrap_servers=127.0.0.1:1",
      "--postgres_port=1"], "no.such.librdkafka.setting"),
])
def test_invalid_flag_is_one_line_error_exit_2(args, names):
    r = run(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], r.stderr


def test_invalid_environment_names_the_variable():
    r = run(env={"BATCH_SIZE": "lots", "PATH": "/usr/bin"})
    assert r.returncode == 2 and "BATCH_SIZE" in r.stderr


def test_help_lists_flags_with_defaults_and_hides_the_password():
    r = run("--help", f"--postgres_password={SECRET}", env={"POSTGRES_PASSWORD": SECRET})
    assert r.returncode == 0
    for flag in ["--kafka_bootstrap_servers", "--kafka_topic", "--kafka_group_id", "--kafka_auto_offset_reset",
                 "--kafka_security_protocol", "--kafka_ssl_cafile", "--kafka_ssl_certfile", "--kafka_ssl_keyfile",
                 "--postgres_host", "--postgres_port", "--postgres_database", "--postgres_username",
                 "--postgres_password", "--batch_size", "--batch_timeout_seconds", "--max_retries",
                 "--poll_timeout_ms", "--idle_timeout_seconds", "--max_processing_time_seconds",
                 "--postgres_min_connections", "--postgres_max_connections", "--verbosity", "--kafka_property",
                 "--message_format", "--parameters_layout", "--strategy_hash_scheme"]:
        assert flag in r.stdout, flag
    assert "discovered-strategies" in r.stdout and "strategy-consumer" in r.stdout and "1000" in r.stdout
    assert SECRET not in r.stdout + r.stderr


def test_password_never_printed_when_database_unreachable(pg):
    r = run("--kafka_bootstrap_servers=127.0.0.1:1", "--postgres_host=127.0.0.1", "--postgres_port=1",
            f"--postgres_password={SECRET}", "--max_retries=1", "--idle_timeout_seconds=1", "--http_port=0",
            timeout=120)
    assert r.returncode == 1
    assert "cannot connect to PostgreSQL" in r.stderr
    assert SECRET not in r.stdout + r.stderr


def test_no_migrate_refuses_an_unmigrated_database(env):
    r = run(*env.flags("--no_migrate", "--idle_timeout_seconds=1")[1:])
    assert r.returncode == 2
    assert "migrations 1, 2, 3" in r.stderr


def test_schema_is_the_production_schema_plus_metrics_and_offsets(env):
    env.drain()
    cols = env.query("SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
                     " WHERE table_name = 'strategies' ORDER BY ordinal_position")
    assert cols == [
        ("strategy_id", "uuid", "NO", "gen_random_uuid()"),
        ("symbol", "character varying", "NO", None),
        ("strategy_type", "character varying", "NO", None),
        ("parameters", "jsonb", "NO", None),
        ("current_score", "double precision", "NO", None),
        ("first_discovered_at", "timestamp without time zone", "NO", "now()"),
        ("last_evaluated_at", "timestamp without time zone", "NO", "now()"),
        ("is_active", "boolean", "NO", "true"),
        ("strategy_hash", "character varying", "NO", None),
        ("discovery_symbol", "character varying", "YES", None),
        ("discovery_start_time", "timestamp without time zone", "YES", None),
        ("discovery_end_time", "timestamp without time zone", "YES", None),
        ("created_at", "timestamp without time zone", "NO", "now()"),
        ("updated_at", "timestamp without time zone", "NO", "now()"),
        ("performance_metrics", "jsonb", "YES", None),
        ("message_timestamp", "timestamp without time zone", "YES", None),  # migration 4 (issue 15.4)
    ]
    indexes = {name for (name,) in env.query("SELECT indexname FROM pg_indexes WHERE tablename = 'strategies'")}
    assert {"idx_strategies_symbol", "idx_strategies_strategy_type", "idx_strategies_current_score",
            "idx_strategies_is_active", "strategies_pkey", "strategies_strategy_hash_key"} == indexes
    assert env.query("SELECT version FROM strategy_consumer_migrations ORDER BY version") == [
        (1,), (2,), (3,), (4,), (5,)]
    # Migration 5: the score history, partitioned by month of stored_at, with a DEFAULT partition (README: Schema).
    assert env.query("SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                     " WHERE table_name = 'strategy_score_history' ORDER BY ordinal_position") == [
        ("strategy_hash", "character varying", "NO"), ("score", "double precision", "NO"),
        ("performance_metrics", "jsonb", "YES"), ("discovery_symbol", "character varying", "YES"),
        ("discovery_start_time", "timestamp without time zone", "YES"),
        ("discovery_end_time", "timestamp without time zone", "YES"),
        ("message_timestamp", "timestamp without time zone", "YES"), ("source_topic", "text", "YES"),
        ("source_partition", "integer", "YES"), ("source_offset", "bigint", "YES"),
        ("stored_at", "timestamp without time zone", "NO")]
    assert env.query("SELECT pg_get_partkeydef('strategy_score_history'::regclass)") == [("RANGE (stored_at)",)]
    assert env.query("SELECT count(*) FROM pg_inherits WHERE inhparent = 'strategy_score_history'::regclass") == [(3,)]
    # A second start applies nothing again, and --no_migrate now accepts the database.
    env.drain("--no_migrate")

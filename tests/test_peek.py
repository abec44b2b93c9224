"""``adaptcast peek`` (streams/peek.py): the input topic's newest records read as a worker would
read them, and, where they do not read, the flags that would read them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from adaptcast.streams.cli import main
from adaptcast.streams.config import load_config
from adaptcast.streams.peek import peek, text

T0_S = 1_764_633_600  # 2025-12-02T00:00:00Z


def _influx(n: int) -> list[tuple[bytes, bytes, int]]:
    """Telegraf's default output: line protocol in nanoseconds, two hosts every 10 s."""
    return [
        (
            h.encode(),
            f"cpu,host={h} usage_idle={90 + i % 7},usage_user={5 + i % 3} {(T0_S + 10 * i) * 10**9}".encode(),
            0,
        )
        for i in range(n)
        for h in ("a", "b")
    ]


def _keyed(n: int) -> list[tuple[bytes, bytes, int]]:
    """Devices that send flat readings keyed by their id and leave the time to Kafka."""
    return [
        (b"dev-1", json.dumps({"temp": 20 + i % 5, "hum": 40}).encode(), (T0_S + 60 * i) * 1000)
        for i in range(n)
    ]


def _peek(messages, target="y", **serving):
    cfg = load_config(overrides={"serving": serving, "model": {"target": target}}, environ={})
    return peek(cfg, messages, 100, None), cfg


def test_records_that_read_are_told_by_series_step_and_values():
    report, cfg = _peek(_influx(30), record_format="influx", target="usage_idle")
    r = report.reading
    assert (r.records, r.total, dict(r.values)) == (60, 60, {"usage_idle": 60, "usage_user": 60})
    assert report.step_ms == {"cpu,host=a": 10_000, "cpu,host=b": 10_000} and report.better is None
    said = text(report, "broker:9092", cfg.serving)
    assert "60 of 60 records read, 0 would be dead-lettered" in said
    assert "cpu,host=a (30 readings, every 10 s)" in said and "add:" not in said
    assert json.loads(json.dumps(report.as_dict()))["series"]["cpu,host=b"] == {"records": 30, "step": "10 s"}


@pytest.mark.parametrize(
    ("messages", "serving", "options", "target"),
    [
        (_influx(30), {}, {"--record-format": "influx"}, "usage_idle"),  # the default format, JSON
        (_keyed(30), {"record_format": "flat"}, {"--series-from-key": "", "--ts-from-message": ""}, "hum"),
        (
            _keyed(30),
            {},
            {"--record-format": "flat", "--series-from-key": "", "--ts-from-message": ""},
            "hum",
        ),
    ],
    ids=["line-protocol-read-as-json", "flat-without-series-or-time", "three-changes"],
)
def test_records_that_do_not_read_get_the_flags_that_read_them_and_the_targets_they_offer(
    messages, serving, options, target
):
    report, cfg = _peek(messages, **serving)
    assert report.reading.records == 0 and report.better is not None
    found, reading = report.better
    assert found == options and reading.records == reading.total == len(messages)
    said = text(report, "broker:9092", cfg.serving)
    flags = " ".join(f"{o} {v}" if v else o for o, v in options.items())
    assert f"with {flags}: {len(messages)} of {len(messages)} records read" in said
    assert f"add: {flags} --target {target}" in said


def test_a_target_the_records_do_not_carry_is_named_with_the_ones_they_do():
    report, cfg = _peek(_influx(5), record_format="influx", target="usage_system")
    said = text(report, "broker:9092", cfg.serving)
    assert report.reading.rejected == {"missing_value": 10} and report.better is None
    assert "missing_value: 10, e.g. values lacks 'usage_system' (required: usage_system)" in said
    assert (
        "the records offer the values: usage_idle, usage_user" in said and "add: --target usage_idle" in said
    )


@pytest.mark.kafka
def test_peek_reads_a_topic_without_moving_any_group_and_exits_1_when_nothing_reads(kafka_bootstrap):
    from kafka.admin import KafkaAdminClient
    from test_service_kafka import _produce, _topics

    names = _topics(kafka_bootstrap, partitions=2)
    _produce(kafka_bootstrap, names["input"], [(k, v) for k, v, _ in _influx(40)], raw=True)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    groups = admin.list_groups()
    base = ["peek", "--bootstrap-servers", kafka_bootstrap, "--input-topic", names["input"], "-n", "1000"]
    res = CliRunner().invoke(main, base, env={})
    assert res.exit_code == 1, res.output
    assert "80 messages of" in res.output and "add: --record-format influx --target usage_idle" in res.output
    res = CliRunner().invoke(
        main, [*base, "--record-format", "influx", "--target", "usage_idle", "--json"], env={}
    )
    assert res.exit_code == 0, res.output
    found = json.loads(res.output)
    assert (found["records"], found["rejected"], found["better"]) == (80, {}, None)
    assert set(found["series"]) == {"cpu,host=a", "cpu,host=b"}
    assert admin.list_groups() == groups  # read without a consumer group: no offsets moved
    admin.close()
    res = CliRunner().invoke(
        main, ["peek", "--bootstrap-servers", kafka_bootstrap, "--input-topic", "nope"], env={}
    )
    assert res.exit_code == 2 and f"no topic nope (kafka.input_topic) at {kafka_bootstrap}" in res.output

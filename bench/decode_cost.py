"""Cost of reading input records, per record, for each record format and batch size.

A Kafka value is decoded by ``streams.records.decode_message`` (parsed, reshaped by the record
format, validated); this times that per record against the floor of parsing the same bytes with
orjson alone (line protocol: the C parser alone; OTLP protobuf: protobuf's parser alone), best of
three, in one process. Prints JSON.

    python bench/decode_cost.py [--out bench/results/decode_cost.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict, ParseDict
from line_protocol_parser import parse_line
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from output import emit

from adaptcast.forecast import otlp as otlp_request
from adaptcast.streams import records as R
from adaptcast.streams.formats import SHAPES

T_MS = 1_704_070_800_000


def best_us(fn: Callable[[], Any], per_call: int, min_time: float = 0.3) -> float:
    """Best-of-3 mean µs per record of ``fn`` (each run repeats until ``min_time`` elapses)."""
    fn()
    best = float("inf")
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < min_time or n == 0:
            fn()
            n += 1
        best = min(best, elapsed / (n * per_call) * 1e6)
    return round(best, 2)


def contract(i: int) -> dict[str, Any]:
    return {"series": f"host-{i}/cpu", "ts": T_MS, "values": {"value": 0.25 + i}}


def telegraf(i: int) -> dict[str, Any]:
    return {
        "name": "cpu",
        "tags": {"host": f"web-{i}", "cpu": "cpu0"},
        "fields": {"value": 0.25},
        "timestamp": T_MS // 1000,
    }


def line(i: int) -> str:
    return f"cpu,cpu=cpu0,host=web-{i} value=0.25,usage_user=3i {T_MS * 1_000_000}"


def otlp(n: int) -> dict[str, Any]:
    points = [
        {
            "timeUnixNano": str(T_MS * 1_000_000),
            "attributes": [
                {"key": "host", "value": {"stringValue": f"web-{i}"}},
                {"key": "cpu", "value": {"stringValue": "cpu0"}},
            ],
            "asDouble": 0.25,
        }
        for i in range(n)
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]}
    metrics = [{"name": "system.cpu.utilization", "gauge": {"dataPoints": points}}]
    return {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": metrics}]}]}


def proto(request: dict[str, Any]) -> bytes:
    """An OTLP request in protobuf, as the Collector's exporter writes it by default."""
    return ParseDict(request, ExportMetricsServiceRequest()).SerializeToString()


def cases() -> list[tuple[str, str, bytes, int]]:
    """(case, record_format, message bytes, records in it)."""
    dumps = orjson.dumps
    return [
        ("adaptcast, one record", "adaptcast", dumps(contract(0)), 1),
        ("adaptcast, a JSON array of 100", "adaptcast", dumps([contract(i) for i in range(100)]), 100),
        ("telegraf JSON, one metric", "telegraf", dumps(telegraf(0)), 1),
        (
            "telegraf JSON batch of 100",
            "telegraf",
            dumps({"metrics": [telegraf(i) for i in range(100)]}),
            100,
        ),
        ("influx line protocol, one line", "influx", line(0).encode(), 1),
        ("influx line protocol, 100 lines", "influx", "\n".join(line(i) for i in range(100)).encode(), 100),
        ("otlp request of 100 points", "otlp", dumps(otlp(100)), 100),
        ("otlp request of 1,000 points", "otlp", dumps(otlp(1000)), 1000),
        ("otlp protobuf request of 1,000 points", "otlp", proto(otlp(1000)), 1000),
    ]


def proto_walk(raw: bytes, n: int) -> dict[str, float]:
    """A protobuf request's readings walked as protobuf objects (since the twenty-first stop) against
    the read before it: protobuf's JSON mapping, then the JSON walk; parse included, validation not."""

    def mapped() -> Any:
        return otlp_request.readings(MessageToDict(ExportMetricsServiceRequest.FromString(raw)))

    def walked() -> Any:
        return otlp_request.proto_readings(ExportMetricsServiceRequest.FromString(raw))

    assert walked() == mapped()  # the same readings (values here are doubles, read alike)
    before, after = best_us(mapped, n), best_us(walked, n)
    return {
        "read_via_json_mapping_us": before,
        "read_walked_us": after,
        "walk_speedup": round(before / after, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args()
    rows = []
    for name, fmt, raw, n in cases():
        shape = SHAPES[fmt]
        unit = "ns" if fmt == "influx" else ("s" if fmt == "telegraf" else "ms")
        items = R.decode_message(raw, required=("value",), now_ms=T_MS, ts_unit=unit, shape=shape)
        assert len(items) == n and all(isinstance(r, R.Record) for r in items), (name, items[:2])
        decode = best_us(lambda: R.decode_message(raw, ("value",), T_MS, ts_unit=unit, shape=shape), n)
        if fmt == "influx":
            lines = raw.decode().splitlines()
            floor = best_us(lambda: [parse_line(x) for x in lines], n)
        elif fmt == "otlp" and raw[:1] != b"{":
            floor = best_us(lambda: ExportMetricsServiceRequest.FromString(raw), n)
        else:
            floor = best_us(lambda: orjson.loads(raw), n)
        rows.append(
            {
                "case": name,
                "record_format": fmt,
                "bytes_per_record": round(len(raw) / n, 1),
                "decode_us_per_record": decode,
                "parse_only_us_per_record": floor,
                "decode_over_parse": round(decode / floor, 1),
                **(proto_walk(raw, n) if fmt == "otlp" and raw[:1] != b"{" else {}),
            }
        )
    emit({"bench": "decode_cost", "python": sys.version.split()[0], "cases": rows}, args.out)


if __name__ == "__main__":
    main()

"""Hypothesis strategies for malformed input records, each with the dead-letter reason it must get.

Every bad record has exactly one defect, so its reason follows from how it was built, not from
running the decoder. Records that name a series name a good one, so a record that passed
validation would land in a live series: a defect that is not caught shows up as a wrong forecast.
"""

from __future__ import annotations

import json
import time

from hypothesis import strategies as st

from adaptcast.streams import records as R

DAY_MS = 86_400_000
TARGET = "y"


def _record(series: str, ts: object, values: object) -> dict:
    return {"series": series, "ts": ts, "values": values}


def _dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()


def good_ts_ms() -> int:
    """A plausible timestamp (used only as the base of records that are bad for another reason)."""
    return int(time.time() * 1000) - DAY_MS


_NOT_A_NUMBER = st.one_of(
    st.text(max_size=20).filter(lambda t: R.number_text(t) is None),  # "1.5" is a number written as text
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_CONTROL = st.sampled_from([chr(c) for c in (*range(32), *range(127, 160))])


def bad_records(series_ids: list[str]) -> st.SearchStrategy[tuple[bytes, str]]:
    """``(value bytes, reason)`` pairs covering the defects of issue 20, item 4."""
    sid = st.sampled_from(series_ids)
    ts = good_ts_ms()
    ok_values = {TARGET: 1.0}

    kinds = [
        # wrong types (an array holds records: one of at most one element keeps one reason per message)
        st.one_of(st.lists(st.integers(), max_size=1), st.integers(), st.text(max_size=10), st.none()).map(
            lambda v: (_dumps(v), R.NOT_OBJECT)
        ),
        st.one_of(st.integers(), st.floats(allow_nan=False), st.lists(st.text(), max_size=2), st.none()).map(
            lambda s: (_dumps(_record(s, ts, ok_values)), R.BAD_SERIES)
        ),
        st.tuples(sid, _NOT_A_NUMBER).map(
            lambda p: (_dumps(_record(p[0], ts, {TARGET: p[1]})), R.NON_NUMERIC)
        ),
        st.tuples(sid, st.one_of(st.booleans(), st.none(), st.lists(st.integers(), max_size=2))).map(
            lambda p: (_dumps(_record(p[0], p[1], ok_values)), R.BAD_TIMESTAMP)
        ),
        st.tuples(sid, st.one_of(st.lists(st.floats(), max_size=2), st.text(max_size=5), st.integers())).map(
            lambda p: (_dumps(_record(p[0], ts, p[1])), R.MISSING_FIELD)
        ),
        # NaN, inf and numbers beyond the float range, or beyond float32's (the loop's rows)
        st.tuples(
            sid,
            st.sampled_from(
                ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "9" * 400, "1e300", "-3.5e38"]
            ),
        ).map(
            lambda p: (
                f'{{"series": {json.dumps(p[0])}, "ts": {ts}, "values": {{"{TARGET}": {p[1]}}}}}'.encode(),
                R.NON_FINITE,
            )
        ),
        st.tuples(sid, st.sampled_from(["NaN", "Infinity", "-Infinity"])).map(
            lambda p: (
                f'{{"series": {json.dumps(p[0])}, "ts": {p[1]}, "values": {{"{TARGET}": 1}}}}'.encode(),
                R.BAD_TIMESTAMP,
            )
        ),
        st.integers(min_value=5000, max_value=6000).map(
            lambda n: (b'{"series": "s0", "ts": 1, "values": {"y": ' + b"7" * n + b"}}", R.UNDECODABLE)
        ),
        # deep nesting: beyond the parser's depth, and within it as a value
        st.sampled_from([2_000, 10_000, 50_000]).map(lambda d: (b"[" * d + b"]" * d, R.UNDECODABLE)),
        st.tuples(sid, st.integers(min_value=2, max_value=200)).map(
            lambda p: (
                f'{{"series": {json.dumps(p[0])}, "ts": {ts}, "values": {{"{TARGET}": '.encode()
                + b"[" * p[1]
                + b"1"
                + b"]" * p[1]
                + b"}}",
                R.NON_NUMERIC,
            )
        ),
        # large values (the 1 MB ones are added separately: a few are enough)
        st.tuples(sid, st.integers(min_value=1_000, max_value=20_000)).map(
            lambda p: (_dumps(_record(p[0], ts, {TARGET: "9" * p[1]})), R.NON_NUMERIC)
        ),
        st.integers(min_value=257, max_value=20_000).map(
            lambda n: (_dumps(_record("s" * n, ts, ok_values)), R.BAD_SERIES)
        ),
        # invalid UTF-8 and broken JSON
        st.tuples(sid, st.binary(min_size=1, max_size=8)).map(
            lambda p: (
                f'{{"series": "{p[0]}", "ts": {ts}, "values": {{"{TARGET}": 1}}, "note": "'.encode()
                + b"\xff"
                + p[1]
                + b'"}',
                R.UNDECODABLE,
            )
        ),
        st.tuples(sid, st.integers(min_value=1, max_value=30)).map(
            lambda p: (_dumps(_record(p[0], ts, ok_values))[: -p[1]], R.UNDECODABLE)
        ),
        # missing, extra and duplicated keys (the last duplicate counts, as in most JSON parsers)
        st.tuples(sid, st.sampled_from(["series", "ts", "values"])).map(
            lambda p: (
                _dumps({k: v for k, v in _record(p[0], ts, ok_values).items() if k != p[1]}),
                R.MISSING_FIELD,
            )
        ),
        st.tuples(
            sid, st.dictionaries(st.text(max_size=8).filter(lambda k: k != TARGET), st.floats(0, 1))
        ).map(lambda p: (_dumps(_record(p[0], ts, {"": 1.0, **p[1]})), R.MISSING_VALUE)),
        st.tuples(sid, st.sampled_from(['""', "5", "null"])).map(
            lambda p: (
                f'{{"series": "{p[0]}", "ts": {ts}, "values": {{"{TARGET}": 1}}, "series": {p[1]}}}'.encode(),
                R.BAD_SERIES,
            )
        ),
        st.tuples(sid, st.sampled_from(['"soon"', "true", "[]"])).map(
            lambda p: (
                f'{{"series": "{p[0]}", "ts": {ts}, "values": {{"{TARGET}": 1}}, "ts": {p[1]}}}'.encode(),
                R.BAD_TIMESTAMP,
            )
        ),
        # timestamps far in the past (late for a live series) or future, or outside any calendar
        st.tuples(sid, st.integers(min_value=R.MIN_TS_MS, max_value=-DAY_MS)).map(
            lambda p: (_dumps(_record(p[0], p[1], ok_values)), R.LATE)
        ),
        st.tuples(sid, st.integers(min_value=ts + 3 * DAY_MS, max_value=R.MAX_TS_MS)).map(
            lambda p: (_dumps(_record(p[0], p[1], ok_values)), R.FUTURE_TIMESTAMP)
        ),
        st.tuples(
            sid, st.one_of(st.integers(max_value=R.MIN_TS_MS - 1), st.integers(min_value=R.MAX_TS_MS + 1))
        ).map(lambda p: (_dumps(_record(p[0], p[1], ok_values)), R.BAD_TIMESTAMP)),
        st.tuples(sid, st.text(max_size=20)).map(
            lambda p: (_dumps(_record(p[0], "x" + p[1], ok_values)), R.BAD_TIMESTAMP)
        ),
        # empty and control-character series ids
        st.just((_dumps(_record("", ts, ok_values)), R.BAD_SERIES)),
        st.tuples(st.text(max_size=20), _CONTROL, st.text(max_size=20)).map(
            lambda p: (_dumps(_record("".join(p), ts, ok_values)), R.BAD_SERIES)
        ),
    ]
    return st.one_of(kinds)


def megabyte_records(series: str) -> list[tuple[bytes, str]]:
    """Records of about 1 MB: a value, a series id and a nested structure of that size."""
    ts = good_ts_ms()
    size = 1_000_000
    return [
        (_dumps(_record(series, ts, {TARGET: "1" * size})), R.NON_NUMERIC),
        (_dumps(_record("s" * size, ts, {TARGET: 1.0})), R.BAD_SERIES),
        (b"[" * (size // 2) + b"]" * (size // 2), R.UNDECODABLE),
    ]


message_keys = st.one_of(st.none(), st.just(b""), st.binary(max_size=16))


def decode_one(raw: bytes | None, **kw: object) -> R.Record:
    """The record a message of one record holds, or the error rejecting it, raised."""
    [item] = R.decode_message(raw, **kw)  # type: ignore[arg-type]
    if isinstance(item, R.RecordError):
        raise item
    return item

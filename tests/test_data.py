"""Data utilities: validated frames, windows, time features and the ETT split."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from adaptcast.forecast import InputError
from adaptcast.forecast.csv_layout import csv_layout
from adaptcast.forecast.data import (
    load_ett,
    make_windows,
    read_frame,
    read_series,
    read_table,
    time_features,
    validate_frame,
)

ETTH1 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ett" / "ETTh1.csv"


def write(tmp_path: Path, text: str, name: str = "d.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def hourly(n: int) -> pl.DataFrame:
    ts = pl.datetime_range(
        pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1) + pl.duration(hours=n - 1), "1h", eager=True
    )
    return pl.DataFrame({"ts": ts, "y": np.arange(n, dtype=float), "x": np.arange(n, dtype=float) * 10})


def test_read_sorts_dedups_and_reports_gaps(tmp_path):
    p = write(
        tmp_path,
        "time,y\n2024-01-01 02:00,2\n2024-01-01 00:00,0\n2024-01-01 01:00,1\n"
        "2024-01-01 01:00,9\n2024-01-01 05:00,5\n",
    )
    tf = read_frame(p)
    assert tf.time_col == "time" and tf.frame["y"].to_list() == [0, 9, 2, 5]
    r = tf.report
    assert (r.rows, r.duplicates_dropped, r.was_sorted, r.gaps, r.largest_gap) == (4, 1, False, 1, "3:00:00")
    assert "1 gaps" in r.summary()
    assert read_frame(p, duplicates="first").frame["y"].to_list() == [0, 1, 2, 5]
    with pytest.raises(InputError, match="repeated timestamps"):
        read_frame(p, duplicates="error")


def test_parquet_and_epoch_times(tmp_path):
    df = pl.DataFrame({"timestamp": [1_700_000_000_000, 1_700_003_600_000], "y": [1.0, 2.0]})
    df.write_parquet(tmp_path / "d.parquet")
    tf = read_frame(tmp_path / "d.parquet")
    assert tf.frame["timestamp"][0] == datetime(2023, 11, 14, 22, 13, 20) and tf.report.step == "1:00:00"


def test_a_feather_file_reads_as_parquet_does_and_a_spreadsheet_is_told_to_save_csv(tmp_path):
    """pandas' ``to_feather`` (Arrow's IPC file), also gzipped, was refused as an unknown type."""
    import gzip

    df = pl.DataFrame({"timestamp": [1_700_000_000_000, 1_700_003_600_000], "y": [1.0, 2.0]})
    df.write_ipc(tmp_path / "d.feather")
    (tmp_path / "d.feather.gz").write_bytes(gzip.compress((tmp_path / "d.feather").read_bytes()))
    for name in ("d.feather", "d.feather.gz"):
        tf = read_frame(tmp_path / name)
        assert tf.frame["y"].to_list() == [1.0, 2.0] and tf.report.step == "1:00:00"
    (tmp_path / "d.xlsx").write_bytes(b"PK")
    with pytest.raises(InputError, match=r"'\.xlsx' \(a spreadsheet: save it as CSV\)"):
        read_frame(tmp_path / "d.xlsx")


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        (None, {}, "file not found"),
        ("", {}, "empty"),
        ("a,y\n1,2\n", {}, "no time column"),
        ("ts,y\n2024-01-01,1\n", {"time_col": "when"}, "'when' not found"),
        ("ts,y\nyesterday,1\n2024-01-01,2\n", {}, "unparsable timestamps.*'yesterday'"),
    ],
    ids=["missing", "empty", "no-time", "bad-time-col", "unparsable"],
)
def test_read_errors_name_file_and_problem(tmp_path, text, kwargs, message):
    p = tmp_path / "bad.csv"
    if text is not None:
        p.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        read_frame(p, **kwargs)
    assert "bad.csv" in str(info.value)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "ts,y\n2024-01-01 00:00,1\n2024-01-01 01:00,\n2024-01-01 02:00,3\n",
            "'y' has 1 missing, NaN or infinite",
        ),
        (
            "ts,y\n2024-01-01 00:00,1\n2024-01-01 01:00,b\n2024-01-01 02:00,3\n",
            "'y' is String, not numeric: 'b' at 2024-01-01 01:00:00 is not a number",
        ),
        (
            "ts,y\n2024-01-01 00:00,a\n2024-01-01 01:00,b\n2024-01-01 02:00,a\n",
            r"'y' is String, not numeric: it holds text \('a', 'b': 2 distinct values\) in every row; encode",
        ),
        ("ts,y\n2024-01-01 00:00,1\n2024-01-01 01:00,-inf\n2024-01-01 02:00,3\n", "infinite values"),
        (
            "ts,y\n2024-01-01 00:00,1\n2024-01-01 01:00,1e300\n2024-01-01 02:00,3\n",
            r"'y' has 1 values that are infinite in adaptcast's float32 rows "
            r"\(±3.4028236e\+38 and beyond; first 1e\+300",
        ),
        ("ts,y\n2024-01-01 00:00,true\n2024-01-01 01:00,false\n", "Boolean, not numeric; convert it"),
        ("ts,z\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n2024-01-01 02:00,3\n", "'y' not found"),
    ],
    ids=[
        "nan-target",
        "non-numeric",
        "text-labels",
        "infinite",
        "beyond-float32",
        "boolean",
        "missing-column",
    ],
)
def test_window_errors_name_column(tmp_path, text, message):
    tf = read_frame(write(tmp_path, text))
    with pytest.raises(InputError, match=message):
        make_windows(tf, 1, 1, [], ["y"])


def test_make_windows_layout_and_stride():
    tf = validate_frame(hourly(10))
    w = make_windows(tf, lookback=3, horizon=2, targets=["y"], features=["x", "y"], stride=2)
    assert w.X.shape == (3, 3, 2) and w.Y.shape == (3, 2, 1) and w.X.dtype == np.float32
    np.testing.assert_array_equal(w.X[1, :, 0], [2, 3, 4])  # targets first
    np.testing.assert_array_equal(w.X[1, :, 1], [20, 30, 40])  # then features, target not repeated
    np.testing.assert_array_equal(w.Y[1, :, 0], [5, 6])
    assert w.timestamps[1] == np.datetime64("2024-01-01T04:00")  # last input row
    with pytest.raises(InputError, match="too few"):
        make_windows(tf, 8, 3, [], ["y"])


@pytest.mark.parametrize(
    ("text", "first", "second"),
    [
        ("ts,y\n1950-01,1\n1950-02,2\n", datetime(1950, 1, 1), datetime(1950, 2, 1)),  # year-month
        ("ts,y\n1950Q4,1\n1951Q1,2\n", datetime(1950, 10, 1), datetime(1951, 1, 1)),  # quarters
        ("ts,y\n1950-Q2,1\n1950-q3,2\n", datetime(1950, 4, 1), datetime(1950, 7, 1)),
        ("ts,y\n1850,1\n1851,2\n", datetime(1850, 1, 1), datetime(1851, 1, 1)),  # years, not epoch seconds
        ("ts,y\n3000,1\n3600,2\n", datetime(1970, 1, 1, 0, 50), datetime(1970, 1, 1, 1)),  # epoch seconds
        ("ts,y\n1977-Jan,1\n1977-Feb,2\n", datetime(1977, 1, 1), datetime(1977, 2, 1)),
        ("ts,y\nDec 1977,1\nJan 1978,2\n", datetime(1977, 12, 1), datetime(1978, 1, 1)),  # R's yearmon
        ("ts,y\nSeptember 1977,1\nOctober 1977,2\n", datetime(1977, 9, 1), datetime(1977, 10, 1)),
        ("ts,y\nDec-99,1\nJan-00,2\n", datetime(1999, 12, 1), datetime(2000, 1, 1)),  # a sheet's mmm-yy
        ("ts,y\n1977M11,1\n1977M12,2\n", datetime(1977, 11, 1), datetime(1977, 12, 1)),  # Eurostat
        ("ts,y\n11/1977,1\n12/1977,2\n", datetime(1977, 11, 1), datetime(1977, 12, 1)),
        ("ts,y\nQ4 1950,1\nQ1 1951,2\n", datetime(1950, 10, 1), datetime(1951, 1, 1)),
        ("ts,y\n2020-W53,1\n2021-W01,2\n", datetime(2020, 12, 28), datetime(2021, 1, 4)),  # ISO weeks
        ("ts,y\n192612,1\n192701,2\n", datetime(1926, 12, 1), datetime(1927, 1, 1)),  # digits of a month
    ],
    ids=[
        "year-month",
        "quarter",
        "year-dash-quarter",
        "year",
        "epoch-s",
        "year-dash-month-name",
        "month-name-year",
        "full-month-name",
        "month-name-two-digit-year",
        "eurostat-month",
        "month-slash-year",
        "quarter-first",
        "iso-week",
        "compact-month",
    ],
)
def test_month_quarter_and_year_stamps(tmp_path, text, first, second):
    assert read_frame(write(tmp_path, text)).frame["ts"].to_list() == [first, second]


@pytest.mark.parametrize("labels", ["1977-13,1977-14", "2021-W53,2022-W01", "Foo 1977,Bar 1977"])
def test_a_label_that_is_no_real_period_is_reported_not_guessed(tmp_path, labels):
    text = "ts,y\n" + "".join(f"{label},{i}\n" for i, label in enumerate(labels.split(",")))
    with pytest.raises(InputError, match="unparsable timestamps"):
        read_frame(write(tmp_path, text))


@pytest.mark.parametrize(
    "text",
    [
        "date;y\n2024-01-01;1\n2024-01-02;2\n",  # a spreadsheet's semicolons
        "date\ty\n2024-01-01\t1\n2024-01-02\t2\n",  # tabs in a .csv
        "date, y\n2024-01-01,1\n2024-01-02,2\n",  # a blank after the comma in the header
    ],
    ids=["semicolon", "tab", "blank-in-header"],
)
def test_separators_and_header_blanks_are_read_as_meant(tmp_path, text):
    tf = read_frame(write(tmp_path, text))
    assert tf.frame.columns == ["date", "y"] and tf.frame["y"].to_list() == [1, 2]


def test_a_header_whose_stripped_names_would_collide_is_left_as_it_is(tmp_path):
    tf = read_frame(write(tmp_path, "date,y, y\n2024-01-01,1,2\n"))
    assert tf.frame.columns == ["date", "y", " y"]


def test_a_time_column_no_format_fits_names_its_first_value(tmp_path):
    with pytest.raises(InputError, match=r"2 unparsable timestamps \(first 'day 1'"):
        read_frame(write(tmp_path, "ts,y\nday 1,1\nday 2,2\n"))


def test_decimal_commas_of_a_semicolon_or_tab_file_read_as_numbers(tmp_path):
    text = "Datum;Last;Preis;Id\n31.01.2024 00:00;1,5;1.5;7\n31.01.2024 01:00;-2,25;2.5;8\n"
    text += "31.01.2024 02:00;1.234,5;3.5;9\n"
    tf = read_frame(write(tmp_path, text), time_col="Datum")
    assert tf.frame["Last"].to_list() == [1.5, -2.25, 1234.5] and tf.frame["Preis"].to_list() == [
        1.5,
        2.5,
        3.5,
    ]
    assert tf.frame["Datum"][2] == datetime(2024, 1, 31, 2)
    commas = read_frame(write(tmp_path, 'date,y\n2024-01-01,"1,5"\n2024-01-02,"2,5"\n'))  # thousands? unsure
    assert commas.frame["y"].dtype == pl.String


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.zst", ".tsv.gz", ".csv.bz2", ".tsv.xz"])
def test_compressed_files_read_as_the_plain_ones(tmp_path, suffix):
    """gzip and zstd, as exports write; bzip2 and xz, as archives of datasets are often packed."""
    import bz2
    import gzip
    import lzma

    import zstandard

    sep = "\t" if suffix.startswith(".tsv") else ";"
    raw = f"date{sep}y\n2024-01-01{sep}1,5\n2024-01-02{sep}2\n".encode()
    codec = suffix.rpartition(".")[2]
    compress = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}
    packed = compress.get(codec, zstandard.ZstdCompressor().compress)(raw)
    path = tmp_path / f"d{suffix}"
    path.write_bytes(packed)
    assert read_frame(path).frame["y"].to_list() == [1.5, 2.0]


@pytest.mark.parametrize("codec", [".gz", ".zst"])
@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "d.jsonl",
            '{"series": "a", "ts": 1704067200000, "values": {"y": 1.5}}\n'
            '{"series": "a", "ts": 1704070800000, "values": {"y": 2.0}}\n',
        ),
        ("d.lp", "mem,host=a y=1.5 1704067200000000000\nmem,host=a y=2 1704070800000000000\n"),
        ("d.json", '[{"date": "2024-01-01", "y": 1.5}, {"date": "2024-01-02", "y": 2.0}]'),
    ],
)
def test_exports_compressed_whole_read_as_the_plain_ones(tmp_path, codec, name, text):
    """``influx_inspect export -compress``, the Collector's file exporter with ``compression:
    zstd`` (a zstd frame per batch written), a gzipped dump of a topic: read without unpacking."""
    import gzip

    import zstandard

    plain = tmp_path / name
    plain.write_text(text)
    lines = text.encode().splitlines(keepends=True)
    if codec == ".gz":
        packed = gzip.compress(text.encode())
    else:  # one frame per line, as a writer compressing each batch on its own writes
        packed = b"".join(zstandard.ZstdCompressor().compress(line) for line in lines)
    path = tmp_path / f"{name}{codec}"
    path.write_bytes(packed)
    assert read_table(path).equals(read_table(plain)) and read_table(path).height == 2


def test_a_compressed_file_that_cannot_be_read_names_itself(tmp_path):
    import gzip

    bad = tmp_path / "d.jsonl.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(
        InputError, match=rf"^{re.escape(str(bad))}: cannot decompress as gz \(Not a gzipped file"
    ):
        read_table(bad)
    cut = tmp_path / "d.lp.gz"
    cut.write_bytes(gzip.compress(b"mem y=1 1704067200000000000\n" * 100)[:60])
    with pytest.raises(InputError, match=rf"^{re.escape(str(cut))}: cannot decompress"):
        read_table(cut)
    for codec in ("bz2", "xz"):
        junk = tmp_path / f"d.csv.{codec}"
        junk.write_bytes(b"not compressed at all")
        with pytest.raises(InputError, match=rf"^{re.escape(str(junk))}: cannot decompress as {codec} \("):
            read_table(junk)
    inner = tmp_path / "d.parquet.gz"
    inner.write_bytes(gzip.compress(b"date;y\n2024-01-01;1\n"))  # a CSV named parquet
    with pytest.raises(InputError, match=rf"^{re.escape(str(inner))}: cannot parse as parquet"):
        read_table(inner)


@pytest.mark.parametrize(
    ("times", "second"),
    [
        (["01/02/2024 00:00", "01/13/2024 00:00"], datetime(2024, 1, 13)),  # US, decided by a later value
        ([f"01/{d:02d}/2024 {h:02d}:00" for d in (1, 2) for h in range(24)], datetime(2024, 1, 1, 1)),
        ([f"{d:02d}/01/2024 {h:02d}:00" for d in (1, 2) for h in range(24)], datetime(2024, 1, 1, 1)),
        (["1/31/2024 1:00 PM", "1/31/2024 2:00 PM"], datetime(2024, 1, 31, 14)),  # Excel, US locale
        (["31/01/2024", "01/02/2024"], datetime(2024, 2, 1)),
    ],
    ids=["us-later-day", "us-hourly-first-days", "day-first-hourly", "us-12-hour", "day-first"],
)
def test_day_first_or_month_first_dates_read_as_the_file_means(tmp_path, times, second):
    p = write(tmp_path, "date,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(times)))
    tf = read_frame(p)
    assert tf.frame["date"][1] == second and tf.report.was_sorted
    if len(times) > 24:  # hour 24 is the next day whichever way round, never a month later
        assert tf.frame["date"][24] == datetime(2024, 1, 2)


def test_time_features_range_and_values():
    ts = pl.Series([datetime(2024, 1, 1, 0), datetime(2024, 12, 31, 23)])
    f = time_features(ts)
    assert f.shape == (2, 4) and f.min() >= -0.5 and f.max() <= 0.5
    np.testing.assert_allclose(f[0], [-0.5, -0.5, -0.5, -0.5])  # midnight, Monday, 1st, day 1
    np.testing.assert_allclose(f[1, :3], [0.5, -0.5 + 1 / 6, 0.5])  # 23h, Tuesday, 31st
    assert make_windows(hourly(6), 2, 1, [], ["y"], with_time=True).X.shape[-1] == 5


@pytest.mark.skipif(not ETTH1.is_file(), reason=f"ETTh1 not found at {ETTH1} (shared data folder absent)")
def test_ett_split_matches_informer_borders():
    s = load_ett(ETTH1, lookback=96, horizon=24, mode="MS")
    assert [s[k].X.shape[0] for k in ("train", "val", "test")] == [
        8640 - 96 - 24 + 1,
        2880 - 24 + 1,
        2880 - 24 + 1,
    ]
    assert s["train"].X.shape[1:] == (96, 7) and s["train"].Y.shape[1:] == (24, 1)
    # The first val window ends exactly at the train border: its forecast starts at row 8640.
    assert s["val"].timestamps[0] == np.datetime64("2017-06-25T23:00")
    assert s["test"].timestamps[-1] == np.datetime64("2018-02-19T23:00")
    m = load_ett(ETTH1, lookback=48, horizon=12, mode="M")
    assert m["train"].Y.shape[-1] == 7


def test_ett_loader_reads_any_ett_shaped_file(tmp_path):
    # A 15-minute ETTm-like file: borders scale by 4 rows per hour.
    n = 20 * 30 * 24 * 4
    ts = pl.datetime_range(
        pl.datetime(2016, 7, 1),
        pl.datetime(2016, 7, 1) + pl.duration(minutes=15 * (n - 1)),
        "15m",
        eager=True,
    )
    rng = np.random.default_rng(0)
    df = pl.DataFrame(
        {"date": ts.dt.strftime("%Y-%m-%d %H:%M:%S"), **{c: rng.standard_normal(n) for c in ("HUFL", "OT")}}
    )
    df.write_csv(tmp_path / "ETTm_like.csv")
    s = load_ett(tmp_path / "ETTm_like.csv", lookback=8, horizon=4)
    assert s["train"].X.shape[0] == 12 * 30 * 24 * 4 - 8 - 4 + 1
    with pytest.raises(InputError, match="fewer than"):
        df.head(1000).write_csv(tmp_path / "short.csv")
        load_ett(tmp_path / "short.csv")


def test_a_wide_file_read_as_one_series_per_column(tmp_path):
    from adaptcast.forecast.data import read_series

    text = (
        "date,MT_001,MT_002,note\n2024-01-01 00:00,1,10,7\n2024-01-01 01:00,,20,8\n2024-01-01 02:00,3,30,9\n"
    )
    p = write(tmp_path, text, "clients.csv")
    data = read_series(p, ["load"], series_cols=["MT_001", "MT_002"])
    assert data.name == "clients" and data.channels == ["load"]
    rows = data.frame.select(pl.col("ts").dt.hour(), "series", "load").rows()
    assert rows == [
        (0, "MT_001", 1.0),
        (0, "MT_002", 10.0),
        (1, "MT_002", 20.0),
        (2, "MT_001", 3.0),
        (2, "MT_002", 30.0),
    ]
    assert data.missing is not None and data.missing.rows == 1
    assert read_series(p, ["y"], series_cols=["*"]).frame["series"].unique().sort().to_list() == [
        "MT_001",
        "MT_002",
        "note",
    ]
    with pytest.raises(InputError, match="one --target"):
        read_series(p, ["a", "b"], series_cols=["*"])
    for layout in ({"series_col": "MT_001"}, {"series_rows": True}):
        other = "--series-col" if "series_col" in layout else "--series-rows"
        with pytest.raises(InputError, match=f"either --series-cols .* or {other}, not both"):
            read_series(p, ["y"], series_cols=["*"], step_ms=1000, **layout)
    with pytest.raises(InputError, match="'MT_001' is the series column"):
        read_series(p, ["MT_001"], series_col="MT_001")
    with pytest.raises(InputError, match="column 'MT_003' not found"):
        read_series(p, ["y"], series_cols=["MT_003"])


@pytest.mark.parametrize(
    "header",
    [
        "Timestamp,y",  # another case
        "y,ds",  # Prophet's name, not first
        "value_kw,reading_at",  # no known name: the one column that reads as times
    ],
    ids=["case", "prophet-ds", "by-content"],
)
def test_the_time_column_is_found_by_name_in_any_case_or_by_what_it_holds(tmp_path, header):
    rows = [
        (f"2024-01-01 0{h}:00,{h}.5" if header.endswith(",y") else f"{h}.5,2024-01-01 0{h}:00")
        for h in range(3)
    ]
    tf = read_frame(write(tmp_path, header + "\n" + "\n".join(rows) + "\n"))
    assert tf.time_col == header.split(",")[0 if header.endswith(",y") else 1]
    assert tf.frame[tf.time_col][2] == datetime(2024, 1, 1, 2)


def test_two_columns_of_dates_and_no_known_name_ask_for_time_col(tmp_path):
    text = "start,end,y\n2024-01-01,2024-01-02,1\n2024-01-02,2024-01-03,2\n"
    with pytest.raises(InputError, match=r"columns \['start', 'end'\] all read as times.*--time-col"):
        read_frame(write(tmp_path, text))


def test_a_long_file_read_as_one_series_is_refused_naming_its_series_column(tmp_path):
    from adaptcast.forecast.data import read_series

    rows = "".join(f"2024-01-01 {h:02d}:00,{s},{h}\n" for h in range(24) for s in ("a", "b"))
    p = write(tmp_path, "ts,sensor,y\n" + rows)
    with pytest.raises(InputError, match=r"holding other values.*long file.*pass --series-col sensor$"):
        read_series(p, ["y"])
    assert read_series(p, ["y"], series_col="sensor").frame.height == 48
    # one repeated hour (naive local time in autumn) is no long file: the first row is kept
    dst = write(
        tmp_path,
        "ts,status,y\n2024-10-27 01:00,ok,1\n2024-10-27 02:00,ok,2\n2024-10-27 02:00,warn,3\n"
        + "".join(f"2024-10-27 {h:02d}:00,ok,{h}\n" for h in range(3, 24)),
        "dst.csv",
    )
    assert read_series(dst, ["y"]).duplicates == 1
    # integer store ids (values repeat over time; the readings do not) are named too
    stores = "".join(f"2024-01-01 {h:02d}:00,{s},{h * 10 + s}.5\n" for h in range(24) for s in (1, 2))
    with pytest.raises(InputError, match=r"pass --series-col store_id$"):
        read_series(write(tmp_path, "ts,store_id,y\n" + stores, "stores.csv"), ["y"])
    # nothing tells the rows apart: still refused, naming both readings (a coarse clock, or no ids)
    bare = "".join(f"2024-01-01 {h:02d}:00,{h + s / 10}\n" for h in range(24) for s in (1, 2))
    with pytest.raises(InputError, match=r"no column tells.*--frequency 100Hz.*--series-col naming it$"):
        read_series(write(tmp_path, "ts,y\n" + bare, "bare.csv"), ["y"])
    # a file holding every row twice (two exports concatenated) is one series: copies are dropped
    twice = "".join(f"2024-01-01 {h:02d}:00,{h}\n" for h in range(24)) * 2
    assert read_series(write(tmp_path, "ts,y\n" + twice, "twice.csv"), ["y"]).frame.height == 24


def test_json_lines_flat_rows_or_a_topic_dump_of_records(tmp_path):
    from adaptcast.forecast.data import read_series

    flat = write(
        tmp_path,
        '{"ts": "2024-01-01T00:00:00Z", "y": 1}\n{"ts": "2024-01-01T01:00:00Z", "y": 2.5}\n',
        "f.jsonl",
    )
    assert read_frame(flat).frame["y"].to_list() == [1.0, 2.5]
    dump = (
        "".join(
            f'{{"series": "{s}", "ts": {1704067200000 + h * 3_600_000}, "values": {{"y": {h}}}}}\n'
            for h in range(3)
            for s in ("a", "b")
        )
        + '{"series": "a", "ts": 1704078000000, "values": {"y": 3, "x": 1}}\n'
    )  # a value seen late
    data = read_series(write(tmp_path, dump, "topic.ndjson"), ["y"], series_col="series")
    assert data.name == "topic" and data.frame.filter(pl.col("series") == "a")["y"].to_list() == [0, 1, 2, 3]
    bad = write(tmp_path, '{"ts": 1, "y": 1}\n[1, 2]\n', "bad.jsonl")
    with pytest.raises(InputError, match=r"bad.jsonl: line 2 is not a JSON object"):
        read_frame(bad)


def test_a_windows_1252_export_reads_with_its_names_and_text_intact(tmp_path):
    p = tmp_path / "excel.csv"
    p.write_bytes(
        "Datum;Temperatur °C;Ort\n01.01.2024 00:00;1,5;Köln\n01.01.2024 01:00;2,5;Köln\n".encode("cp1252")
    )
    tf = read_frame(p)
    assert tf.frame.columns == ["Datum", "Temperatur °C", "Ort"]
    assert tf.frame["Temperatur °C"].to_list() == [1.5, 2.5] and tf.frame["Ort"][0] == "Köln"


def test_a_file_of_values_only_is_read_without_a_header_and_numbered_by_a_declared_step(tmp_path):
    """Benchmark files (LSTNet's electricity, traffic, exchange rates) hold values only: no header
    line, no time column. The first row is data, and with a step each row is that far after the last."""
    p = tmp_path / "exchange_rate.txt"
    p.write_text("0.7855,1.611,0.861\n0.7818,1.61,0.861\n0.7867,1.629,0.8609\n")
    with pytest.raises(InputError, match=r"no time column among \['0', '1', '2'\].*grid.frequency"):
        read_frame(p)
    tf = read_frame(p, step_ms=86_400_000)
    assert tf.frame.columns == ["0", "1", "2", "ts"] and tf.frame["0"].to_list() == [0.7855, 0.7818, 0.7867]
    assert [str(t) for t in tf.frame["ts"]] == [
        "1970-01-01 00:00:00",
        "1970-01-02 00:00:00",
        "1970-01-03 00:00:00",
    ]
    data = read_series(p, ["y"], series_cols=["*"], step_ms=3_600_000)
    assert data.n_series == 3 and data.frame.height == 9
    named = tmp_path / "named.csv"  # a file with a time column keeps it, step or not
    named.write_text("date,y\n2024-01-01,1\n2024-01-02,2\n")
    assert read_frame(named, step_ms=3_600_000).time_col == "date"


def test_a_date_column_and_a_time_of_day_column_read_as_one_timestamp(tmp_path):
    """UCI's household power file: ``Date;Time`` (day first) and ``?`` for a missing value. Read by the
    date alone, its minutes looked like a long file's rows sharing a day."""
    p = tmp_path / "household_power_consumption.txt"
    p.write_text(
        "Date;Time;Global_active_power\n16/12/2006;23:59:00;1.5\n17/12/2006;00:00:00;?\n17/12/2006;00:01:00;2.5\n"
    )
    tf = read_frame(p)
    assert tf.frame.columns == ["Date", "Global_active_power"]
    assert [str(t) for t in tf.frame["Date"]] == [
        "2006-12-16 23:59:00",
        "2006-12-17 00:00:00",
        "2006-12-17 00:01:00",
    ]
    assert tf.frame["Global_active_power"].to_list() == [1.5, None, 2.5]
    clock = pl.DataFrame(
        {"day": [datetime(2024, 1, 1), datetime(2024, 1, 1)], "at": ["09:30", "09:45:30.5"], "y": [1.0, 2.0]}
    ).with_columns(pl.col("day").cast(pl.Date))
    clock.write_parquet(tmp_path / "c.parquet")
    times = read_frame(tmp_path / "c.parquet").frame["day"]
    assert [str(t) for t in times] == ["2024-01-01 09:30:00", "2024-01-01 09:45:30.500000"]
    typed = clock.with_columns(
        pl.col("at").str.to_time("%H:%M:%S%.f", strict=False).fill_null(pl.time(9, 30))
    )
    typed.write_parquet(tmp_path / "t.parquet")
    assert str(read_frame(tmp_path / "t.parquet").frame["day"][1]).startswith("2024-01-01 09:45:30")
    twelve = tmp_path / "twelve.csv"  # a 12-hour clock, as US exports write it: 12 a.m. is midnight
    twelve.write_text(
        "date,time,y\n2024-01-01,12:00 a.m.,1\n2024-01-01,8:30 AM,2\n2024-01-01,12:15pm,3\n"
        "2024-01-01,5:00 P.M.,4\n"
    )
    assert [str(t)[11:] for t in read_frame(twelve).frame["date"]] == [
        "00:00:00",
        "08:30:00",
        "12:15:00",
        "17:00:00",
    ]
    odd = tmp_path / "odd.csv"  # a time of day in a format not read: said so, not taken for series ids
    odd.write_text("date,time,y\n2024-01-01,0800h,1\n2024-01-01,1200h,2\n2024-01-02,0800h,3\n")
    with pytest.raises(InputError, match=r"if 'time' is each row's time of day, its values \('0800h'\)"):
        read_frame(odd)
    daily = tmp_path / "daily.csv"  # one row a day: its clock times are values, not the rows' time
    daily.write_text("date,sunrise,y\n2024-01-01,08:17,1\n2024-01-02,08:16,2\n")
    assert read_frame(daily).frame.columns == ["date", "sunrise", "y"]
    market = tmp_path / "load.csv"  # hour ending 1 to 24, as energy markets publish
    market.write_text("Date,HE,load\n2024-01-01,1,10\n2024-01-01,24,11\n2024-01-02,1,12\n")
    assert [str(t) for t in read_frame(market).frame["Date"]] == [
        "2024-01-01 01:00:00",
        "2024-01-02 00:00:00",
        "2024-01-02 01:00:00",
    ]


def times_read(tmp_path: Path, stamps: list) -> list[str]:
    """The time column of a file whose rows are stamped ``stamps``, as read."""
    p = tmp_path / "times.csv"
    p.write_text("date,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(stamps)))
    return [str(t) for t in read_frame(p).frame["date"]]


@pytest.mark.parametrize("scale", [1, 1_000, 1_000_000, 1_000_000_000], ids=["s", "ms", "us", "ns"])
def test_epoch_numbers_read_in_the_unit_their_size_says(tmp_path, scale):
    """Databases and InfluxDB export microseconds and nanoseconds; read as milliseconds they were
    dates 50,000 years on, and the run died with a traceback."""
    stamps = [(1_700_000_000 + 3600 * i) * scale for i in range(3)]
    assert times_read(tmp_path, stamps) == [
        "2023-11-14 22:13:20",
        "2023-11-14 23:13:20",
        "2023-11-15 00:13:20",
    ]


def test_a_csv_opening_with_comment_lines_reads_from_its_header(tmp_path):
    """Exporters write notes above the header (``# exported by …``); polars took the first as the
    header and refused the rest as having more fields than it."""
    import gzip

    notes = "# exported by sensor-hub v2\n# units: degC, one row an hour\n"
    text = notes + "date,y\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n"
    (tmp_path / "c.csv").write_text(text)
    (tmp_path / "c.csv.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("c.csv", "c.csv.gz"):
        tf = read_frame(tmp_path / name)
        assert tf.frame.columns == ["date", "y"] and tf.frame["y"].to_list() == [1, 2]


def test_numbers_with_thousands_commas_in_a_comma_file_read_as_numbers(tmp_path):
    """A spreadsheet's number format exports ``"1,234.50"`` quoted; the run stopped on it as text."""
    p = tmp_path / "sales.csv"
    p.write_text(
        'date,sales,note\n2024-01-01,"1,234.50",a\n2024-01-02,987.25,"b,c"\n2024-01-03,"-12,000",d\n'
    )
    tf = read_frame(p)
    assert tf.frame["sales"].to_list() == [1234.5, 987.25, -12000.0]
    assert tf.frame["note"].to_list() == ["a", "b,c", "d"]  # text stays text


def test_thousands_commas_in_a_semicolon_file_read_as_numbers_and_a_mix_is_named(tmp_path):
    """A semicolon file need not be of a decimal-comma locale: ``"10,000.00"`` (thousands and a dot)
    was refused as "numbers written with units … (None)". Decimal commas still read first, and a
    column of both kinds is named for what it is."""
    p = tmp_path / "s.csv"
    p.write_text('"date";"load";"rate"\n"2024-01-01";"10,000.00";"1,5"\n"2024-01-02";"9,876.5";"2,25"\n')
    tf = read_frame(p)
    assert tf.frame["load"].to_list() == [10000.0, 9876.5] and tf.frame["rate"].to_list() == [1.5, 2.25]
    p.write_text("date;load\n2024-01-01;1,5\n2024-01-02;1,234.5\n")
    with pytest.raises(InputError, match="commas and dots read no one way"):
        read_series(p, ["load"])


def test_a_file_aligned_with_blanks_around_its_separators_reads(tmp_path):
    """``date , load`` with `` 2024-01-01 00:00:00 , 100.00 ``: the stamps were unparsable and the
    values text. Whole numbers stay whole, so padded digits of dates are still dates."""
    p = tmp_path / "aligned.csv"
    p.write_text("date , load \n 2024-01-01 00:00:00 , 100.00 \n 2024-01-01 01:00:00 , 103.5 \n")
    tf = read_frame(p)
    assert tf.frame["load"].to_list() == [100.0, 103.5]
    assert [str(t) for t in tf.frame["date"]] == ["2024-01-01 00:00:00", "2024-01-01 01:00:00"]
    p.write_text("date , y \n 20240101 , 1 \n 20240102 , 2 \n")
    assert [str(t) for t in read_frame(p).frame["date"]] == ["2024-01-01 00:00:00", "2024-01-02 00:00:00"]


@pytest.mark.parametrize(
    ("sep", "values", "expected"),
    [
        (",", ['"$1,234.50"', '"-$12.00"', "$7"], [1234.5, -12.0, 7.0]),  # a currency format, exported
        (",", ["12.5%", "-3%", "0.25 %"], [12.5, -3.0, 0.25]),  # percent points, as written
        (",", ["21.5°C", "-2°C", "19.25°C"], [21.5, -2.0, 19.25]),
        (",", ["100.13 kWh", "98 kWh", "1e3 kWh"], None),  # an exponent is no unit: stays text
        (",", ["100.13 kWh", "98 kWh", "101.5 kWh"], [100.13, 98.0, 101.5]),
        (";", ["12,5 %", "-3,25 %", "1.234,5 %"], [12.5, -3.25, 1234.5]),  # a decimal-comma locale
        (",", ["5 kWh", "6 MWh", "7 kWh"], None),  # two units: which one is meant is not for us to say
        (",", ["1977 Jan", "1978 Jan", "1979 Jan"], None),  # yearly labels, not numbers in months
    ],
    ids=["currency", "percent", "degrees", "exponent", "word", "decimal-comma", "two-units", "months"],
)
def test_numbers_written_with_one_unit_read_as_numbers(tmp_path, sep, values, expected):
    """``$1,234.50``, ``12.5%`` or ``100.13 kWh`` in every row was refused as a column of text."""
    p = tmp_path / "units.csv"
    rows = "".join(f"2024-01-0{i + 1} 00:00{sep}{v}{sep}{i}\n" for i, v in enumerate(values))
    p.write_text(f"date{sep}y{sep}n\n" + rows)
    frame = read_frame(p).frame
    if expected is None:
        assert frame["y"].dtype == pl.String
    else:
        assert frame["y"].to_list() == expected


@pytest.mark.parametrize(
    "text",
    [
        "date,y\n,kWh\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n",  # a row of units under the header
        # a Campbell Scientific logger's TOA5: a metadata line, the names, units and processing
        '"TOA5","CR1000","1234","Hourly"\n"TIMESTAMP","RECORD","y"\n"TS","RN","Deg C"\n"","","Avg"\n'
        '"2024-01-01 00:00:00",0,1\n"2024-01-01 01:00:00",1,2\n',
        "# exported by a meter\nSite A;north;meter 7\ndate;y\n2024-01-01 00:00;1\n2024-01-01 01:00;2\n",
        "sep=;\ndate;y\n2024-01-01 00:00;1\n2024-01-01 01:00;2\n",  # a chart's "CSV for Excel" download
        # a dataset's notes under its header, more lines than unit rows may take (spotpy's weather)
        "date,y\n#\n# a weather station, Hesse, Germany\n# https://example.org/f09/hydro\n# as is\n#\n"
        "2024-01-01 00:00,1\n2024-01-01 01:00,2\n",
        # the header itself a comment, data at once below (numpy's savetxt; spotpy's soil moisture)
        "# date,y\n#\n# a soil moisture profile, Hesse\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n",
    ],
    ids=[
        "unit-row",
        "toa5",
        "comment-and-metadata",
        "excel-separator-line",
        "comments-under-header",
        "header-as-comment",
    ],
)
def test_notes_above_the_header_and_unit_rows_below_it_are_skipped(tmp_path, text):
    """A unit row read as the first record stopped the run on an empty timestamp; a metadata line
    above the header became the header, and no time column was found."""
    frame = read_frame(write(tmp_path, text)).frame
    assert frame["y"].to_list() == [1, 2]
    assert frame[frame.columns[0]].to_list() == [datetime(2024, 1, 1, 0), datetime(2024, 1, 1, 1)]


def test_a_file_of_text_rows_keeps_them_and_a_file_without_header_reads_as_before(tmp_path):
    layout = csv_layout(["id,name\n", "a,north\n", "b,south\n"])  # no data row follows: nothing skipped
    assert (layout.before, layout.after) == (0, 0)
    plain = csv_layout(["1.5,2\n", "2.5,3\n"])
    assert (plain.header, plain.before, plain.after) == ("1.5,2\n", 0, 0)
    ids = csv_layout(["id,date,y\n", "#A1,2024-01-01,5\n", "#A2,2024-01-01,6\n"])  # ids, not comments
    assert (ids.before, ids.after) == (0, 0)


def test_numbers_in_several_units_are_named_as_such_not_as_labels(tmp_path):
    """A dashboard's formatted export (``1.2 kB``, ``512 B``) was told to one-hot encode its text."""
    text = "Time,y\n2024-01-01 00:00,1.2 kB\n2024-01-01 01:00,512 B\n2024-01-01 02:00,3 MB\n"
    tf = read_frame(write(tmp_path, text))
    with pytest.raises(InputError, match=r"numbers written with units .* \('kB', 'B', 'MB'\); export them"):
        make_windows(tf, 1, 1, [], ["y"])


def test_a_line_with_more_fields_than_the_header_is_named(tmp_path):
    """A total under the data (``Total,,``) stopped the run with polars' words and no line."""
    p = tmp_path / "footer.csv"
    p.write_text("# exported\ndate,y\n2024-01-01,1\n2024-01-02,2\n\nTotal,,3\n")
    with pytest.raises(InputError, match=r"line 6 has 3 fields where the header names 2 \('Total,,3'\)"):
        read_frame(p)


def test_rows_that_each_end_with_a_separator_read_and_a_total_under_them_is_still_named(tmp_path):
    """An exporter that ends every row with a separator was refused as ragged; a ``Total,,`` line
    under well-formed rows is a note, not data, and is still named."""
    ragged = write(tmp_path, "ts,y\n2024-01-01 00:00,1,\n2024-01-01 01:00,2,\n2024-01-01 02:00,3,\n")
    assert read_frame(ragged).frame["y"].to_list() == [1, 2, 3]
    total = write(tmp_path, "ts,y\n2024-01-01 00:00,1\n2024-01-01 01:00,2\nTotal,,\n", name="t.csv")
    with pytest.raises(InputError, match=r"line 4 has 3 fields where the header names 2 \('Total,,'\)"):
        read_frame(total)


@pytest.mark.parametrize(
    ("text", "first", "second"),
    [
        ("Year,Month,v\n1950,12,1\n1951,1,2\n", datetime(1950, 12, 1), datetime(1951, 1, 1)),
        ("year,month,v\n1950,Dec,1\n1951,Jan,2\n", datetime(1950, 12, 1), datetime(1951, 1, 1)),
        ("YEAR,QTR,v\n1950,4,1\n1951,1,2\n", datetime(1950, 10, 1), datetime(1951, 1, 1)),
        ("Year,Quarter,v\n1950,Q4,1\n1951,Q1,2\n", datetime(1950, 10, 1), datetime(1951, 1, 1)),
        ("Year,Month,Day,v\n1950,12,31,1\n1951,1,1,2\n", datetime(1950, 12, 31), datetime(1951, 1, 1)),
        ("Year,v\n1913,1\n1914,2\n", datetime(1913, 1, 1), datetime(1914, 1, 1)),  # whole years
    ],
    ids=["year-month", "month-names", "year-qtr", "quarter-labels", "year-month-day", "year"],
)
def test_date_parts_in_columns_make_the_time_column(tmp_path, text, first, second):
    """``Year,Month,Value`` (a statistics office's layout) had no time column and was refused."""
    frame = read_frame(write(tmp_path, text)).frame
    assert frame.columns == ["ts", "v"] and frame["ts"].to_list() == [first, second]


def test_a_row_per_year_and_a_column_per_month_reads_as_one_monthly_series(tmp_path):
    """A climate archive's table (``Year,Jan,…,Dec`` and an annual mean) as a row per month."""
    months = "Jan,Feb,Mar,Apr,May,Jun,Jul,Aug,Sep,Oct,Nov,Dec"
    text = f"Year,{months},J-D\n1950,{','.join(map(str, range(1, 13)))},6.5\n"
    text += f"1951,{','.join(map(str, range(13, 25)))},18.5\n"
    frame = read_frame(write(tmp_path, text)).frame
    assert frame.columns == ["ts", "value"] and frame["value"].to_list() == list(range(1, 25))
    assert frame["ts"][0] == datetime(1950, 1, 1) and frame["ts"][23] == datetime(1951, 12, 1)


def test_month_dummies_beside_a_year_and_a_month_leave_the_table_long(tmp_path):
    """An econometrics file (``year,month,…,jan,…,dec``, a 0/1 column per month) repeats each year
    on twelve rows: it is a long table stamped by its year and month, not a row per year."""
    dummies = "jan,feb,mar,apr,may,jun,jul,aug,sep,oct,nov,dec"
    rows = [f"1964,{m},{10 + m},{','.join('1' if k == m else '0' for k in range(1, 13))}" for m in (1, 2, 3)]
    frame = read_frame(write(tmp_path, f"year,month,ipcem,{dummies}\n" + "\n".join(rows) + "\n")).frame
    assert frame["ipcem"].to_list() == [11, 12, 13] and frame["jan"].to_list() == [1, 0, 0]
    assert frame["ts"].to_list() == [datetime(1964, m, 1) for m in (1, 2, 3)]


def test_a_year_on_twelve_rows_with_nothing_to_tell_them_apart_asks_for_their_dates(tmp_path):
    """Wooldridge's ``traffic2`` stamps its months by ``year`` alone (February to December as 0/1
    columns): the advice names that column and the months, not a series column the file lacks."""
    rows = [
        f"{y},{100 * y + m},{','.join('1' if k == m else '0' for k in range(2, 13))}"
        for y in (1981, 1982)
        for m in range(1, 13)
    ]
    text = "year,totacc," + ",".join(f"m{k}" for k in range(2, 13)) + "\n" + "\n".join(rows) + "\n"
    with pytest.raises(
        InputError, match=r"'year' holds whole years only, 12 rows to a year.*give each row its date"
    ):
        read_frame(write(tmp_path, text))
    # a panel of years and country codes still names its code column as the series
    panel = "".join(f"{y},{c},{y + c}.5\n" for y in range(1990, 2010) for c in (1, 2))
    with pytest.raises(InputError, match=r"pass --series-col code$"):
        read_frame(write(tmp_path, "year,code,gdp\n" + panel, "panel.csv"))


@pytest.mark.parametrize(
    "text",
    ["Year,Month,v\n1950,13,1\n1951,1,2\n", "Year,Month,Day,v\n1950,4,31,1\n1950,5,1,2\n"],
    ids=["month-13", "april-31"],
)
def test_date_parts_that_are_no_date_are_refused_as_before(tmp_path, text):
    with pytest.raises(InputError, match="no time column"):
        read_frame(write(tmp_path, text))


def test_a_time_column_wins_over_date_parts(tmp_path):
    frame = read_frame(write(tmp_path, "date,Year,v\n2024-01-01,1999,1\n2024-01-02,1999,2\n")).frame
    assert frame["date"][1] == datetime(2024, 1, 2) and frame["Year"].to_list() == [1999, 1999]


def test_a_json_file_of_rows_reads_and_one_of_columns_says_how_to_write_it(tmp_path):
    """``.json`` was refused as an unknown file type; most exporters write an array of row objects."""
    rows = tmp_path / "rows.json"
    rows.write_text('[{"date": "2024-01-01 00:00", "y": 1.5}, {"date": "2024-01-01 01:00", "y": 2.5}]')
    assert read_frame(rows).frame["y"].to_list() == [1.5, 2.5]
    lines = tmp_path / "lines.json"  # JSON lines named .json
    lines.write_text('{"date": "2024-01-01 00:00", "y": 1.5}\n{"date": "2024-01-01 01:00", "y": 2.5}\n')
    assert read_frame(lines).frame["y"].to_list() == [1.5, 2.5]
    columns = tmp_path / "columns.json"  # pandas' default orient, its index row numbers
    columns.write_text(
        '{"date": {"0": "2024-01-01 00:00", "1": "2024-01-01 01:00"}, "y": {"0": 1.5, "1": 2.5}}'
    )
    assert read_frame(columns).frame["y"].to_list() == [1.5, 2.5]
    lists = tmp_path / "lists.json"  # an object of arrays: no layout of rows
    lists.write_text('{"date": ["2024-01-01 00:00", "2024-01-01 01:00"], "y": [1.5, 2.5]}')
    with pytest.raises(InputError, match=r"one object of columns.*orient='records'"):
        read_frame(lists)


@pytest.mark.parametrize("orient", ["columns", "index", "split", "table", "records", "series"])
def test_every_layout_of_pandas_to_json_reads_alike(tmp_path, orient):
    """pandas' default ``to_json`` (an object per column, keyed by the index's epoch milliseconds) was
    refused with advice to write rows; each layout now reads as the rows do, its index the time."""
    ms = [1_704_067_200_000 + 3_600_000 * i for i in range(3)]
    iso = ["2024-01-01T00:00:00.000", "2024-01-01T01:00:00.000", "2024-01-01T02:00:00.000"]
    load = [1.5, 2.5, 4.0]
    text = {
        "columns": {"load": dict(zip(map(str, ms), load, strict=True))},
        "index": {str(t): {"load": v} for t, v in zip(ms, load, strict=True)},
        "split": {"columns": ["load"], "index": ms, "data": [[v] for v in load]},
        "table": {
            "schema": {"fields": [{"name": "ts"}, {"name": "load"}], "primaryKey": ["ts"]},
            "data": [{"ts": t, "load": v} for t, v in zip(iso, load, strict=True)],
        },
        "records": [{"ts": t, "load": v} for t, v in zip(ms, load, strict=True)],
        "series": dict(zip(map(str, ms), load, strict=True)),
    }[orient]
    p = tmp_path / f"{orient}.json"
    p.write_text(json.dumps(text))
    data = read_series(p, ["value" if orient == "series" else "load"])
    assert data.frame[data.targets[0]].to_list() == load
    assert [str(t) for t in data.frame["ts"]][1] == "2024-01-01 01:00:00"


def test_a_long_file_whose_series_are_told_apart_by_two_columns(tmp_path):
    """An InfluxDB export or a metric with labels: a series is a host and a field. Naming one of the
    two, each "series" held two and the advice was to name the other instead."""
    p = tmp_path / "influx.csv"
    rows = [
        f"2024-01-01T0{h}:00Z,{h + v},{f},{host}"
        for h in range(3)
        for host in "ab"
        for f, v in (("cpu", 0), ("mem", 10))
    ]
    p.write_text("_time,_value,_field,host\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"\(series a\).*--series-col host,_field"):
        read_series(p, ["_value"], series_col="host")
    data = read_series(p, ["_value"], series_col="host,_field")
    assert sorted(data.frame["series"].unique()) == ["a/cpu", "a/mem", "b/cpu", "b/mem"]
    assert data.frame.filter(pl.col("series") == "b/mem")["_value"].to_list() == [10.0, 11.0, 12.0]
    with pytest.raises(InputError, match="'pod' not found"):
        read_series(p, ["_value"], series_col="host,pod")


@pytest.mark.parametrize(
    "first, second",
    [
        ("2024-01-01 13:00:00 UTC", "2024-01-01 14:00:00 UTC"),  # BigQuery's export
        ("01-Jan-2024 13:00", "01-Jan-2024 14:00"),  # month names
        ('"Jan 1, 2024 13:00"', '"Jan 1, 2024 14:00"'),  # quoted: it holds a comma
        ("20240101T130000", "20240101T140000"),
        ("202401011300", "202401011400"),  # digits of a date: read as epoch ms they were 1976
        ("2024010113", "2024010114"),
    ],
)
def test_more_ways_of_writing_a_time_read_as_meant(tmp_path, first, second):
    assert times_read(tmp_path, [first, second]) == ["2024-01-01 13:00:00", "2024-01-01 14:00:00"]


def test_digits_of_dates_are_dates_and_epoch_numbers_stay_epochs(tmp_path):
    # 20240101 as epoch seconds was 1970-08-23; twelve digits that are no date are epoch ms of 2000
    assert times_read(tmp_path, [20240101, 20240102, 20240103])[2] == "2024-01-03 00:00:00"
    assert times_read(tmp_path, [946684800000, 946688400000])[1] == "2000-01-01 01:00:00"


def test_years_with_the_month_in_their_decimals_read_as_months(tmp_path):
    """``1947.01`` … ``1947.1`` (October) … ``1947.12``, as econometric files and Shiller's market
    data write months, float32 noise and all; read as epoch seconds they shared one second of 1970."""
    assert times_read(tmp_path, ["1947.010009765625", "1947.02001953125", "1947.1", "1947.12"]) == [
        "1947-01-01 00:00:00",
        "1947-02-01 00:00:00",
        "1947-10-01 00:00:00",
        "1947-12-01 00:00:00",
    ]
    assert times_read(tmp_path, ["1947.0", "1948.0"])[1] == "1948-01-01 00:00:00"  # whole years
    assert times_read(tmp_path, ["1947.25", "1947.5"])[0].startswith("1970")  # no months: as before


def test_a_spreadsheets_serial_dates_read_as_dates(tmp_path):
    """An unformatted date column exported from a spreadsheet holds days since 1899-12-30 (45292.5 is
    2024-01-01 12:00); read as epoch seconds they were hours of 1970-01-01."""
    serial = [f"{45292 + i / 24:.6f}" for i in range(3)]
    assert times_read(tmp_path, serial) == [
        "2024-01-01 00:00:00",
        "2024-01-01 01:00:00",
        "2024-01-01 02:00:00",
    ]
    assert times_read(tmp_path, [0, 3600, 7200])[2] == "1970-01-01 02:00:00"  # epoch seconds from 0 stay so


@pytest.mark.parametrize(
    "stamps",
    [
        ['"Mon, 01 Jan 2024 13:00:00 GMT"', '"Mon, 01 Jan 2024 14:00:00 GMT"'],  # HTTP's, e-mail's
        ["Mon Jan 01 13:00:00 2024", "Mon Jan 01 14:00:00 2024"],  # ctime's
        ["Monday 2024-01-01 13:00", "monday 2024-01-01 14:00"],
    ],
)
def test_a_days_name_before_a_stamp_is_read_past(tmp_path, stamps):
    assert times_read(tmp_path, stamps) == ["2024-01-01 13:00:00", "2024-01-01 14:00:00"]


def test_a_stamp_ending_in_a_zones_name_is_refused_with_what_to_write(tmp_path):
    """CST is UTC-6 in Chicago and UTC+8 in Beijing: no offset is guessed."""
    with pytest.raises(InputError, match=r"a time zone's name \(CET\) says no offset for sure.*\+01:00"):
        times_read(tmp_path, ["2024-01-01 00:00:00 CET", "2024-01-01 01:00:00 CET"])


def test_epoch_numbers_rounded_by_scientific_notation_are_refused(tmp_path):
    """Epoch milliseconds written ``1.704067e+12`` (7 significant digits) put an hourly feed's rows
    3,000 and 4,000 seconds apart: the run rejected three in four records as off its grid and said
    to declare a rate. Whole seconds as floats, and hourly epoch seconds, are not refused."""
    hours = [1_704_067_200_000 + 3_600_000 * i for i in range(24)]
    with pytest.raises(
        InputError, match=r"rounded to 7 significant digits \(1\.704067e\+12, every one a multiple of 1e6"
    ):
        times_read(tmp_path, [f"{t:.6e}" for t in hours])
    assert times_read(tmp_path, [f"{t:.1f}" for t in hours])[1] == "2024-01-01 01:00:00"
    assert times_read(tmp_path, [f"{t / 1000:.1f}" for t in hours])[1] == "2024-01-01 01:00:00"


def test_numbers_read_as_seconds_of_1970_are_noted(tmp_path):
    """A day count (Python's ``date.toordinal``: 736389 is 2017-03-01) read as epoch seconds puts
    every row within minutes of 1970-01-09: the run says so, and what to write instead. Epoch
    seconds of now, and digits of dates of the early 1970s, are not noted."""

    def notes(stamps: list) -> list[str]:
        p = tmp_path / "t.csv"
        p.write_text("date,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(stamps)))
        return read_series(p, ["y"]).notes()

    (note,) = notes([736389 + i for i in range(5)])
    assert "read as seconds since 1970 (1970-01-09 12:33:09 to 1970-01-09 12:33:13)" in note
    assert "write them as dates" in note
    assert notes([0, 1, 2]) and not notes([1_700_000_000 + 3600 * i for i in range(3)])
    assert not notes([197001, 197002, 197003])  # January to March 1970, as digits of months


def test_a_file_of_a_series_per_row_reads_each_row_as_a_series(tmp_path):
    """M4's layout: ``"V1","V2",…``, an id then the values in order, a shorter series' row ending in
    empty cells. It was refused for want of a time column."""
    p = tmp_path / "Hourly-train.csv"
    p.write_text('"V1","V2","V3","V4"\n"H1",1.0,2.0,3.0\n"H2",10.0,20.0,\n')
    data = read_series(p, ["y"], step_ms=3_600_000, series_rows=True)
    h2 = data.frame.filter(pl.col("series") == "H2")
    assert data.n_series == 2 and data.frame.height == 5 and h2["y"].to_list() == [10.0, 20.0]
    assert [str(t) for t in h2["ts"]] == ["1970-01-01 00:00:00", "1970-01-01 01:00:00"]
    with pytest.raises(InputError, match=r"give its step, e\.g\. --frequency 1h"):
        read_series(p, ["y"], series_rows=True)


def test_every_layout_is_replayed_in_time_order_with_the_series_by_name_at_each_time(tmp_path):
    """The frame is stacked a series at a time and put in time order by a stable sort on time alone,
    so each layout must stack its series by name: ids 10 and 9 (``"10" < "9"``), columns ``b, a``,
    rows ``H2, H10, H1``."""
    long = tmp_path / "long.csv"
    long.write_text(
        "time,host,y\n" + "".join(f"2024-01-01 0{h}:00,{s},{h + s}\n" for h in (2, 0, 1) for s in (9, 10))
    )
    wide = tmp_path / "wide.csv"
    wide.write_text("time,b,a\n2024-01-01 00:00,1,2\n2024-01-01 01:00,3,4\n")
    rows = tmp_path / "rows.csv"
    rows.write_text('"V1","V2","V3"\n"H2",1,2\n"H10",3,4\n"H1",5,6\n')
    for data, names in [
        (read_series(long, ["y"], series_col="host"), ["10", "9"]),
        (read_series(wide, ["y"], series_cols=["*"]), ["a", "b"]),
        (read_series(rows, ["y"], step_ms=3_600_000, series_rows=True), ["H1", "H10", "H2"]),
    ]:
        frame = data.frame
        assert frame.equals(frame.sort("ts", "series", maintain_order=True))
        assert frame.filter(pl.col("ts") == frame["ts"].min())["series"].to_list() == names


def test_dates_written_in_two_orders_are_refused_naming_the_swap(tmp_path):
    """spotpy's weather file: the hours of days 1-12 of each month written year, day, month (what a
    parser that read ``01.12.2014`` month first leaves), the others year, month, day. Sorting them
    put 12 January's hours on 1 December; a file that is only unsorted still reads."""
    hours = [datetime(2014, 1, 11) + timedelta(hours=6 * i) for i in range(12)]  # 11-13 January
    mixed = [f"{t:%Y-%d-%m %H:%M}" if t.day <= 12 else f"{t:%Y-%m-%d %H:%M}" for t in hours]
    p = write(tmp_path, "time,y\n" + "".join(f"{w},{i}\n" for i, w in enumerate(mixed)), "w.csv")
    with pytest.raises(InputError, match=r"\('2014-11-01 00:00' as 2014-01-11 00:00:00\): its dates are"):
        read_series(p, ["y"])
    unsorted = [f"{hours[i]:%Y-%m-%d %H:%M}" for i in (0, 2, 1, 3, 5, 4)]
    p.write_text("time,y\n" + "".join(f"{w},{i}\n" for i, w in enumerate(unsorted)))
    assert read_series(p, ["y"]).resorted

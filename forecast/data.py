"""Data utilities on polars: validated time-indexed frames, sliding windows, time features, ETT splits.

Every problem with user data raises :class:`~forecast.base.InputError` naming the file and
column and saying what to do, so the CLI can print it and exit 2 without a traceback.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import lzma
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import orjson
import polars as pl
import zstandard

from adaptcast.forecast import exports, otlp, pandas_json
from adaptcast.forecast.base import VALUE_LIMIT, InputError
from adaptcast.forecast.csv_layout import CsvLayout, csv_layout
from adaptcast.forecast.date_parts import DATE_PARTS_TIME, by_month_columns, from_date_parts
from adaptcast.forecast.outliers import clean
from adaptcast.forecast.periods import MONTH_NAMES, period_starts
from adaptcast.forecast.windows import sliding_windows

TIME_COLUMNS = ("date", "ts", "timestamp", "time", "datetime", "ds")  # any case; ``ds``: Prophet's name
Duplicates = Literal["last", "first", "error"]
N_TIME_FEATURES = 4


@dataclass(frozen=True)
class FrameReport:
    """What validation found: rows kept, duplicates dropped, whether input was unsorted, gaps in time."""

    rows: int
    duplicates_dropped: int
    was_sorted: bool
    step: str | None
    gaps: int
    largest_gap: str | None

    def summary(self) -> str:
        parts = [f"{self.rows} rows", f"step {self.step}"]
        if self.duplicates_dropped:
            parts.append(f"{self.duplicates_dropped} duplicate timestamps dropped")
        if not self.was_sorted:
            parts.append("re-sorted by time")
        if self.gaps:
            parts.append(f"{self.gaps} gaps (largest {self.largest_gap})")
        return ", ".join(parts)


@dataclass(frozen=True)
class TimeFrame:
    """A frame sorted by a datetime column with unique timestamps, and where it came from."""

    frame: pl.DataFrame
    time_col: str
    source: str
    report: FrameReport = field(compare=False)

    @property
    def numeric_columns(self) -> list[str]:
        return [c for c, dt in self.frame.schema.items() if c != self.time_col and dt.is_numeric()]


class Windows(NamedTuple):
    """Sliding windows: ``X [N, lookback, F]``, ``Y [N, horizon, T]`` and the last input timestamp of each."""

    X: np.ndarray
    Y: np.ndarray
    timestamps: np.ndarray


def read_frame(
    path: str | Path,
    time_col: str | None = None,
    duplicates: Duplicates = "last",
    step_ms: int | None = None,
    table: pl.DataFrame | None = None,
) -> TimeFrame:
    """Read a CSV, Parquet, Feather, JSON or JSON-lines file with a time column into a validated
    :class:`TimeFrame`.

    ``time_col=None`` finds it (:func:`find_time_column`). A file with none (benchmark files that
    hold only values) is read as rows ``step_ms`` apart from 1970-01-01 if a step is given.
    Duplicate timestamps keep the ``last`` (or ``first``) row, or raise with ``duplicates="error"``.
    ``table`` is the file as :func:`read_table` reads it, where the caller has read it already.
    """
    p = Path(path)
    return _stamped(read_table(p) if table is None else table, p, time_col, duplicates, step_ms)


def _stamped(
    df: pl.DataFrame, path: Path, time_col: str | None, duplicates: Duplicates, step_ms: int | None
) -> TimeFrame:
    """:func:`read_frame` of a file's table as read; one with no time column but date parts (a year,
    and its quarter or month and day; or a column per month) has one put together from them."""
    shown = None  # what advice calls a time column put together from the file's columns
    if time_col is None and not _time_columns(df, str(path)):
        composed = by_month_columns(df)
        if composed is None:
            composed = from_date_parts(df)
            if composed is not None:  # the parts it dropped: what the file calls its time
                shown = " and ".join(repr(c) for c in df.columns if c not in composed.columns)
        if composed is not None:
            df, time_col = composed, DATE_PARTS_TIME
        elif step_ms is not None:
            df = df.with_columns(pl.Series(ROW_TIME, np.arange(df.height) * step_ms).cast(pl.Datetime("ms")))
            time_col = ROW_TIME
    return validate_frame(df, time_col=time_col, source=str(path), duplicates=duplicates, time_name=shown)


ROW_TIME = "ts"  # the time column a file without one is given (its rows numbered a step apart)


# the texts spreadsheets, R, pandas, SAS/Stata (".") and Go/Ruby/Lua ("nil") write for "no value",
# and UCI's "?"; they read as missing
MISSING_TOKENS = (
    *("", "NA", "N/A", "n/a", "#N/A", "NaN", "nan", "NAN", "-nan", "NULL", "null", "None"),
    *("<NA>", "?", ".", "nil", "NIL", "#VALUE!", "#DIV/0!"),
)
# polars' words for a field that its column's inferred type cannot hold
UNPARSED = re.compile(r"could not parse `(?P<value>[^`]*)` as dtype `[^`]*` at column '(?P<column>[^']*)'")


ARROW = (".feather", ".arrow", ".ipc")  # Arrow's IPC file: pandas' to_feather, polars' write_ipc
# a file compressed whole, as downloads and exports often are
COMPRESSED = (".gz", ".zst", ".zstd", ".bz2", ".xz")
POLARS_CODECS = (".gz", ".zst", ".zstd")  # of those, what polars reads a CSV compressed with itself
# a number written with a decimal comma, thousands optionally grouped by dots: 1,5  -3,25  1.234,5
DECIMAL_COMMA = r"^\s*[-+]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?\s*$"
# a number with thousands grouped by commas, in a comma-separated file (quoted): 1,234.5  -12,000
THOUSANDS = r"^\s*[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?\s*$"
PERIOD_WORDS = re.compile(r"(?i)^(q[1-4]|w\d\d|[ap]\.?m\.?|" + "|".join(MONTH_NAMES) + ")$")
# a number written with a unit: a currency before it, a percent, degrees or a word after it
# ($1,234.50  -€5  12.5%  21.5°C  100.13 kWh); a column reads as numbers if every value has the same one
WITH_UNIT = (
    r"^\s*(?P<sign>[-+]?)\s*(?P<pre>[$€£¥]?)\s*(?P<num>[\d.,]*\d)"
    r"(?P<post>\s*%|\s*°[CFK]?|\s+[^\W\d][\w/²³°·]*)?\s*$"
)


def read_table(path: Path, otlp_quantiles: Sequence[float] = ()) -> pl.DataFrame:
    """A CSV (TSV, TXT), Parquet, Arrow (Feather), JSON, JSON-lines or line-protocol file as it is, any
    of them also compressed whole (gzip, zstd, bzip2, xz), its column names stripped of surrounding blanks.
    A file of OTLP metrics requests also gives its histograms' and summaries' ``otlp_quantiles``.

    A CSV's layout is :func:`~adaptcast.forecast.csv_layout.csv_layout`'s (its separator the one its
    header line holds most of; notes above the header and unit rows below it skipped), and in a file
    separated by semicolons or tabs a column of numbers written with decimal commas (``1,5``,
    ``1.234,5``) reads as numbers: what spreadsheets set to such a locale export, in Windows-1252
    where the file is not UTF-8 (:func:`_as_utf8`); a column of numbers with thousands grouped by
    commas (``"1,234.5"``) does in any CSV. The :data:`MISSING_TOKENS` read as missing values.
    """
    if not path.is_file():
        raise InputError(
            f"{path}: file not found; pass an existing CSV, Parquet, Feather, JSON or JSON-lines file"
        )
    suffixes = [x.lower() for x in path.suffixes[-2:]]
    compressed = bool(suffixes) and suffixes[-1] in COMPRESSED
    suffix = suffixes[0] if compressed and len(suffixes) == 2 else path.suffix.lower()
    whole = (*JSON_LINES, ".json", *LINE_PROTOCOL, ".parquet", ".pq", *ARROW)
    if compressed and (suffix in whole or suffixes[-1] not in POLARS_CODECS):
        return _read_decompressed(path, otlp_quantiles)
    try:
        if suffix in (".parquet", ".pq"):
            df = pl.read_parquet(path)
        elif suffix in ARROW:
            df = pl.read_ipc(path)
        elif suffix in JSON_LINES:
            df = _json_lines(path, otlp_quantiles)
        elif suffix == ".json":
            df = _json(path, otlp_quantiles)
        elif suffix in LINE_PROTOCOL:
            df = exports.line_protocol(path)
        elif suffix in (".csv", ".txt", ".tsv", ".dat"):  # .dat: a data logger's CSV (TOA5)
            layout = csv_layout(_head(path, compressed), tsv=suffix == ".tsv")
            try:
                df = _read_csv(path, compressed, layout)
            except pl.exceptions.ComputeError as exc:
                if "more fields than defined" not in str(exc) or compressed:
                    raise
                overlong = _ragged_line(path, layout)
                if overlong is not None:
                    raise InputError(overlong) from None
                df = _read_csv(path, compressed, layout, ragged=True)  # only empty fields past the header's
            # a semicolon or tab separates the fields of a locale with decimal commas, or of a file
            # that only avoids the commas of its thousands (10,000.00): each column, what reads
            df = _thousands(_decimal_commas(df)) if layout.separator != "," else _thousands(df)
        else:
            sheet = " (a spreadsheet: save it as CSV)" if suffix in (".xlsx", ".xls", ".ods") else ""
            raise InputError(
                f"{path}: unsupported file type {''.join(path.suffixes[-2:])!r}{sheet}; "
                "use .csv (.tsv, .txt, .dat), .parquet, .feather (.arrow), .json, .jsonl or .lp (line "
                "protocol), each also compressed (.gz, .zst, .bz2, .xz)"
            )
    except pl.exceptions.NoDataError:
        raise InputError(f"{path}: file is empty; it needs a header row and data rows") from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(_unreadable(path, suffix, str(exc))) from None
    stripped = [c.strip() for c in df.columns]
    if stripped != df.columns and len(set(stripped)) == len(stripped):
        df = df.rename(dict(zip(df.columns, stripped, strict=True)))
    # in one piece now, while only the pieces are held: grouping a table in pieces copies it whole for
    # as long as its groups are read, beside the table the caller holds
    return df.rechunk()


def _read_csv(path: Path, compressed: bool, layout: CsvLayout, ragged: bool = False) -> pl.DataFrame:
    """A CSV read as ``layout`` says; ``ragged``: rows past the header's width cut to it."""
    header, separator = layout.header, layout.separator
    # a first line of numbers only is no header but the first row (benchmark files of values)
    named = layout.names is None and not all(_is_number(c) for c in header.strip().split(separator))
    unnamed = [str(i) for i in range(header.count(separator) + 1)]
    return pl.read_csv(
        path if compressed else _as_utf8(path),
        separator=separator,
        has_header=named,
        skip_rows=layout.before,
        skip_rows_after_header=layout.after if named else 0,
        new_columns=None if named else list(layout.names or unnamed),
        infer_schema_length=10000,
        null_values=list(MISSING_TOKENS),
        truncate_ragged_lines=ragged,
    )


def _ragged_line(path: Path, layout: CsvLayout) -> str | None:
    """Where a CSV first holds more fields than its header names (a footer such as ``Total,,``, or a
    value holding the separator unquoted), with what to do about it; None when most rows do and
    every field past the header's is empty (an exporter that ends each row with a separator)."""
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        lines = list(f)
    separator, skipped = layout.separator, layout.before
    rows = csv.reader(lines[skipped:], delimiter=separator)
    width = len(next(rows, []))
    first, n_rows, n_long = None, 0, 0
    for row in rows:
        n_rows += 1
        if len(row) <= width:
            continue
        n_long += 1
        filled = any(field.strip() for field in row[width:])
        if first is None or (filled and not first[2]):
            first = (skipped + rows.line_num, row, filled)
        if filled:
            break
    if first is None or (not first[2] and 2 * n_long > n_rows):
        return None
    line, row, _ = first
    shown = separator.join(row)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return (
        f"{path}: line {line} has {len(row)} fields where the header names {width} ({shown!r}); "
        f"remove that line if it is a note or a total, or quote a value that holds the separator "
        f"{separator!r}"
    )


def _unreadable(path: Path, suffix: str, error: str) -> str:
    """Why a file could not be read; a text in a number column is named with what to write instead."""
    bad = UNPARSED.search(error)
    if bad is None:
        return f"{path}: cannot parse as {suffix[1:]} ({error.splitlines()[0]})"
    tokens = ", ".join(repr(t) for t in MISSING_TOKENS if t)
    return (
        f"{path}: column {bad['column']!r} holds numbers and the text {bad['value']!r}; if that marks a "
        f"missing value, write an empty field or one of {tokens} instead"
    )


JSON_LINES = (".jsonl", ".ndjson")
LINE_PROTOCOL = (".lp", ".line")  # InfluxDB line protocol: influx_inspect export, Telegraf's file output


def _read_decompressed(path: Path, otlp_quantiles: Sequence[float]) -> pl.DataFrame:
    """A compressed file of a type read whole (JSON, JSON lines, line protocol, Parquet: what
    ``influx_inspect export -compress``, the Collector's file exporter with ``compression: zstd``
    and gzipped downloads write), or of any type compressed in a way polars cannot read a CSV in
    (bzip2, xz: archives of datasets), decompressed into a temporary file of its inner name and
    read as that; an error names ``path``."""
    with tempfile.TemporaryDirectory(prefix="adaptcast-") as tmp:
        inner = Path(tmp) / path.with_suffix("").name  # export.lp.gz → export.lp
        try:
            with _decompressing(path) as src, inner.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError) as exc:  # BadGzipFile: an OSError
            raise InputError(f"{path}: cannot decompress as {path.suffix[1:]} ({exc})") from None
        try:
            return read_table(inner, otlp_quantiles)
        except InputError as exc:
            raise InputError(str(exc).replace(str(inner), str(path))) from None


def _decompressing(path: Path) -> Any:
    """A binary reader of ``path``'s decompressed bytes: gzip, bzip2, xz, or zstd across all its
    frames (a writer that compresses each batch writes one frame per batch)."""
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix.lower())
    if opener is not None:
        return opener(path, "rb")
    return zstandard.ZstdDecompressor().stream_reader(path.open("rb"), read_across_frames=True, closefd=True)


def _is_number(text: str) -> bool:
    try:
        float(text.strip().replace(",", "."))
    except ValueError:
        return False
    return True


def _json_lines(path: Path, otlp_quantiles: Sequence[float]) -> pl.DataFrame:
    """One JSON object per line: flat rows, or the records a Kafka topic carries (``series``, ``ts``,
    ``values``: a dump of a topic), whose ``values`` become columns, or OTLP metrics requests
    (:mod:`~adaptcast.forecast.otlp`). A line that is not a JSON object raises naming its number."""
    with path.open("rb") as f:
        if otlp.may_be_requests(f.read(1 << 12)):
            return otlp.read_requests(path, tuple(otlp_quantiles))
    try:
        df = pl.read_ndjson(path, infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        with path.open("rb") as f:
            for number, line in enumerate(f, 1):
                try:
                    ok = isinstance(orjson.loads(line), dict) if line.strip() else True
                except orjson.JSONDecodeError:
                    ok = False
                if not ok:
                    text = line[:80].decode(errors="replace")
                    raise InputError(
                        f"{path}: line {number} is not a JSON object ({text!r}); write one object per line"
                    ) from None
        raise InputError(f"{path}: cannot parse as JSON lines ({str(exc).splitlines()[0]})") from None
    return exports.victoria_export(df, path) if exports.is_victoria_export(df) else _unnest_values(df, path)


def _json(path: Path, otlp_quantiles: Sequence[float]) -> pl.DataFrame:
    """A ``.json`` file: an array of row objects (what most exporters and pandas' ``orient="records"``
    write), an answer of Prometheus' HTTP API (:mod:`~adaptcast.forecast.exports`), one object as
    pandas' other layouts write it (:mod:`~adaptcast.forecast.pandas_json`), else JSON lines (OTLP
    metrics requests among them)."""
    with path.open("rb") as f:
        head = f.read(1 << 12)
    if exports.may_be_prometheus_answer(head):
        try:
            obj = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            obj = None  # JSON lines whose first line has such keys
        if exports.is_prometheus_answer(obj):
            return exports.prometheus_answer(obj, path)
    if head.lstrip()[:1] == b"{":  # one object: pandas' to_json of a frame's columns, or of a Series
        rows = pandas_json.frame(_one_object(path))
        if rows is not None:
            return rows
    if head.lstrip()[:1] != b"[":
        df = _json_lines(path, otlp_quantiles)
        if df.height == 1 and all(isinstance(t, pl.Struct | pl.List) for t in df.dtypes):
            raise InputError(
                f"{path}: one object of columns, not rows, in no layout pandas writes; write an array "
                "of row objects (to_json(orient='records')) or one object per line"
            )
        return df
    try:
        df = pl.read_json(path, infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"{path}: cannot parse as a JSON array of row objects ({str(exc).splitlines()[0]}); write "
            "[{...}, {...}] or one object per line"
        ) from None
    return _unnest_values(df, path)


def _one_object(path: Path) -> Any:
    """The JSON value of a file that holds one, on one line or pretty-printed over many; None for
    JSON lines, told by their first line, so a large file of them is not read whole here."""
    with path.open("rb") as f:
        first = f.readline()
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError:  # one value over several lines, or not JSON
            obj = None
        else:
            more = f.read(1 << 12).strip()
            return None if more else obj
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return None


def _unnest_values(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Records a Kafka topic carries (``series``, ``ts``, ``values``) with their values as columns."""
    if isinstance(df.schema.get("values"), pl.Struct):
        clash = set(df.schema["values"].to_schema()) & (set(df.columns) - {"values"})  # type: ignore[union-attr]
        if clash:
            raise InputError(f"{path}: values named {sorted(clash)} clash with the record's own fields")
        df = df.unnest("values")
    return df


def _as_utf8(path: Path) -> Path | io.BytesIO:
    """The file, or its text re-encoded as UTF-8 when it is not UTF-8: spreadsheets in western
    locales export Windows-1252 (``Temperatur °C``), whose names and text would otherwise read with
    replacement characters."""
    check = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):  # in chunks: a large file is never held twice
                check.decode(chunk)
            check.decode(b"", final=True)
    except UnicodeDecodeError:
        return io.BytesIO(path.read_bytes().decode("cp1252", errors="replace").encode())
    return path


def file_stem(path: str | Path) -> str:
    """The file's name without its type or compression: ``load`` for ``load.csv.gz``."""
    p = Path(path)
    return Path(p.stem).stem if p.suffix.lower() in COMPRESSED else p.stem


COMMENT_LINES = 100  # a CSV may open with up to this many lines starting with "#" (an exporter's notes)


def _head(path: Path, compressed: bool) -> list[str]:
    """A CSV's first lines, enough to find its header past the notes above it (polars decompresses
    a compressed file)."""
    if not compressed:
        with path.open("rb") as f:
            lines = [f.readline(1 << 16).decode(errors="replace") for _ in range(COMMENT_LINES + 1)]
    else:
        head = pl.read_csv(
            path,
            has_header=False,
            n_rows=COMMENT_LINES + 1,
            separator="\x1f",
            quote_char=None,
            infer_schema=False,
        )
        lines = [str(v) for v in head.to_series()] if head.height else [""]
    return lines


def _decimal_commas(df: pl.DataFrame) -> pl.DataFrame:
    """Text columns whose every value is a number with a decimal comma (see ``DECIMAL_COMMA``), as floats."""
    return _grouped_numbers(df, DECIMAL_COMMA, group=".", decimal=",")


def _thousands(df: pl.DataFrame) -> pl.DataFrame:
    """Text columns whose every value is a number, some with thousands grouped by commas (``"1,234.5"``,
    what a spreadsheet's number format exports, quoted), as floats."""
    return _grouped_numbers(df, THOUSANDS, group=",", decimal=".")


def _grouped_numbers(df: pl.DataFrame, pattern: str, group: str, decimal: str) -> pl.DataFrame:
    """Text columns of numbers, as floats: every value matches ``pattern`` once its unit is taken off
    (:data:`WITH_UNIT`), and some hold a comma or blanks around them, or all share one unit
    (``12.5%`` reads as 12.5)."""
    numbers = []
    for c, dtype in df.schema.items():
        values = df[c].drop_nulls()
        if dtype != pl.String or not values.len() or not values.head(100).str.contains(WITH_UNIT).all():
            continue  # the first values tell a column of ids or labels apart cheaply
        parts = df[c].str.extract_groups(WITH_UNIT)  # the whole column, its missing values kept
        given = df[c].is_not_null()
        signed = parts.struct.field("sign") + parts.struct.field("num")
        digits = signed.filter(given)
        units = (
            (parts.struct.field("pre") + parts.struct.field("post").fill_null("").str.strip_chars())
            .filter(given)
            .unique()
        )
        if digits.is_null().any() or not digits.str.contains(pattern).all():
            continue
        label = PERIOD_WORDS.match(units[0] or "")  # 1977 Jan: a time, not a unit
        # one unit, or none but a comma or blanks around the digits, which kept polars from reading them
        commas = values.str.contains(",", literal=True).any()
        padded = values.str.contains(r"^\s|\s$").any()
        if units.len() == 1 and not label and (units[0] or padded or commas):
            # whole numbers only padded stay whole, as polars reads them unpadded (20240101: a date)
            whole = not units[0] and not commas and not digits.str.contains(".", literal=True).any()
            numbers.append(
                signed.str.replace_all(group, "", literal=True)
                .str.replace(decimal, ".", literal=True)
                .cast(pl.Int64 if whole else pl.Float64)
                .alias(c)
            )
    return df.with_columns(numbers) if numbers else df


def validate_frame(
    df: pl.DataFrame,
    time_col: str | None = None,
    source: str = "<frame>",
    duplicates: Duplicates = "last",
    series_col: str | None = None,
    time_name: str | None = None,
) -> TimeFrame:
    """Parse the time column, sort by it, apply the duplicates policy and report gaps; ``series_col``,
    the series column(s) this frame is one series of, and ``time_name``, what the file calls a time
    column put together from its columns (``'year'``), are for advice only."""
    if df.height == 0:
        raise InputError(f"{source}: no data rows")
    if time_col is None:
        time_col = find_time_column(df, source)
    elif time_col not in df.columns:
        raise InputError(f"{source}: time column {time_col!r} not found; columns are {df.columns}")
    times = _parse_times(df[time_col], source, time_col)
    clock = _time_of_day_column(df, time_col, times)
    if clock is not None:  # dates in one column, the time of day in another (UCI's Date;Time)
        times = times + _time_of_day(df[clock])
        df = df.drop(clock)
    df = df.with_columns(times.alias(time_col))
    was_sorted = bool(times.is_sorted())
    if not was_sorted:
        df = df.sort(time_col, maintain_order=True)
    dup_mask = df[time_col].is_duplicated()
    n_dup = int(dup_mask.sum())
    if n_dup:
        _refuse_long_layout(df, time_col, dup_mask, source, series_col, time_name)
        if duplicates == "error":
            first = df.filter(dup_mask)[time_col][0]
            raise InputError(
                f"{source}: column {time_col!r} has {n_dup} rows with repeated timestamps (first {first}); "
                "keep one row per time (a long file with a row per series and time needs one "
                "column per series) or choose to keep the last/first duplicate"
            )
        before = df.height
        df = df.unique(subset=[time_col], keep=duplicates, maintain_order=True)
        n_dup = before - df.height
    return TimeFrame(
        frame=df, time_col=time_col, source=source, report=_report(df[time_col], n_dup, was_sorted)
    )


def find_time_column(df: pl.DataFrame, source: str) -> str:
    """The time column: the first named as one of :data:`TIME_COLUMNS` (any case), else the only
    date/datetime column, else the only text column whose values read as timestamps."""
    found = _time_columns(df, source)
    if len(found) == 1:
        return found[0]
    if found:
        why = f"columns {found} all read as times; name the one to use with --time-col"
    else:
        why = (
            f"no time column among {df.columns[:12]}{' …' if df.width > 12 else ''} (looked for one named "
            f"{', '.join(TIME_COLUMNS)}, or holding dates, or a Year column with whole years, alone or "
            "with Month (and Day) or Quarter, or with a column per month): name it with --time-col, or, "
            "for a file of "
            "values only whose rows are one step apart, declare the step (--frequency 1h, or "
            "grid.frequency) and its rows are stamped that far apart from 1970-01-01"
        )
    raise InputError(f"{source}: {why}")


def _time_columns(df: pl.DataFrame, source: str) -> list[str]:
    """The column named as a time, else every date/datetime column, else every text column of times."""
    by_name = {c.lower(): c for c in reversed(df.columns)}
    named = next((by_name[c] for c in TIME_COLUMNS if c in by_name), None)
    if named is not None:
        return [named]
    found = [c for c, dtype in df.schema.items() if dtype.is_temporal() and dtype != pl.Time]  # not a clock
    if not found:
        head = df.head(200)
        for c, dtype in head.schema.items():
            try:
                if dtype == pl.String and head[c].null_count() == 0:
                    _parse_times(head[c], source, c)
                    found.append(c)
            except InputError:
                pass
    return found


LONG_SHARE = 0.25  # rows sharing their time with a row of other values, in this share or more: a long file


def _refuse_long_layout(
    df: pl.DataFrame,
    time_col: str,
    repeated: pl.Series,
    source: str,
    given: str | None = None,
    time_name: str | None = None,
) -> None:
    """Raise when many rows share their timestamp with a row holding other values: a long file (a row
    per series and time) read as one series would keep one series' rows and drop the others'.

    The message names the columns that tell those rows apart: text ones, else integer ones whose
    values repeat (ids do, over time). Without a text column it takes at least 10 such rows. Exact
    copies of a row, and a few repeats (the autumn hour of naive local time), are left to the
    duplicates policy."""
    clash = int((repeated & ~df.is_duplicated()).sum())  # repeated: rows whose time another row shares
    if clash < max(2, LONG_SHARE * df.height):
        return

    def tells_apart(c: str) -> bool:
        return c != time_col and not df.select(time_col, c).is_duplicated().any()

    ids = [c for c, dtype in df.schema.items() if dtype in (pl.String, pl.Categorical) and tells_apart(c)]
    if not ids:
        if clash < 10:
            return
        ids = [
            c
            for c, dtype in df.schema.items()
            if dtype.is_integer() and df[c].n_unique() <= df.height // 2 and tells_apart(c)
        ]
    clocks = [c for c in ids if c.strip().lower() in (*TIME_COLUMNS, *HOUR_COLUMNS)]
    if clocks and _dates_only(df[time_col]):  # a date column beside a time of day not read as one
        shown = df[clocks[0]].head(1).item()
        raise InputError(
            f"{source}: {clash} rows share their date in {time_col!r}; if {clocks[0]!r} is each row's time "
            f"of day, its values ({shown!r}) are not read as one: write them as 17:24, 17:24:00 or "
            f"5:24 PM, or put date and time in one column; if it names series, pass --series-col {clocks[0]}"
        )
    if given is not None and ids:  # a series of the named columns still holds several series
        hint = f"its series need another column: --series-col {given},{ids[0]}"
    elif len(ids) == 1:
        hint = f"pass --series-col {ids[0]}"
    elif not ids and _years_only(df[time_col]):  # a Year column beside rows of months (month dummies)
        raise InputError(
            f"{source}: {time_name or repr(time_col)} holds whole years only, {_per_time(df[time_col])} rows "
            "to a year, and no column tells those rows apart: if they are months, quarters or weeks of "
            "each year, give each row its date (a column of dates such as 1981-02-01, or year and month "
            "columns); if they are several series, pass --series-col naming the column of series ids"
        )
    elif ids:
        hint = "pass --series-col naming the column of series ids"
    else:  # one series whose clock ticks more coarsely than it samples, or series without their ids
        hint = (
            "no column tells those rows apart: if they are one series sampled faster than its clock "
            "ticks (a sensor stamping milliseconds in steps), leave the time column out of the file and "
            "declare the rate it samples at (--frequency 100Hz): its rows are then numbered at that rate; "
            "if they are several series, add a column of series ids and pass --series-col naming it"
        )
    raise InputError(
        f"{source}: {clash} rows share their timestamp with a row holding other values: it looks like a "
        f"long file with a row per series and time; {hint}"
        + (f" (one of {', '.join(ids)})" if len(ids) > 1 else "")
    )


EPOCH_UNITS = (("s", 1e11), ("ms", 1e14), ("us", 1e17))  # an epoch number under this is in that unit
# 17:24, 17:24:00, 17:24:00.250, and on a 12-hour clock 5:24 PM, 5:24 p.m., 12:00am
TIME_OF_DAY = r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?\s*(?:([AaPp])\.?\s*[Mm]\.?)?\s*$"


HOUR_COLUMNS = ("hour", "hr", "he", "hour_ending", "hourending", "hour ending")  # whole hours 0-24


def _time_of_day_column(df: pl.DataFrame, time_col: str, times: pl.Series) -> str | None:
    """The column holding each row's time of day, if the time column holds dates only: one of type
    time, text of clock times (``17:24:00``) or whole hours 0 to 24 named as hours (an energy
    market's ``Hour``, hour ending), one named ``time`` first. Only where dates repeat: a daily
    file's column of clock times (a sunrise) is a value, not the rows' time."""
    if df.height == 0 or not _dates_only(times) or times.n_unique() == times.len():
        return None

    def clock(c: str, dtype: pl.DataType) -> bool:
        if dtype == pl.String:
            return bool(df[c].str.contains(TIME_OF_DAY).all())
        if dtype.is_integer() and c.strip().lower() in HOUR_COLUMNS:
            return bool(df[c].min() >= 0 and df[c].max() <= 24)  # type: ignore[operator]
        return dtype == pl.Time

    found = [
        c for c, dtype in df.schema.items() if c != time_col and df[c].null_count() == 0 and clock(c, dtype)
    ]
    return min(found, key=lambda c: c.lower() != "time", default=None)


def _years_only(times: pl.Series) -> bool:
    """Whether every time is the midnight starting a year: a column of whole years read as dates."""
    return bool((times.dt.truncate("1y") == times).all())


def _per_time(times: pl.Series) -> str:
    """How many rows share each time: ``"12"``, or ``"11 to 12"`` where it varies."""
    counts = times.value_counts()["count"]
    low, high = counts.min(), counts.max()
    return str(low) if low == high else f"{low} to {high}"


def _dates_only(times: pl.Series) -> bool:
    """Whether every time is a midnight: a column of dates, whose rows' time of day may lie elsewhere."""
    return bool((times.dt.truncate("1d") == times).all())


def _time_of_day(col: pl.Series) -> pl.Series:
    """A column of times of day (clock times, or whole hours) as durations since midnight."""
    if col.dtype == pl.Time:
        return col.cast(pl.Int64).cast(pl.Duration("ns"))
    if col.dtype.is_integer():
        return (col.cast(pl.Int64) * 3_600_000).cast(pl.Duration("ms"))
    parts = col.str.extract_groups(TIME_OF_DAY)
    hour = parts.struct.field("1").cast(pl.Float64)
    half = parts.struct.field("4").str.to_lowercase()  # a 12-hour clock's a or p: 12 a.m. is 0, 12 p.m. 12
    hour = hour.zip_with(half.is_null(), hour % 12 + (half == "p").cast(pl.Float64) * 12)
    seconds = (
        hour * 3600
        + parts.struct.field("2").cast(pl.Float64) * 60
        + parts.struct.field("3").cast(pl.Float64).fill_null(0.0)
    )
    return (seconds * 1e6).round().cast(pl.Int64).cast(pl.Duration("us"))


def _parse_times(col: pl.Series, source: str, name: str) -> pl.Series:
    """Datetime from datetime/date, ISO strings, or epoch numbers in the unit their size says:
    seconds, milliseconds, microseconds or nanoseconds (a database's or InfluxDB's export) since
    1970, each from 1973 on (below 1e11, 1e14, 1e17, and above)."""
    if col.null_count():
        raise InputError(
            f"{source}: column {name!r} has {col.null_count()} empty timestamps; fill or drop those rows"
        )
    dtype = col.dtype
    if dtype == pl.Datetime or isinstance(dtype, pl.Datetime):
        return col
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us"))
    if dtype.is_numeric():
        dates = _year_months(col)  # 1850, 1947.01: years, not seconds after 1970
        if dates is None and dtype.is_integer():  # 20240101, 202401011300: digits of a date
            dates = _compact_dates(col.cast(pl.String))
        if dates is not None:
            return dates.alias(name)
        if _spreadsheet_days(col):  # 45292.5: a spreadsheet's serial date, days since 1899-12-30
            seconds = (col.cast(pl.Float64) * 86_400).round().cast(pl.Int64)  # exports round the fraction
            ms = seconds * 1000 + SPREADSHEET_EPOCH_MS
            return pl.from_epoch(ms, time_unit="ms").alias(name)
        size = float(col.abs().max())  # type: ignore[arg-type]
        unit = next((u for u, top in EPOCH_UNITS if size < top), "ns")
        if (rounded := _rounded_digits(col)) is not None:
            digits, power = rounded
            raise InputError(
                f"{source}: column {name!r} holds epoch numbers rounded to {digits} significant digits "
                f"({col[0]:.{digits - 1}e}, every one a multiple of 1e{power}: the rows fall off their "
                "step), as a spreadsheet or R writes large numbers in scientific notation; export them "
                "in full, or as dates"
            )
        return pl.from_epoch(col.cast(pl.Int64), time_unit=unit)  # type: ignore[arg-type]
    if dtype == pl.String:
        # blanks around a stamp (a file aligned with spaces around its separators) say nothing, nor a
        # day's name before it (HTTP's and e-mail's "Mon, 01 Jan 2024 …", ctime's "Mon Jan  1 …")
        col = col.str.strip_chars()
        if col.head(100).str.contains(WEEKDAY).all():
            col = col.str.replace(WEEKDAY, "")
        col = period_starts(col).str.replace(r"\s+(UTC|GMT)$", "")  # BigQuery's "… UTC"
        try:
            parsed = (
                col.str.to_datetime(strict=False, time_zone=None)
                if not col.str.contains(r"[+-]\d\d:?\d\d$|Z$").any()
                else col.str.to_datetime(strict=False).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            )
        except pl.exceptions.PolarsError:  # no format fits the first values
            parsed = pl.Series(name, [None] * col.len(), dtype=pl.Datetime("us"))
        if col.str.contains(DAY_MONTH).all():
            parsed = _day_or_month_first(col, parsed)
        if parsed.is_null().any():
            parsed = next((p for p in (_compact_dates(col), _named_months(col)) if p is not None), parsed)
        bad = parsed.is_null()
        if bad.any():
            first = col.filter(bad)[0]
            zone = re.search(ZONE_NAME, first)
            raise InputError(
                f"{source}: column {name!r} has {int(bad.sum())} unparsable timestamps (first {first!r}); "
                + (
                    f"a time zone's name ({zone.group(1)}) says no offset for sure (CST is UTC-6 in "
                    "Chicago, UTC+8 in Beijing): write the offset (+01:00) or stamp in UTC"
                    if zone
                    else "use ISO-8601 like 2016-07-01 00:00:00 or epoch seconds/milliseconds"
                )
            )
        if not parsed.is_sorted() and (swapped := _day_month_swapped(parsed)) is not None:
            at = int((swapped != parsed).arg_true()[0])
            raise InputError(
                f"{source}: column {name!r} is out of time order only where its dates could be read "
                f"either way, and in order if each of those is read with day and month swapped "
                f"({col[at]!r} as {swapped[at]}): its dates are written in two orders, as a parser that "
                "read month first wherever it could leaves them; rewrite them in one order (ISO-8601 "
                "like 2016-07-01 00:00:00)"
            )
        return parsed
    raise InputError(
        f"{source}: column {name!r} has type {dtype}, not a timestamp; use ISO-8601 strings or epoch numbers"
    )


SWAPPABLE = "__swappable"  # beside a time column: its date could be read with day and month swapped


def _day_month_swapped(times: pl.Series) -> pl.Series | None:
    """``times`` with day and month exchanged wherever the day could be a month, where that puts them
    in order (and two or more such dates differ); else None."""
    t = pl.col(times.name)
    can = (t.dt.day() <= 12) & (t.dt.day() != t.dt.month())
    frame = times.to_frame().with_columns(can.alias(SWAPPABLE))
    if frame[SWAPPABLE].sum() < 2:
        return None
    # every row's date is built, so the others keep theirs (a day of 13 is no month)
    month = pl.when(SWAPPABLE).then(t.dt.day()).otherwise(t.dt.month())
    day = pl.when(SWAPPABLE).then(t.dt.month()).otherwise(t.dt.day())
    date = pl.datetime(t.dt.year(), month, day).cast(times.dtype)
    swapped = frame.select(date + (t - t.dt.truncate("1d"))).to_series()
    return swapped if swapped.is_sorted() else None


# a day's name before a stamp: "Mon, ", "Tue ", "Wednesday, " (case as written)
WEEKDAY = r"^(?i:(mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?),?\s+"
ZONE_NAME = r"\s(?!(?:AM|PM)$)([A-Z]{2,4}T?)$"  # a stamp ending in a zone's abbreviation: CET, EST, AEST


def _rounded_digits(col: pl.Series) -> tuple[int, int] | None:
    """The significant digits epoch numbers were rounded to, and to which power of ten, where it
    shows: every value a multiple of a power of ten of 1,000 or more that is a twentieth of their
    typical step or more, or shared by a tenth of the rows; else None. Epoch milliseconds written as
    ``1.704067e+12`` lose minutes, and the rows of an hourly feed fall 3,000 and 4,000 seconds apart."""
    if not col.dtype.is_float() or col.len() < 10:
        return None
    values = col.cast(pl.Float64).abs()
    power = next((k for k in range(15, 2, -1) if bool(((values % 10.0**k) == 0).all())), None)
    if power is None:
        return None
    if 10.0**power < _typical_step(values) / 20 and col.n_unique() > 0.9 * col.len():
        return None
    return int(np.floor(np.log10(float(values.max())))) - power + 1, power  # type: ignore[arg-type]


SPREADSHEET_EPOCH_MS = -2_209_161_600_000  # 1899-12-30, day 0 of Excel's and LibreOffice's serial dates
SPREADSHEET_DAYS = (20_000, 80_000)  # serial dates of 1954 to 2119; as epoch seconds, hours of 1970-01-01


def _spreadsheet_days(col: pl.Series) -> bool:
    """Whether these numbers are a spreadsheet's serial dates (an unformatted date column exported):
    all within :data:`SPREADSHEET_DAYS`, at most a month apart. As epoch seconds they would all
    fall on the first day of 1970."""
    lo, hi = SPREADSHEET_DAYS
    if col.len() < 2 or float(col.min()) < lo or float(col.max()) > hi:  # type: ignore[arg-type]
        return False
    return _typical_step(col) <= 31


def _typical_step(col: pl.Series) -> float:
    """The median step between a column's distinct numbers, in order (0 if they have none)."""
    steps = col.sort().diff().drop_nulls()
    return float(steps.filter(steps > 0).median() or 0.0)  # type: ignore[arg-type]


def _year_months(col: pl.Series) -> pl.Series | None:
    """Whole years (``1850``, or ``1850.0``), or years with the month in their first two decimals,
    ``1947.01`` to ``1947.12`` (October often written ``1947.1``; a float32 column's noise
    tolerated), as econometric files and Shiller's market data write them, as datetimes; else None.
    Read as epoch numbers they were seconds of 1970's first hour."""
    values = col.cast(pl.Float64)
    if float(values.min()) < 1000 or float(values.max()) >= 3000:  # type: ignore[arg-type]
        return None
    year = values.floor()
    hundredths = (values - year) * 100
    month = hundredths.round()
    if ((hundredths - month).abs() > 0.01).any():
        return None
    if (month == 0).all():
        month = month + 1
    elif ((month < 1) | (month > 12)).any():
        return None
    return pl.select(pl.datetime(year.cast(pl.Int32), month.cast(pl.Int8), 1)).to_series()


COMPACT_DATES = {
    6: "%Y%m",
    8: "%Y%m%d",
    10: "%Y%m%d%H",
    12: "%Y%m%d%H%M",
    14: "%Y%m%d%H%M%S",
}  # digits → format
NAMED_MONTHS = (  # 01-Jan-2024 13:00, 1 Jan 2024, Jan 1, 2024; and 20240101T130000
    *(
        d + c
        for d in ("%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%b %d %Y", "%d-%b-%y", "%d %B %Y", "%B %d, %Y")
        for c in (" %H:%M:%S", " %H:%M", "")
    ),
    "%Y%m%dT%H%M%S",
    "%Y%m%dT%H%M",
    "%b %d %H:%M:%S %Y",  # ctime's, its day's name taken off: Jan 01 13:00:00 2024
)


def _compact_dates(col: pl.Series) -> pl.Series | None:
    """Digits of a month, a date or a date and time, ``202401`` (Kenneth French's factor files),
    ``20240101`` or ``202401011300`` (one length throughout, years 1900 to 2100, every value a real
    date), as datetimes; else None. Read as epoch numbers they were instants of 1970 to 1976."""
    digits = col.str.strip_chars()
    lengths = digits.str.len_chars().unique()
    if lengths.len() != 1 or lengths[0] not in COMPACT_DATES or not digits.str.contains(r"^\d+$").all():
        return None
    fmt = COMPACT_DATES[lengths[0]]
    if fmt.endswith("%H"):  # polars reads an hour only with its minutes
        digits, fmt = digits + "00", fmt + "%M"
    elif fmt.endswith("%m"):  # and a month only with its day
        digits, fmt = digits + "01", fmt + "%d"
    try:
        parsed = digits.str.to_datetime(fmt, strict=False)
    except pl.exceptions.PolarsError:
        return None
    years = parsed.dt.year()
    ok = parsed.null_count() == 0 and years.min() >= 1900 and years.max() <= 2100  # type: ignore[operator]
    return parsed.cast(pl.Datetime("us")) if ok else None


def _named_months(col: pl.Series) -> pl.Series | None:
    """Dates with the month's name, ``01-Jan-2024 13:00`` or ``Jan 1, 2024``: the first format of
    :data:`NAMED_MONTHS` that reads every value, else None."""
    for fmt in NAMED_MONTHS:
        parsed = col.str.strip_chars().str.to_datetime(fmt, strict=False)
        if parsed.null_count() == 0:
            return parsed.cast(pl.Datetime("us"))
    return None


DAY_MONTH = r"^\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b"  # 31/01/2024, 1/31/24, 31.01.2024: which comes first?
DATE_ORDERS = ("%m/%d/%Y", "%d/%m/%Y", "%m/%d/%y", "%d/%m/%y", "%d.%m.%Y", "%d.%m.%y", "%d-%m-%Y", "%m-%d-%Y")
CLOCKS = (" %H:%M:%S", " %H:%M", " %I:%M:%S %p", " %I:%M %p", "")


def _day_or_month_first(col: pl.Series, inferred: pl.Series) -> pl.Series:
    """Dates written day-first or month-first: the reading that parses every value, and of two that
    do (no day after the 12th), the one whose times are in order with the shortest longest step.
    The inferred reading decides from the first value alone: US ``01/13/2024`` after ``01/02/2024``
    would not parse, and a short US file could read as days that are months apart."""
    readings = [inferred] if not inferred.is_null().any() else []
    for date in DATE_ORDERS:
        for clock in CLOCKS:
            parsed = col.str.strip_chars().str.to_datetime(date + clock, strict=False)
            if not parsed.is_null().any():
                readings.append(parsed)
    if not readings:
        return inferred

    def irregular(times: pl.Series) -> tuple[bool, float]:
        steps = times.diff().drop_nulls().dt.total_seconds()
        return (not times.is_sorted(), float(steps.max() or 0))

    return min(readings, key=irregular)


def _report(times: pl.Series, n_dup: int, was_sorted: bool) -> FrameReport:
    diffs = times.diff().drop_nulls()
    if diffs.len() == 0:
        return FrameReport(times.len(), n_dup, was_sorted, None, 0, None)
    step = diffs.median()
    gaps = diffs.filter(diffs > step)
    return FrameReport(
        rows=times.len(),
        duplicates_dropped=n_dup,
        was_sorted=was_sorted,
        step=str(step),
        gaps=gaps.len(),
        largest_gap=str(gaps.max()) if gaps.len() else None,
    )


def numeric_matrix(tf: TimeFrame, columns: Sequence[str], missing_ok: bool = False) -> np.ndarray:
    """``[rows, len(columns)]`` float32, raising if a column is absent, non-numeric or not finite;
    with ``missing_ok`` a missing value is NaN (infinite ones still raise)."""
    for c in columns:
        _check_channel(tf.frame, c, tf.time_col, tf.source, "name one with --target/--features", missing_ok)
    return (
        tf.frame.select([pl.col(c).cast(pl.Float32).fill_null(np.nan) for c in columns])
        .to_numpy()
        .astype(np.float32, copy=False)
    )


def time_features(times: pl.Series | np.ndarray) -> np.ndarray:
    """Calendar features in [−0.5, 0.5]: hour, weekday, day of month, day of year (Informer's encoding)."""
    t = times if isinstance(times, pl.Series) else pl.Series(np.asarray(times, dtype="datetime64[us]"))
    return np.stack(
        [
            t.dt.hour().to_numpy() / 23.0 - 0.5,
            (t.dt.weekday().to_numpy() - 1) / 6.0 - 0.5,
            (t.dt.day().to_numpy() - 1) / 30.0 - 0.5,
            (t.dt.ordinal_day().to_numpy() - 1) / 365.0 - 0.5,
        ],
        axis=1,
    ).astype(np.float32)


def channel_names(targets: Sequence[str], features: Sequence[str] = (), with_time: bool = False) -> list[str]:
    """Input channel order used by :func:`make_windows`: targets, other features, then time features."""
    rest = [f for f in features if f not in targets]
    return [*targets, *rest, *(["hour", "weekday", "day", "yearday"] if with_time else [])]


def channel_matrix(
    tf: TimeFrame, targets: Sequence[str], features: Sequence[str] = (), with_time: bool = False
) -> np.ndarray:
    """All input channels ``[rows, C]`` in :func:`channel_names` order."""
    values = numeric_matrix(tf, channel_names(targets, features))
    if with_time:
        values = np.concatenate([values, time_features(tf.frame[tf.time_col])], axis=1)
    return values


def make_windows(
    frame: TimeFrame | pl.DataFrame,
    lookback: int,
    horizon: int,
    features: Sequence[str],
    targets: Sequence[str],
    stride: int = 1,
    *,
    with_time: bool = False,
    start: int = 0,
    stop: int | None = None,
    clean_glitches: bool = False,
) -> Windows:
    """Sliding windows over rows ``[start, stop)``; inputs are ``targets``, other ``features``, time features.

    Channels come in that order; ``features`` may repeat a target (it is not duplicated).
    ``clean_glitches`` first replaces the isolated outliers of the targets and features
    (:func:`~adaptcast.forecast.outliers.clean`), as a model's training windows are.
    Window ``i`` sees rows ``[s, s+lookback)`` and predicts the targets on
    ``[s+lookback, s+lookback+horizon)`` with ``s = start + i*stride``; its timestamp is that
    of its last input row. A plain polars frame is validated first (see :func:`validate_frame`).
    """
    tf = frame if isinstance(frame, TimeFrame) else validate_frame(frame)
    if lookback < 1 or horizon < 1 or stride < 1:
        raise InputError(f"lookback, horizon and stride must be >= 1, got {lookback}, {horizon}, {stride}")
    if not targets:
        raise InputError(f"{tf.source}: choose at least one target column")
    values = channel_matrix(tf, targets, features, with_time)
    stop = tf.frame.height if stop is None else min(stop, tf.frame.height)
    values, stamps = values[start:stop], tf.frame[tf.time_col].to_numpy()[start:stop]
    if clean_glitches:
        data = len(channel_names(targets, features))
        values = np.concatenate([clean(values[:, :data])[0], values[:, data:]], axis=1)
    n = (values.shape[0] - lookback - horizon) // stride + 1
    if n < 1:
        raise InputError(
            f"{tf.source}: {values.shape[0]} rows are too few for lookback {lookback} + horizon {horizon}; "
            "use a longer file or smaller --lookback/--horizon"
        )
    X, Y = sliding_windows(values, lookback, horizon, len(targets), stride)
    return Windows(X, Y, stamps[lookback - 1 :: stride][:n])


def ett_borders(tf: TimeFrame) -> tuple[int, int, int]:
    """Row borders of the 12/4/4 30-day-month split, scaled by the file's rows per hour (ETTh: 1, ETTm: 4)."""
    step = tf.frame[tf.time_col].diff().drop_nulls().median()
    minutes = step.total_seconds() / 60 if step is not None else 60  # type: ignore[union-attr]
    per_month = round(30 * 24 * 60 / minutes)
    borders = (12 * per_month, 16 * per_month, 20 * per_month)
    if tf.frame.height < borders[2]:
        raise InputError(
            f"{tf.source}: {tf.frame.height} rows, "
            f"fewer than the {borders[2]} the ETT 12/4/4-month split needs"
        )
    return borders


def load_ett(
    path: str | Path,
    lookback: int = 96,
    horizon: int = 24,
    mode: Literal["S", "M", "MS"] = "S",
    target: str = "OT",
    with_time: bool = False,
    stride: int = 1,
) -> dict[str, Windows]:
    """ETTh1/h2/m1/m2 windows for the conventional split: ``{"train", "val", "test"}``.

    ``mode``: ``S`` target → target, ``M`` all channels → all channels, ``MS`` all channels →
    target. Val and test windows start ``lookback`` rows before their border so the first
    forecast of each split is at the border itself. Scaling is left to the model (fitted on
    the train windows only).
    """
    tf = read_frame(path, time_col="date", duplicates="error")
    cols = tf.numeric_columns
    if target not in cols:
        raise InputError(f"{tf.source}: target column {target!r} not found; ETT columns are {cols}")
    if mode not in ("S", "M", "MS"):
        raise InputError(f"ETT mode must be 'S', 'M' or 'MS', got {mode!r}")
    targets = [target] if mode in ("S", "MS") else [target, *[c for c in cols if c != target]]
    features = [] if mode == "S" else cols
    b1, b2, b3 = ett_borders(tf)
    spans = {"train": (0, b1), "val": (b1 - lookback, b2), "test": (b2 - lookback, b3)}
    return {
        name: make_windows(
            tf, lookback, horizon, features, targets, stride, with_time=with_time, start=lo, stop=hi
        )
        for name, (lo, hi) in spans.items()
    }


class MissingRows(NamedTuple):
    """Rows of a file that were left out because one of the chosen columns had no value."""

    rows: int
    first: str  # the time of the first, as the file's time column reads

    def note(self) -> str:
        return f"{self.rows} rows with a missing value left out (first at {self.first}); they are gaps"


@dataclass
class SeriesFrame:
    """A long frame ``ts, series, <channels…>`` sorted by time then series, with its labelled events.

    This is what the backtest and the embedded run replay: targets come first among ``channels``.
    """

    name: str
    frame: pl.DataFrame
    channels: list[str]
    n_targets: int
    events: list[dict[str, Any]] = field(default_factory=list)
    missing: MissingRows | None = None  # rows left out for a missing value: the loop sees gaps there
    duplicates: int = 0  # rows left out for repeating a series' timestamp (the first one is kept)
    resorted: bool = False  # the file was not in time order (it is replayed in time order)
    seconds_of_1970: str | None = None  # the span of a time column of numbers all read as 1970's seconds

    def notes(self) -> list[str]:
        """What reading the file changed, in words, for the run's log."""
        out = [] if self.missing is None else [self.missing.note()]
        if self.duplicates:
            out.append(f"{self.duplicates} rows repeating a series' timestamp left out (the first is kept)")
        if self.resorted:
            out.append("rows were not in time order; replayed in time order")
        if self.seconds_of_1970:
            out.append(
                f"its times are numbers, read as seconds since 1970 ({self.seconds_of_1970}); if they "
                "count days (a date's ordinal) or steps, the forecasts' times are wrong: write them as dates"
            )
        return out

    @property
    def n_series(self) -> int:
        """Series in the feed (a run's loop may have forgotten some that went silent)."""
        return self.frame["series"].n_unique()

    @property
    def targets(self) -> list[str]:
        return self.channels[: self.n_targets]

    def head(self, steps: int) -> SeriesFrame:
        """The first ``steps`` timestamps of every series."""
        cut = self.frame["ts"].unique().sort()[:steps]
        return replace(self, frame=self.frame.filter(pl.col("ts").is_in(cut.implode())))


def series_columns(series_col: str) -> list[str]:
    """The column(s) ``--series-col`` names: one, or several separated by commas."""
    return [c.strip() for c in series_col.split(",") if c.strip()]


def layout_conflict(series_col: str | None, series_cols: Sequence[str], series_rows: bool) -> str | None:
    """Why a file cannot be read with these layout flags at once (None: it can): a series per column
    (``--series-cols``) excludes a column of ids (``--series-col``) and a series per row."""
    if not series_cols or not (series_col or series_rows):
        return None
    other = "--series-col" if series_col else "--series-rows"
    return (
        f"give either --series-cols (one series per column) or {other}, not both; "
        "--series-col names the column of ids of a long file, --series-rows reads a series per row"
    )


def read_series(
    path: str | Path,
    targets: Sequence[str],
    features: Sequence[str] = (),
    series_col: str | None = None,
    time_col: str | None = None,
    series_cols: Sequence[str] = (),
    step_ms: int | None = None,
    series_rows: bool = False,
    table: pl.DataFrame | None = None,
    otlp_quantiles: Sequence[float] = (),
) -> SeriesFrame:
    """Read a wide (one series) or long (``series_col``, else a text column named ``series``) file as
    the live worker would take its records: in time order, a row repeating a series' timestamp left
    out (the first is kept), no infinite values. A row missing a chosen column's value (null, NaN, or
    one of :data:`MISSING_TOKENS`) is left out, as a live record without it would be dead-lettered:
    the loop sees a gap there.

    ``series_cols`` reads a wide file as one series per column instead (``["*"]``: every numeric
    column): each is a series named after its column, its values the one target. ``step_ms`` stamps
    the rows of a wide file without a time column that far apart (:func:`read_frame`).
    ``series_rows`` reads a file of a series per row (M4's layout, :func:`_row_series`). ``table`` is
    the file as :func:`read_table` reads it (with ``otlp_quantiles``), where the caller has read it
    already."""
    if not targets:
        raise InputError(f"{path}: choose the target column(s) with --target")
    if why := layout_conflict(series_col, series_cols, series_rows):
        raise InputError(f"{path}: {why}")
    if series_col is not None and set(series_columns(series_col)) & {*targets, *features}:
        raise InputError(
            f"{path}: {series_col!r} is the series column (--series-col) and a value to read; "
            "name the column holding the series ids"
        )
    table = read_table(Path(path), otlp_quantiles) if table is None else table
    if series_rows:
        frame, tcol, reports = _row_series(table, Path(path), series_col, targets, features, step_ms)
    elif series_cols:
        frame, tcol, reports = _column_series(
            table, Path(path), series_cols, targets, features, time_col, step_ms
        )
    else:
        series_col = series_col or implied_series_col(table)
        if series_col is None:
            raw = _stamped(table, Path(path), time_col, "first", step_ms)
            frame, tcol = raw.frame.with_columns(pl.lit(file_stem(path)).alias("series")), raw.time_col
            reports = [raw.report]
        else:
            frame, tcol, reports = _long_frame(table, Path(path), series_col, time_col)
    channels = [*targets, *[f for f in features if f not in targets]]
    for c in channels:
        _check_channel(
            frame, c, tcol, path, "name one with " + ("--target" if c in targets else "--features"), True
        )
    frame = frame.select(
        pl.col(tcol).alias("ts"), "series", *[pl.col(c).cast(pl.Float64).fill_nan(None) for c in channels]
    )
    absent = frame.select(pl.any_horizontal(pl.col(c).is_null() for c in channels)).to_series()
    missing = None
    if absent.any():
        missing = MissingRows(int(absent.sum()), str(frame["ts"].filter(absent).min()))
        frame = frame.filter(~absent)
    frame = _in_time_order(frame)
    return SeriesFrame(
        file_stem(path),
        frame.with_columns(pl.col("series").cast(pl.String)),
        channels,
        len(targets),
        missing=missing,
        duplicates=sum(r.duplicates_dropped for r in reports),
        resorted=not all(r.was_sorted for r in reports),
        seconds_of_1970=_seconds_of_1970(table, tcol, frame["ts"]),
    )


def _in_time_order(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame``, stacked a series at a time in the order of their names and each in time order, in
    time order with the series by name at each time: a stable sort by time alone, whose one copy is
    the rows gathered (sorting by time and name would build a key per row beside it)."""
    ts = frame["ts"]
    if ts.is_sorted():
        return frame
    order = np.argsort(ts.to_physical().to_numpy(), kind="stable")
    return frame.select(pl.all().gather(order))


EARLY_EPOCH = datetime(1973, 3, 3, 9, 46, 40)  # 1e8 seconds after 1970: no feed's times are earlier


def _seconds_of_1970(table: pl.DataFrame, tcol: str, ts: pl.Series) -> str | None:
    """``first to last`` where the time column held numbers read as seconds since 1970 and every
    one of them falls before :data:`EARLY_EPOCH` (a day count such as Python's ``date.toordinal``,
    or a step counter): the forecasts' times are then seconds of 1970. Else None."""
    if tcol not in table.columns or not table.schema[tcol].is_numeric() or ts.is_empty():
        return None
    raw = table[tcol].drop_nulls()
    first, last = ts.min(), ts.max()
    as_seconds = (last - first).total_seconds() == float(raw.max() - raw.min())  # type: ignore[operator]
    return f"{first} to {last}" if as_seconds and last < EARLY_EPOCH else None


def _check_channel(
    frame: pl.DataFrame, c: str, tcol: str, source: str | Path, hint: str, missing_ok: bool = False
) -> None:
    """Raise ``InputError`` if column ``c`` is absent or not all finite numbers (missing ones, null or
    NaN, allowed with ``missing_ok``); name the first bad value."""
    if c not in frame.columns:
        others = [x for x in frame.columns if x not in (tcol, "series")]
        numeric = [x for x in others if frame.schema[x].is_numeric()]
        if "--target" in hint and len(numeric) > 1:  # a wide file: likely one series per column
            hint += ", or --series-cols '*' to forecast every numeric column as a series of its own"
        raise InputError(f"{source}: column {c!r} not found; columns are {others}; {hint}")
    col = frame[c]
    if not frame.schema[c].is_numeric():
        bad = col.is_not_null() & col.cast(pl.Float64, strict=False).is_null()
        what = f"{source}: column {c!r} is {frame.schema[c]}, not numeric"
        if not bad.any():
            raise InputError(f"{what}; convert it to numbers or leave it out")
        if int(bad.sum()) == col.is_not_null().sum():  # text throughout: a label, not a measurement
            labels = col.drop_nulls().unique(maintain_order=True)
            shown = ", ".join(repr(v) for v in labels.head(3).to_list())
            if labels.str.contains(WITH_UNIT).all():  # 1.2 kB, 512 B: numbers a dashboard formatted
                units = labels.str.extract_groups(WITH_UNIT).struct.field("post").str.strip_chars()
                if units.is_null().all() and labels.str.contains(",", literal=True).any():  # 1,5 and 1,234.5
                    raise InputError(
                        f"{what}: it holds numbers whose commas and dots read no one way ({shown}): as "
                        "decimal commas (1,5 and 1.234,5) or as thousands (1,234.5), not both; export "
                        "them without thousands separators"
                    )
                raise InputError(
                    f"{what}: it holds numbers written with units ({shown}), in more than one "
                    f"({', '.join(repr(u) for u in units.unique(maintain_order=True).head(4).to_list())}); "
                    "export them as plain numbers in one unit (in Grafana, with 'Formatted data' off)"
                )
            raise InputError(
                f"{what}: it holds text ({shown}{', …' if len(labels) > 3 else ''}: {len(labels)} distinct "
                "values) in every row; encode it as numbers (a 0/1 column per value, say) or leave it out"
            )
        first = frame.filter(bad).row(0, named=True)
        raise InputError(
            f"{what}: {first[c]!r} at {first[tcol]} is not a number ({int(bad.sum())} such values); "
            "fix or drop those rows"
        )
    number = col.cast(pl.Float64)
    bad = number.is_infinite().fill_null(False) if missing_ok else ~number.is_finite().fill_null(False)
    if bad.any():
        first = frame.filter(bad)[tcol][0]
        what = "infinite" if missing_ok else "missing, NaN or infinite"
        raise InputError(
            f"{source}: column {c!r} has {int(bad.sum())} {what} values (first at {first}); "
            "fix or drop those rows"
        )
    huge = (number.is_finite() & (number.abs() >= VALUE_LIMIT)).fill_null(False)  # polars: NaN >= all
    if huge.any():
        first = frame.filter(huge).row(0, named=True)
        raise InputError(
            f"{source}: column {c!r} has {int(huge.sum())} values that are infinite in adaptcast's float32 "
            f"rows (±{VALUE_LIMIT:.8g} and beyond; first {first[c]!r} at {first[tcol]}); rescale the column "
            "to larger units, or fix or drop those rows"
        )


def _column_series(
    table: pl.DataFrame,
    path: Path,
    columns: Sequence[str],
    targets: Sequence[str],
    features: Sequence[str],
    time_col: str | None,
    step_ms: int | None,
) -> tuple[pl.DataFrame, str, list[FrameReport]]:
    """A wide file's columns (its ``table``) as series: ``time, series, <target>`` (the long layout)."""
    if len(targets) != 1 or features:
        raise InputError(
            f"{path}: with one series per column (--series-cols) each column's values are the one "
            f"target; name it with one --target (got {list(targets)}) and give no --features"
        )
    raw = _stamped(table, path, time_col, "first", step_ms)
    chosen = raw.numeric_columns if list(columns) == ["*"] else list(columns)
    for c in chosen:
        _check_channel(raw.frame, c, raw.time_col, path, "name the series columns with --series-cols", True)
    if not chosen:
        raise InputError(f"{path}: no numeric column to read as a series besides {raw.time_col!r}")
    frame = raw.frame.unpivot(  # a series at a time, by name
        index=raw.time_col, on=sorted(chosen), variable_name="series", value_name=targets[0]
    )
    return frame, raw.time_col, [raw.report]


def _row_series(
    df: pl.DataFrame,
    path: Path,
    series_col: str | None,
    targets: Sequence[str],
    features: Sequence[str],
    step_ms: int | None,
) -> tuple[pl.DataFrame, str, list[FrameReport]]:
    """A file (its table ``df``) of a series per row (M4's and the Tourism data's layout: an id,
    then the values in order, a shorter series' row ending in empty cells) as ``time, series,
    <target>``: each series' values a step apart from 1970-01-01, its id ``series_col`` or the
    first text column (else its row number)."""
    if step_ms is None:
        raise InputError(
            f"{path}: a file of a series per row has no times: give its step, e.g. --frequency 1h"
        )
    if len(targets) != 1 or features:
        raise InputError(
            f"{path}: a series per row (--series-rows) holds one value per step; name it with one "
            f"--target (got {list(targets)}) and give no --features"
        )
    if series_col is not None and series_col not in df.columns:
        raise InputError(f"{path}: series column {series_col!r} not found; columns are {df.columns}")
    texts = [c for c, dtype in df.schema.items() if not dtype.is_numeric() and df[c].null_count() < df.height]
    id_col = series_col or (texts[0] if texts else None)
    value_cols = [c for c, dtype in df.schema.items() if c != id_col and dtype.is_numeric()]
    if not value_cols:
        raise InputError(f"{path}: no numeric column of values besides the series id {id_col!r}")
    ids = df[id_col].cast(pl.String) if id_col else pl.Series([str(i) for i in range(df.height)])
    by_name = ids.to_frame("id").select(pl.arg_sort_by("id", maintain_order=True)).to_series()
    ids, df = ids.gather(by_name), df.select(pl.all().gather(by_name))  # a series at a time, by name
    values = df.select(pl.col(value_cols).cast(pl.Float64)).to_numpy()
    n = len(value_cols)
    frame = pl.DataFrame(
        {
            "ts": pl.Series(np.tile(np.arange(n) * step_ms, df.height)).cast(pl.Datetime("ms")),
            "series": np.repeat(ids.to_numpy(), n),
            targets[0]: values.ravel(),
        }
    ).filter(pl.col(targets[0]).is_not_null() & pl.col(targets[0]).is_not_nan())
    return frame, "ts", [_report(frame.filter(pl.col("series") == ids[0])["ts"], 0, True)]


def implied_series_col(table: pl.DataFrame) -> str | None:
    """``series`` where a file has a text column of that name (the input contract's own field, what
    a topic's dump and a monitoring export hold), which then needs no ``--series-col``."""
    return exports.SERIES if table.schema.get(exports.SERIES) == pl.String else None


def value_columns(table: pl.DataFrame, path: Path, series_col: str | None) -> list[str]:
    """A file's numeric columns (its ``table``) other than its time and series-id ones
    (``series_col``, else the one it implies): the values it holds."""
    skip = {*series_columns(series_col or implied_series_col(table) or ""), *_time_columns(table, str(path))}
    return [c for c, dtype in table.schema.items() if dtype.is_numeric() and c not in skip]


def _long_frame(
    df: pl.DataFrame, path: Path, series_col: str, time_col: str | None
) -> tuple[pl.DataFrame, str, list[FrameReport]]:
    """Validate each series of a long-layout file (its table ``df``) on its own and stack them, by
    name, with a ``series`` column. ``series_col`` may name several columns (``host,_field``: a
    metric's labels, an InfluxDB export's tags); a series is then each combination of their values,
    named ``a/cpu``."""
    ids = series_columns(series_col)
    for c in ids:
        if c not in df.columns:
            raise InputError(f"{path}: series column {c!r} not found; columns are {df.columns}")
    if len(ids) > 1:
        df = df.with_columns(
            pl.concat_str([pl.col(c).cast(pl.String) for c in ids], separator="/").alias(series_col)
        )
        df = df.drop(ids)
    # each row's series as a number into the names in order (a quarter of the text's size)
    names = pl.Enum(sorted({str(v) for v in df[series_col].unique()}))
    parts, reports = [], []
    for key, group in df.group_by(series_col, maintain_order=True):
        tf = validate_frame(
            group.drop(series_col),
            time_col=time_col,
            source=f"{path} (series {key[0]})",
            duplicates="first",
            series_col=series_col,
        )
        parts.append(tf.frame.with_columns(pl.lit(str(key[0]), names).alias("series")))
        reports.append(tf.report)
        time_col = tf.time_col
    assert time_col is not None
    parts.sort(key=lambda part: part["series"][0])  # a series at a time, by name
    return pl.concat(parts), time_col, reports

"""A time column composed from a table's date parts: a year, and its quarter, or its month and day.

Statistics offices and climate archives write time as parts: ``Year,Month,Value``, ``Year,Quarter``,
``Year,Employment``, or a row per year with a column per month (``Year,Jan,Feb,…,Dec``). Such a file
has no column a time can be read from; these parts are one, once put together.
"""

from __future__ import annotations

import polars as pl

from adaptcast.forecast.periods import MONTH_NAMES

__all__ = ["DATE_PARTS_TIME", "by_month_columns", "from_date_parts"]

DATE_PARTS_TIME = "ts"  # the name of the time column put together from the parts
PART_NAMES = {  # a part's column, by its name in any case
    "year": ("year", "yr", "yyyy"),
    "quarter": ("quarter", "qtr"),
    "month": ("month", "mon", "mo", "mm"),
    "day": ("day", "dd", "dom", "day_of_month"),
}
PART_RANGES = {"year": (1000, 2999), "quarter": (1, 4), "month": (1, 12), "day": (1, 31)}


def _named(df: pl.DataFrame, part: str) -> str | None:
    names = {c.strip().lower(): c for c in reversed(df.columns)}
    return next((names[n] for n in PART_NAMES[part] if n in names), None)


def _values(df: pl.DataFrame, column: str, part: str) -> pl.Series | None:
    """The column as whole numbers in the part's range (a month may be named, a quarter ``Q1``), else None."""
    col = df[column]
    if col.dtype == pl.String:
        text = col.str.strip_chars().str.to_lowercase()
        if part == "month":
            col = text.replace_strict(MONTH_NAMES, default=None, return_dtype=pl.Int64)
        elif part == "quarter":
            col = text.str.strip_prefix("q").cast(pl.Int64, strict=False)
        else:
            col = text.cast(pl.Int64, strict=False)
    elif col.dtype.is_float():  # whole numbers written as 1950.0
        if col.null_count() or (col != col.floor()).any():
            return None
        col = col.cast(pl.Int64)
    if not col.dtype.is_integer() or col.null_count():
        return None
    lo, hi = PART_RANGES[part]
    return col.cast(pl.Int64) if col.is_between(lo, hi).all() else None


def from_date_parts(df: pl.DataFrame) -> pl.DataFrame | None:
    """``df`` with a time column put together from its year column and, where they are there, its
    quarter or its month and day columns (those columns then dropped); None when it has no year column
    of whole years, or a part it names holds something else."""
    year_col = _named(df, "year")
    if year_col is None or DATE_PARTS_TIME in df.columns:
        return None
    year = _values(df, year_col, "year")
    if year is None:
        return None
    used, month, day = [year_col], pl.Series([1] * df.height), pl.Series([1] * df.height)
    quarter_col, month_col = _named(df, "quarter"), _named(df, "month")
    if month_col is not None:
        found = _values(df, month_col, "month")
        if found is None:
            return None
        month, used = found, [*used, month_col]
        day_col = _named(df, "day")
        if day_col is not None:
            found = _values(df, day_col, "day")
            if found is None:
                return None
            day, used = found, [*used, day_col]
    elif quarter_col is not None:
        found = _values(df, quarter_col, "quarter")
        if found is None:
            return None
        month, used = found * 3 - 2, [*used, quarter_col]
    parts = pl.DataFrame({"y": year, "m": month, "d": day})
    try:
        stamps = parts.select(pl.date("y", "m", "d").cast(pl.Datetime("us"))).to_series()
    except pl.exceptions.ComputeError:  # a day past its month's end (31 April)
        return None
    return df.drop(used).insert_column(0, stamps.alias(DATE_PARTS_TIME))


def by_month_columns(df: pl.DataFrame) -> pl.DataFrame | None:
    """A table of a row per year and a column per month (``Year,Jan,…,Dec``, a climate archive's
    layout) as one row per month, ``ts`` and ``value``, in time order; its other columns (an annual
    mean, seasonal means) dropped. None unless it has a year column, each year once, and all twelve
    months: a year on several rows is a long table, whose month columns are dummies (an
    econometrics file's ``year,month,…,jan,…,dec``)."""
    year_col = _named(df, "year")
    months: dict[int, str] = {}
    for c in df.columns:
        number = MONTH_NAMES.get(c.strip().lower().rstrip("."))
        if number is not None and number not in months:
            months[number] = c
    years = None if year_col is None or len(months) < 12 else _values(df, year_col, "year")
    if years is None or years.n_unique() < years.len():
        return None
    numeric = [c for c in months.values() if df[c].dtype.is_numeric()]
    if len(numeric) < 12:
        return None
    long = df.select(
        pl.col(year_col).cast(pl.Int32).alias("y"),
        *[pl.col(months[m]).cast(pl.Float64).alias(str(m)) for m in range(1, 13)],
    ).unpivot(index="y", variable_name="m", value_name="value")
    return long.select(
        pl.date(pl.col("y"), pl.col("m").cast(pl.Int32), 1).cast(pl.Datetime("us")).alias(DATE_PARTS_TIME),
        "value",
    ).sort(DATE_PARTS_TIME)

"""Period labels (a month, a quarter or an ISO week written as text) as the ISO date of their first day.

Statistics offices, spreadsheets and R write monthly and quarterly data with labels rather than dates:
``1950-01``, ``1950M01``, ``Jan 1950``, ``1950-Jan``, ``Jan-50``, ``1950Q1``, ``Q1 1950``, ``2024-W01``.
A column is read one way throughout: the first form that reads every value, else left as it is.
"""

from __future__ import annotations

import polars as pl

__all__ = ["period_starts"]

_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_FULL = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
MONTH_NAMES = {**{n: i for i, n in enumerate(_NAMES, 1)}, **{n: i for i, n in enumerate(_FULL, 1)}, "sept": 9}

# (pattern on the stripped, lower-cased label, what its ``p`` group counts): y is the year, p the period
MONTH_LABELS = (
    (r"^(?P<y>\d{4})[-/](?P<p>\d{1,2})$", "month"),  # 1950-01, 1950/1
    (r"^(?P<p>\d{1,2})/(?P<y>\d{4})$", "month"),  # 01/1950
    (r"^(?P<y>\d{4})-?m(?P<p>\d{1,2})$", "month"),  # 1950M01 (Eurostat, EViews, Stata), 1950-M01
    (r"^(?P<y>\d{4})[-/ ]?(?P<p>[a-z]{3,9})\.?$", "name"),  # 1950-Jan, 1950 January
    (r"^(?P<p>[a-z]{3,9})\.?[-/ ,]*(?P<y>\d{4})$", "name"),  # Jan 1950 (R's yearmon), January 1950
    (r"^(?P<p>[a-z]{3,9})\.?[-/ ](?P<y>\d{2})$", "name"),  # Jan-50 (a spreadsheet's mmm-yy)
    (r"^(?P<y>\d{4})[- ]?q(?P<p>[1-4])$", "quarter"),  # 1950Q1, 1950-Q1, 1950 Q1
    (r"^q(?P<p>[1-4])[-/ ]?(?P<y>\d{4})$", "quarter"),  # Q1 1950, Q1-1950
    (r"^(?P<y>\d{4})-?w(?P<p>\d{2})$", "week"),  # 2024-W01, 2024W01: ISO weeks, from their Monday
)
CENTURY_PIVOT = 70  # two-digit years below this are 20xx, others 19xx (as C's strptime %y reads them)


def period_starts(col: pl.Series) -> pl.Series:
    """The column with its period labels written as ISO dates (``YYYY-MM-DD``); unchanged unless one
    form of :data:`MONTH_LABELS` reads every value as a real month, quarter or week."""
    sample = col.head(100).str.strip_chars().str.to_lowercase()  # most columns are dates: tell them cheaply
    forms = [(pattern, unit) for pattern, unit in MONTH_LABELS if sample.str.contains(pattern).all()]
    text = col.str.strip_chars().str.to_lowercase() if forms else col
    for pattern, unit in forms:
        parts = text.str.extract_groups(pattern)
        year, part = parts.struct.field("y"), parts.struct.field("p")
        if year.is_null().any():
            continue
        years = year.cast(pl.Int32)
        if year.str.len_chars().max() == 2:
            years = years + 1900 + (years < CENTURY_PIVOT).cast(pl.Int32) * 100
        if unit == "week":
            starts = (years.cast(pl.String).str.zfill(4) + "-W" + part + "-1").str.to_datetime(
                "%G-W%V-%u", strict=False
            )
            if starts.null_count():  # week 53 of a year with 52
                continue
            return starts.dt.strftime("%Y-%m-%d").alias(col.name)
        if unit == "name":
            month = part.replace_strict(MONTH_NAMES, default=None, return_dtype=pl.Int32)
        else:
            month = part.cast(pl.Int32) * (3 if unit == "quarter" else 1) - (2 if unit == "quarter" else 0)
        if month.is_null().any() or not month.is_between(1, 12).all():
            continue
        return (years.cast(pl.String).str.zfill(4) + "-" + month.cast(pl.String).str.zfill(2) + "-01").alias(
            col.name
        )
    return col

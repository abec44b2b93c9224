"""pandas' ``to_json`` layouts other than an array of rows: a DataFrame's default (``orient="columns"``),
``"index"``, ``"split"`` and ``"table"``, and a Series' object of values by time.

pandas writes the index without its name (except in ``"table"``), so it becomes the column ``ts``
(``index`` where a column is named ``ts`` already), its epoch milliseconds (pandas' default
``date_format``) as integers and ISO dates as text, for the time column's usual reading; an index
of row numbers (0, 1, 2, …: a frame whose times are a column) is left out. Pure: a parsed JSON
object in, a frame out, or None where the object is none of these layouts.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from adaptcast.forecast.exports import is_number

EPOCH_KEY = re.compile(r"^-?\d+$")  # an index of times written as epoch numbers: JSON keys are text


def frame(obj: Any) -> pl.DataFrame | None:
    """The rows of ``obj`` when it is one of pandas' layouts above, its index as a column; else None."""
    if not isinstance(obj, dict) or not obj:
        return None
    if isinstance(obj.get("schema"), dict) and isinstance(obj.get("data"), list):  # "table": rows, named
        return pl.from_dicts(obj["data"], infer_schema_length=None) if obj["data"] else None
    if isinstance(obj.get("columns"), list) and isinstance(obj.get("data"), list):  # "split"
        columns = [str(c) for c in obj["columns"]]
        rows = pl.DataFrame(obj["data"], schema=columns, orient="row", infer_schema_length=None)
        return _with_index(rows, obj["index"] if isinstance(obj.get("index"), list) else None)
    keys, values = list(obj), list(obj.values())
    if all(isinstance(v, dict) for v in values):
        if _times(keys):  # "index": an object per time, of its columns
            times, columns = keys, list(dict.fromkeys(c for v in values for c in v))
            data = {c: [v.get(c) for v in values] for c in columns}
        elif all(_times(list(v)) for v in values):  # "columns", pandas' default: an object per column
            columns, times = keys, list(dict.fromkeys(t for v in values for t in v))
            data = {c: [obj[c].get(t) for t in times] for c in columns}
        else:
            return None
        return _with_index(pl.DataFrame(data, strict=False), times)
    if _times(keys) and all(is_number(v) or v is None for v in values):  # a Series: value by time
        return _with_index(pl.DataFrame({"value": values}, strict=False), keys)
    return None


def _times(keys: list[Any]) -> bool:
    """Whether an object's keys are an index of times: all epoch numbers, or all dates."""
    text = pl.Series([str(k) for k in keys])
    if text.str.contains(EPOCH_KEY.pattern).all():
        return True
    try:
        return text.str.to_datetime(strict=False).null_count() == 0
    except pl.exceptions.PolarsError:  # no date format fits the first key
        return False


def _with_index(rows: pl.DataFrame, keys: list[Any] | None) -> pl.DataFrame:
    """``rows`` with the index ``keys`` as their first column, named ``ts`` (``index`` if a column has
    that name): integers where every key is an epoch number, else the keys' text. Row numbers
    (0, 1, 2, …) or no index: ``rows`` as they are."""
    if keys is None:
        return rows
    text = pl.Series("ts" if "ts" not in rows.columns else "index", [str(k) for k in keys])
    if not text.str.contains(EPOCH_KEY.pattern).all():
        return rows.insert_column(0, text)
    index = text.cast(pl.Int64)
    return (
        rows
        if index.equals(pl.int_range(len(index), eager=True), check_names=False)
        else rows.insert_column(0, index)
    )

"""Calendar time marks for Informer: encode timestamps, and step them forward inside the model.

The marks follow the Informer paper's time-feature embedding: each calendar field is scaled to
``[-0.5, 0.5]``::

    minute  = minute / 59 - 0.5           (sub-hourly frequencies only)
    hour    = hour / 23 - 0.5             (sub-daily frequencies)
    weekday = weekday / 6 - 0.5           (Monday = 0)
    day     = (day_of_month - 1) / 30 - 0.5
    doy     = (day_of_year - 1) / 365 - 0.5

Which fields a frequency uses (:func:`mark_names`): ``"h"`` (hourly) → hour, weekday, day, doy;
``"<n>min"`` (e.g. ``"15min"``) → minute, hour, weekday, day, doy; ``"d"`` → weekday, day, doy;
``"<n>h"`` as hourly with an n-hour step.

For *stamp embeddings* (the Informer paper's learnable per-field time-stamp embeddings) the
marks are decoded back into integer fields, :func:`stamp_fields`: month, day, weekday, hour and
minute (those the frequency has); the month follows from the day of the year and the day of the
month, so no extra channel is needed.

Because a forecaster only receives the past window ``X``, the marks of the future steps are
derived from the marks of the window's last step (:func:`step_marks`): decode the integer
fields, add ``k`` steps of the frequency, and re-encode. The month lengths come from the day of
the year and day of the month (their difference is the month's first day, which tells a leap
year from March on). For a window ending in January or February the year's leap status is not
visible in the marks; a common year is assumed unless the window ends on 29 February, so in a
leap year the day/doy marks of forecast steps after 28 February can be one day off. Likewise,
after a year boundary inside the horizon a common year is assumed (exact when the year before was
a leap year). Hourly horizons up to 720 steps (30 days) are exact outside those two cases.
"""

from __future__ import annotations

import re

import numpy as np
import torch

_STARTS = {
    False: [1, 32, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335],
    True: [1, 32, 61, 92, 122, 153, 183, 214, 245, 275, 306, 336],
}
_DIVISORS = {"minute": 59.0, "hour": 23.0, "weekday": 6.0, "day": 30.0, "doy": 365.0}
_OFFSETS = {"minute": 0, "hour": 0, "weekday": 0, "day": 1, "doy": 1}


def parse_freq(freq: str) -> tuple[int, tuple[str, ...]]:
    """``(step in minutes, mark names)`` for a frequency string ("h", "15min", "d", "2h", …)."""
    m = re.fullmatch(r"\s*(\d*)\s*(min|t|h|d)\s*", str(freq).lower())
    if not m:
        raise ValueError(f"freq must look like 'h', '15min', '2h' or 'd', got {freq!r}")
    n = int(m.group(1) or 1)
    unit = m.group(2)
    if n < 1:
        raise ValueError(f"freq step must be positive, got {freq!r}")
    if unit in ("min", "t"):
        return n, ("minute", "hour", "weekday", "day", "doy")
    if unit == "h":
        return 60 * n, ("hour", "weekday", "day", "doy")
    return 1440 * n, ("weekday", "day", "doy")


def mark_names(freq: str) -> tuple[str, ...]:
    return parse_freq(freq)[1]


def calendar_marks(timestamps: np.ndarray, freq: str = "h") -> np.ndarray:
    """Marks ``[N, k]`` (float32) of ``timestamps`` (anything ``np.datetime64`` accepts)."""
    ts = np.asarray(timestamps, dtype="datetime64[m]")
    minutes = ts.astype(np.int64)
    days = np.floor_divide(minutes, 1440)
    years = ts.astype("datetime64[Y]")
    months = ts.astype("datetime64[M]")
    fields = {
        "minute": minutes % 60,
        "hour": (minutes // 60) % 24,
        "weekday": (days + 3) % 7,  # 1970-01-01 was a Thursday
        "day": (ts.astype("datetime64[D]") - months.astype("datetime64[D]")).astype(np.int64) + 1,
        "doy": (ts.astype("datetime64[D]") - years.astype("datetime64[D]")).astype(np.int64) + 1,
    }
    cols = [(fields[n] - _OFFSETS[n]) / _DIVISORS[n] - 0.5 for n in mark_names(freq)]
    return np.stack(cols, axis=-1).astype(np.float32)


def _checked_names(marks: torch.Tensor, freq: str) -> tuple[str, ...]:
    """The mark names of ``freq``, after checking that ``marks [..., k]`` has one channel per name."""
    names = mark_names(freq)
    if marks.shape[-1] != len(names):
        raise ValueError(f"freq {freq!r} has {len(names)} marks {names}, got {marks.shape[-1]}")
    return names


def _decode(marks: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    out = {}
    for i, n in enumerate(names):
        out[n] = torch.round((marks[..., i].double() + 0.5) * _DIVISORS[n]).long() + _OFFSETS[n]
    return out


# month (0-11) indexed by the day of year of its first day, common and leap years together: no
# value is shared by two different months (1 and 32 are January and February in both)
_MONTH_OF_FIRST = torch.zeros(367, dtype=torch.long)
for _starts in _STARTS.values():
    _MONTH_OF_FIRST[torch.tensor(_starts)] = torch.arange(12)


def stamp_fields(marks: torch.Tensor, freq: str = "h") -> dict[str, torch.Tensor]:
    """Integer calendar fields of marks ``[..., k]``, zero-based, for stamp embeddings.

    ``month`` 0–11 (recovered from day of year and day of month), ``day`` 0–30, ``weekday`` 0–6,
    and for sub-daily frequencies ``hour`` 0–23, for sub-hourly ``minute`` 0–59. Values are
    clamped to those ranges so a corrupted mark cannot index outside an embedding table.
    """
    f = _decode(marks, _checked_names(marks, freq))
    first = (f["doy"] - f["day"] + 1).clamp(1, 366)
    out = {
        "month": _MONTH_OF_FIRST.to(marks.device)[first],
        "day": (f["day"] - 1).clamp(0, 30),
        "weekday": f["weekday"].clamp(0, 6),
    }
    for name, top in (("hour", 23), ("minute", 59)):
        if name in f:
            out[name] = f[name].clamp(0, top)
    return out


STAMP_SIZES = {"month": 12, "day": 31, "weekday": 7, "hour": 24, "minute": 60}


def step_marks(last: torch.Tensor, steps: int, freq: str = "h") -> torch.Tensor:
    """Marks ``[B, steps, k]`` of the ``steps`` time steps after the one whose marks are ``last [B, k]``."""
    step = parse_freq(freq)[0]
    names = _checked_names(last, freq)
    f = _decode(last, names)
    dev = last.device
    B = last.shape[0]
    zero = torch.zeros(B, dtype=torch.long, device=dev)
    minute, hour = f.get("minute", zero), f.get("hour", zero)
    k = torch.arange(1, steps + 1, device=dev, dtype=torch.long)
    t = (hour * 60 + minute).unsqueeze(1) + k * step  # minutes since the start of the last step's day
    day_off = torch.div(t, 1440, rounding_mode="floor")
    new = {"minute": t % 60, "hour": torch.div(t, 60, rounding_mode="floor") % 24}
    new["weekday"] = (f["weekday"].unsqueeze(1) + day_off) % 7

    doy, day = f["doy"], f["day"]
    first = doy - day + 1  # day of year of the month's first day
    leap_only = torch.tensor(sorted(set(_STARTS[True]) - set(_STARTS[False])), device=dev)
    leap = torch.isin(first, leap_only) | ((first == 32) & (day == 29)) | (doy == 366)
    j = doy.unsqueeze(1) + day_off
    leap = leap.unsqueeze(1).expand_as(j).clone()
    while True:  # roll into following years (a common year is assumed after a leap year's end)
        ylen = 365 + leap.long()
        over = j > ylen
        if not bool(over.any()):
            break
        j = torch.where(over, j - ylen, j)
        leap = torch.where(over, torch.zeros_like(leap), leap)
    starts = {b: torch.tensor(_STARTS[b], device=dev) for b in (False, True)}
    day_common = j - starts[False][torch.bucketize(j, starts[False], right=True) - 1] + 1
    day_leap = j - starts[True][torch.bucketize(j, starts[True], right=True) - 1] + 1
    new["day"] = torch.where(leap, day_leap, day_common)
    new["doy"] = j
    cols = [(new[n] - _OFFSETS[n]).to(last.dtype) / _DIVISORS[n] - 0.5 for n in names]
    return torch.stack(cols, dim=-1)

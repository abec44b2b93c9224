"""Input checks shared by the adaptation components: fail loudly, never emit NaN."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["finite_array", "finite_scalar"]


def finite_scalar(x: object, name: str = "x") -> float:
    """Return ``x`` as a float, raising ValueError if it is not a finite real number."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {x!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def finite_array(
    x: object,
    name: str,
    ndim: int | tuple[int, ...] | None = None,
    dtype: type = np.float64,
    allow_empty: bool = False,
) -> np.ndarray:
    """Return ``x`` as a contiguous array; ValueError on wrong rank, emptiness or non-finite values."""
    try:
        a = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {type(x).__name__}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if a.ndim not in allowed:
            raise ValueError(f"{name} must have ndim in {allowed}, got shape {a.shape}")
    if a.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return np.ascontiguousarray(a)

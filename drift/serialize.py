"""Pickle-free snapshots of component state (detectors, error memory, policies, ledger).

A state is a nested dict of JSON-able scalars/lists/strings and numpy arrays (what every
component's ``state_dict()`` returns).  ``save_state`` writes several of them into one
``.npz`` file (``allow_pickle=False``): arrays become npz members, everything else goes into
one JSON document stored as a unicode array.  Writes are atomic (temp file + rename) so a
crash mid-snapshot never leaves a torn file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["from_jsonable", "load_state", "save_state", "to_jsonable"]

_META = "__meta__"
_ARR = "__ndarray__"


def to_jsonable(obj: Any, arrays: dict[str, np.ndarray], prefix: str) -> Any:
    """Replace numpy arrays in ``obj`` by references into ``arrays``; reject anything not JSON-able."""
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError(f"object arrays cannot be saved without pickle ({prefix})")
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {_ARR: key}
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"state keys must be str, got {k!r} at {prefix}")
            if k == _ARR:
                raise TypeError(f"reserved key {_ARR!r} at {prefix}")
            out[k] = to_jsonable(v, arrays, f"{prefix}/{k}")
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, arrays, f"{prefix}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot serialise {type(obj).__name__} at {prefix}")


def from_jsonable(obj: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """Inverse of :func:`to_jsonable`."""
    if isinstance(obj, dict):
        if set(obj) == {_ARR}:
            return np.array(arrays[obj[_ARR]])
        return {k: from_jsonable(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v, arrays) for v in obj]
    return obj


def save_state(path: str | os.PathLike[str], states: Mapping[str, Any]) -> Path:
    """Write ``{name: state_dict}`` to ``path`` (an ``.npz`` file) atomically, without pickle."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
    arrays: dict[str, np.ndarray] = {}
    meta = to_jsonable(dict(states), arrays, "")
    arrays[_META] = np.array(json.dumps(meta, allow_nan=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a file written by :func:`save_state`; arrays come back as numpy arrays."""
    with np.load(Path(path), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if _META not in arrays:
        raise ValueError(f"{path} is not an adaptcast state file (no {_META})")
    meta = json.loads(str(arrays.pop(_META)))
    return from_jsonable(meta, arrays)

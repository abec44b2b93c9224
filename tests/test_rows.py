"""Per-series rows (drift.rows) and the interval calibrator's use of them."""

from __future__ import annotations

import numpy as np

from adaptcast.drift.conformal import ConformalParams, OnlineConformal
from adaptcast.drift.rows import Rows, as_index


def _rows() -> Rows:
    return Rows({"x": np.full(3, np.nan), "n": np.array(0)})


def test_new_keys_start_from_their_fields_and_keep_their_rows_as_the_arrays_grow() -> None:
    rows = _rows()
    a = rows.add(["a", "b"])
    rows["x"][a] = [[1, 2, 3], [4, 5, 6]]
    rows["n"][a] = [7, 8]
    more = rows.add([f"k{i}" for i in range(40)])  # past the first allocation: the arrays are copied
    assert len(set(more.tolist()) | set(a.tolist())) == 42
    assert np.isnan(rows["x"][more]).all() and (rows["n"][more] == 0).all()
    got = rows.find(["b", "a", "missing"])
    assert got[2] == -1
    assert rows["x"][got[:2]].tolist() == [[4, 5, 6], [1, 2, 3]] and rows["n"][got[:2]].tolist() == [8, 7]
    assert rows.add(["a", "a"]).tolist() == [a[0], a[0]]  # an existing key keeps its row


def test_a_dropped_keys_row_is_reused_and_started_afresh() -> None:
    rows = _rows()
    first = rows.add(["a", "b", "c"])
    rows["n"][first] = 5
    rows.drop(["b", "never-added"])
    assert rows.find(["b"]).tolist() == [-1]
    (d,) = rows.add(["d"])
    assert d == first[1] and rows["n"][d] == 0  # b's row, with nothing of b left in it
    rows.clear()
    assert rows.find(["a"]).tolist() == [-1] and rows.add(["a"]).tolist() == [0]


def test_consecutive_rows_index_as_a_view_and_others_as_given() -> None:
    assert as_index(np.array([3, 4, 5])) == slice(3, 6)
    for rows in ([3, 5, 4], [0, 2, 4], [], [2, 1]):
        got = as_index(np.array(rows, dtype=np.int64))
        assert isinstance(got, np.ndarray) and got.tolist() == rows


def test_a_forgotten_series_comes_back_with_none_of_its_old_state() -> None:
    cal = OnlineConformal(2, 1, ConformalParams(levels=(0.8,), window=20))
    cal.reseed(np.ones((30, 2, 1)))
    names = ["a", "b"]
    which = np.repeat([0, 1], 40)
    leads = np.tile([1, 2], 40)
    residuals = np.random.default_rng(0).normal(size=(80, 1)) * np.where(which == 0, 10.0, 1.0)[:, None]
    cal.update_many(names, which, leads, residuals, np.ones((80, 1, 1)))
    wide, b_before = cal.half_widths(["a"]), cal.half_widths(["b"])
    cal.forget(["a"])
    cal.update_many(["c"], np.zeros(1, dtype=np.int64), np.array([1]), np.ones((1, 1)), None)
    assert "a" not in cal.series and "a" not in cal.experts
    fresh = cal.half_widths(["never-seen"])  # the pooled ring at the nominal level
    assert np.array_equal(cal.half_widths(["a"]), fresh) and not np.array_equal(wide, fresh)
    assert cal.series["c"].count.tolist() == [1, 0]  # a's old row now holds c, started afresh
    assert np.array_equal(cal.half_widths(["b"]), b_before)  # b, beside them, is untouched

"""``bench/memory_ceiling.py``: each correction uses only what it says it knows, and is scored as stated."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from bench_module import load

BENCH = load("memory_ceiling")
NAMES = ["a", "b"]


def _shifted(n: int = 60, at: int = 20, size: float = 5.0, horizon: int = 3) -> np.ndarray:
    """Residuals ``[series, step, lead]``: noise, then a bias of ``size`` on every lead from ``at``."""
    r = np.random.default_rng(0).normal(0, 0.1, (len(NAMES), n, horizon))
    r[:, at:] += size
    return r


def test_realisable_corrections_use_only_residuals_already_known():
    r = np.arange(2 * 10 * 3, dtype=float).reshape(2, 10, 3)
    c = BENCH.newest_per_lead(NAMES, r, np.zeros(10, dtype=int))
    for t in range(10):
        for h in range(3):  # lead h+1's residual is known h+1 steps after its forecast was issued
            assert c[0, t, h] == (r[0, t - h - 1, h] if t - h - 1 >= 0 else 0.0)


def test_the_level_term_follows_a_shift_and_starts_afresh_at_a_swap():
    r = _shifted()
    v = np.zeros(r.shape[1], dtype=int)
    v[40:] = 1  # a new serving model from step 40
    c = BENCH.level_term(NAMES, r, v)
    assert np.all(c[:, 5:20] == 0.0)  # noise alone: the term stays off
    assert np.allclose(c[:, 35, :], 5.0, atol=0.3)  # after the shift it corrects every lead
    assert np.all(c[:, 40] == 0.0)  # the swap: nothing known of the new model yet
    assert np.all(c[:, :, 0] == c[:, :, 2])  # one offset for all leads


def test_hindsight_bounds_remove_what_they_are_told():
    r = _shifted()
    post = np.zeros(r.shape[1], dtype=bool)
    post[20:30] = True
    lead1 = BENCH.ratios(r, BENCH.hindsight_lead1(NAMES, r, None), post)
    assert lead1["post_event"] < 0.05  # the bias is the same on every lead: lead 1 knows it all
    none = BENCH.ratios(r, np.zeros_like(r), post)
    assert none == {"whole": 1.0, "post_event": 1.0}


def test_residuals_lay_forecasts_out_by_issue_step_and_lead():
    t0 = datetime(2024, 1, 1)
    rows = [
        {
            "series": s,
            "issued_at": t0 + timedelta(hours=i),
            "step": h,
            "y": 10.0 * i + h,
            "yhat_base": 10.0 * i,
            "model_version": "1" if i < 2 else "10",
        }
        for s in NAMES
        for i in range(3)
        for h in (1, 2)
    ]
    names, r, v, issued = BENCH.residuals(pl.DataFrame(rows), horizon=2)
    assert names == NAMES and r.shape == (2, 3, 2)
    assert np.all(r[:, :, 0] == 1.0) and np.all(r[:, :, 1] == 2.0)
    assert v[0] == v[1] != v[2]
    assert len(issued) == 3

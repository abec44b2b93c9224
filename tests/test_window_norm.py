"""Level-invariant inputs (``window_norm``): every model can learn changes relative to each window's level."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from adaptcast.forecast import create_forecaster, load_forecaster
from adaptcast.forecast.windows import auto_norm, scale_spread, sliding_windows
from adaptcast.streams.cli import main

LOOKBACK, HORIZON = 12, 3


def _windows(seed: int, level: float, rows: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """AR(1) (φ = 0.9, unit noise) around ``level``."""
    rng = np.random.default_rng(seed)
    y = np.zeros(rows)
    for t in range(1, rows):
        y[t] = 0.9 * y[t - 1] + rng.normal()
    return sliding_windows((y + level)[:, None].astype(np.float32), LOOKBACK, HORIZON, 1)


def _mae(model, X, Y) -> float:
    return float(np.abs(model.predict(X) - Y).mean())


def test_xgboost_follows_a_level_it_never_saw_only_with_window_norm():
    X, Y = _windows(0, level=0.0)
    Xn, Yn = _windows(1, level=50.0)  # 50 noise sds above anything in training: trees cannot reach it
    plain = create_forecaster("xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=60)
    plain.fit(X, Y)
    last = create_forecaster(
        "xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=60, window_norm="last"
    )
    last.fit(X, Y)
    at_home = _mae(last, X[-200:], Y[-200:])
    assert _mae(last, Xn, Yn) < 1.5 * at_home  # as good at level 50 as at level 0 (about 1.2 here)
    assert _mae(plain, Xn, Yn) > 20 * at_home  # stuck at the training range, ~45 too low


def test_delta_keeps_the_mean_reversion_last_hides_and_still_follows_a_new_level():
    """``delta``: targets relative to the last value (as ``last``), with that value kept as an input.
    On a mean-reverting series the level says which way the next step goes, which ``last`` hides;
    at a level never seen the forecast still starts from the last value, where ``none`` is stuck."""
    X, Y = _windows(0, level=0.0)
    Xh, Yh = _windows(2, level=0.0)  # the same process, unseen draws
    Xn, Yn = _windows(1, level=50.0)
    mae = {}
    for norm in ("none", "last", "delta"):
        model = create_forecaster(
            "xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=60, window_norm=norm
        )
        model.fit(X, Y)
        mae[norm] = (_mae(model, Xh, Yh), _mae(model, Xn, Yn))
    assert mae["delta"][0] <= 1.01 * mae["none"][0] < mae["last"][0]  # about 1.08, 1.10 and 1.13
    assert mae["delta"][1] < 1.5 * mae["delta"][0] < mae["none"][1] / 20  # about 1.3 against 47


def test_delta_scales_the_changes_by_how_the_series_moves_so_a_far_level_costs_nothing():
    """Under ``delta`` the scaler leaves out the step that carries the level: a series 10⁶ above
    zero is forecast as well as the same series at zero. Scaled with the level, its changes were
    ~10⁻⁵ in model units, too small for the trees to split on."""
    mae = {}
    for level in (0.0, 1e6):
        X, Y = _windows(0, level=level)
        Xh, Yh = _windows(2, level=level)
        model = create_forecaster(
            "xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=60, window_norm="delta"
        )
        model.fit(X, Y)
        mae[level] = _mae(model, Xh, Yh)
        assert model.scaler.std[0] < 10  # the changes' spread (a few units), not the level's (~10⁵)
    assert mae[1e6] < 1.02 * mae[0.0]  # about 1.07 against 1.08 (1.12 scaled with the level)


@pytest.mark.parametrize(
    ("kind", "norm"),
    [(k, n) for k in ("arnet", "naive", "xgboost") for n in ("last", "mean", "standard")]
    + [("xgboost", "delta")],
)
def test_window_norm_survives_save_and_load_and_predicts_the_same(tmp_path, kind, norm):
    params = {"epochs": 2} if kind == "arnet" else {"n_estimators": 5} if kind == "xgboost" else {}
    X, Y = _windows(0, level=5.0, rows=300)
    model = create_forecaster(kind, lookback=LOOKBACK, horizon=HORIZON, window_norm=norm, **params)
    model.fit(X, Y)
    back = load_forecaster(model.save(tmp_path / "m"))
    assert back.window_norm == norm and back.config == model.config == model.clone().config
    np.testing.assert_allclose(back.predict(X[:20]), model.predict(X[:20]), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kind", ["arnet", "lstm", "naive"])
def test_delta_is_refused_for_models_that_extrapolate(kind):
    """Fed the level beside the changes, an LSTM at level 1000 had an MAE of 36 against 1.5 with
    none. In the changes' units that level is hundreds of spreads from zero; only a tree's splits
    do not care where an input sits."""
    with pytest.raises(ValueError, match=f"{kind}: window_norm delta is for models that cannot extrapolate"):
        create_forecaster(kind, lookback=LOOKBACK, horizon=HORIZON, window_norm="delta")


def test_window_norm_is_off_by_default_and_checked():
    model = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON)
    assert model.window_norm == "none" and "window_norm" not in model.config
    with pytest.raises(ValueError, match="must be one of none, last, delta, mean, standard, auto"):
        create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON, window_norm="first")


def test_naive_with_window_norm_still_repeats_the_last_value():
    """The anchor is added back exactly: a model that predicts 0 change forecasts the last value."""
    X, Y = _windows(0, level=3.0, rows=200)
    model = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON, window_norm="last")
    model.fit(X, Y)
    np.testing.assert_allclose(model.predict(X), np.repeat(X[:, -1:, :1], HORIZON, axis=1), atol=1e-4)


@pytest.mark.parametrize("kind", ["arnet", "lstm"])  # smooth models (a tree's split sees float32 rounding)
def test_standard_windows_make_forecasts_scale_and_shift_equivariant(kind):
    """Each window is centred and divided by its spread, so a series a·y + b gets a·forecast + b."""
    params = {"epochs": 1} if kind == "lstm" else {}
    X, Y = _windows(0, level=5.0, rows=300)
    model = create_forecaster(kind, lookback=LOOKBACK, horizon=HORIZON, window_norm="standard", **params)
    model.fit(X, Y)
    a, b = 1000.0, -3.0e4
    np.testing.assert_allclose(
        model.predict(a * X[:20] + b), a * model.predict(X[:20]) + b, rtol=1e-4, atol=1.0
    )
    assert model.output_scale(a * X[:20]) == pytest.approx(a * model.output_scale(X[:20]), rel=1e-4)


def test_auto_is_settled_by_the_fit_when_no_loop_decided_it():
    X, Y = _windows(0, level=5.0, rows=300)
    alone = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, window_norm="auto")
    alone.fit_closed_form(X, Y)
    assert alone.window_norm == "none"  # one model's windows: nothing to tell scales apart by
    tree = create_forecaster(
        "xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=5, window_norm="auto"
    )
    tree.fit(X, Y)
    assert tree.window_norm == "delta"  # a tree cannot forecast beyond the levels it saw
    parent = create_forecaster(
        "xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=5, window_norm="standard"
    )
    parent.fit(X, Y)
    child = create_forecaster(
        "xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=5, window_norm="auto"
    )
    child.fit_warm(parent, X, Y)
    assert child.window_norm == "standard"  # a warm fit continues in its parent's units


@pytest.mark.parametrize(
    ("kind", "like", "unlike"), [("arnet", "none", "standard"), ("xgboost", "delta", "standard")]
)
def test_auto_norm_is_the_models_level_norm_unless_the_scales_differ(kind, like, unlike):
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(500, 1)), axis=0)
    model = create_forecaster(kind, lookback=LOOKBACK, horizon=HORIZON)
    assert auto_norm([walk, walk + 50], 1, model.level_norm)[0] == like
    assert auto_norm([walk, 1000 * walk], 1, model.level_norm)[0] == unlike


def test_scale_spread_compares_the_series_step_sizes():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(500, 1)), axis=0)
    assert scale_spread([walk, 1000 * walk + 7], 1) == pytest.approx(1000)
    assert scale_spread([walk, walk + 1e6], 1) == pytest.approx(1)  # a level is not a scale
    assert scale_spread([walk], 1) == 1.0 and scale_spread([walk, np.ones((50, 1))], 1) == 1.0  # no steps


def test_the_default_serves_series_of_unlike_scales_each_in_its_own_units(tmp_path):
    """One model over series at 1, 10³ and 10⁶: with the windows as they are the small ones were
    forecast with errors of thousands; auto standardises each window, and the error memory keeps
    its residuals in those units, so each series is forecast about as well as on its own."""
    rng = np.random.default_rng(3)
    n, frames = 900, []
    for k, scale in enumerate([1.0, 1e3, 1e6]):
        x = np.zeros(n)
        for i in range(1, n):
            x[i] = 0.8 * x[i - 1] + rng.normal()
        frames.append(
            pl.DataFrame(
                {
                    "date": pl.datetime_range(
                        pl.datetime(2024, 1, 1),
                        pl.datetime(2024, 1, 1) + pl.duration(hours=n - 1),
                        "1h",
                        eager=True,
                    ),
                    "id": f"s{k}",
                    "y": scale * (10 + x + np.sin(np.arange(n) * 2 * np.pi / 24)),
                }
            )
        )
    path = tmp_path / "scales.csv"
    pl.concat(frames).write_csv(path)

    def per_series(*extra: str) -> dict[str, float]:
        out = tmp_path / str(len(list(tmp_path.iterdir())))
        args = [
            "backtest",
            "--data",
            str(path),
            "--series-col",
            "id",
            "--target",
            "y",
            "--out",
            str(out),
            *extra,
        ]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        fc = pl.read_parquet(out / "forecasts.parquet").drop_nulls("y")
        mae = fc.group_by("series").agg((pl.col("y") - pl.col("yhat")).abs().mean())
        bare.append(dict(fc.group_by("series").agg((pl.col("y") - pl.col("yhat_base")).abs().mean()).rows()))
        alarms.append(pl.read_parquet(out / "events.parquet").filter(pl.col("event") == "drift").height)
        bounded = fc.drop_nans("lo_80").with_columns(
            width=pl.col("hi_80") - pl.col("lo_80"),
            inside=(pl.col("y") >= pl.col("lo_80")) & (pl.col("y") <= pl.col("hi_80")),
        )
        intervals.append(
            {
                k: (w, c)
                for k, w, c in bounded.group_by("series")
                .agg(pl.col("width").quantile(0.9), pl.col("inside").mean())
                .rows()
            }
        )
        return dict(mae.rows())

    alarms: list[int] = []
    bare: list[dict[str, float]] = []  # the model's own forecasts (the gate may serve the last value)
    intervals: list[dict[str, tuple[float, float]]] = []
    auto, plain = per_series(), per_series("--param", 'window_norm="none"')
    # the detector reads each error in its window's units too: the largest series' noise alone
    # raised 10 false alarms on this stationary feed when errors were compared in pooled units;
    # in window units it raises about as many as the three series backtested alone (1, 2 and 1)
    assert alarms[0] <= 6
    # and the interval calibrator's pool: the smallest series' 80 % intervals were millions wide
    for k, scale in enumerate([1.0, 1e3, 1e6]):
        width, coverage = intervals[0][f"s{k}"]
        assert width < 15 * scale and 0.7 < coverage < 0.9
    for k, scale in enumerate([1.0, 1e3, 1e6]):
        assert auto[f"s{k}"] < 2.0 * scale  # about 1.4 noise units at every scale
    assert bare[1]["s0"] > 50 * bare[0]["s0"]  # the shared scaler drowned the smallest series
    assert all(auto[k] < plain[k] for k in auto)


def test_series_that_grow_apart_are_standardised_from_the_next_fit_on():
    """Three series alike for 300 steps (auto: none), then one whose steps are 200× larger (prices
    that sat together for years, one then rising a hundredfold). The next fit looks again: it is
    cold and gated in the new units, the forecasts issued before it are scored in theirs (they once
    divided by a zero scale and the detector raised on NaN), and the units never go back."""
    from adaptcast.streams.build import build_loop
    from adaptcast.streams.config import load_config
    from adaptcast.streams.records import Record

    overrides = {"model": {"lookback": LOOKBACK, "horizon": HORIZON}}  # the default adaptation
    loop = build_loop(load_config(overrides=overrides, environ={}))
    jobs = []
    submit = loop.adaptation.trainer.submit
    loop.adaptation.trainer.submit = lambda job: (jobs.append((job.template.window_norm, job)), submit(job))
    rng = np.random.default_rng(5)
    x = np.zeros(3)
    norms = []
    for step in range(700):
        x = 0.9 * x + rng.normal(size=3)
        grown = 200.0 if step >= 300 else 1.0
        values = [10 + x[0], 10 + x[1], 10 + grown * x[2]]
        res = loop.process([Record(f"s{k}", step * 3_600_000, {"y": float(v)}) for k, v in enumerate(values)])
        assert np.isfinite([f.yhat[0][0] for f in res.forecasts]).all()
        if loop.adaptation.model is not None:
            norms.append(loop.adaptation.model.window_norm)
    assert norms[0] == "none" and norms[-1] == "standard"
    assert norms == sorted(norms)  # "none" until the switch, then "standard" to the end
    first = next(i for i, (norm, _) in enumerate(jobs) if norm == "standard")
    switched = jobs[first][1]
    assert switched.warm_from is None and switched.recipe is None  # cold, and its recipe found again
    assert all(norm == "standard" for norm, _ in jobs[first:])


def test_a_standard_models_reference_error_is_in_the_units_its_detector_reads():
    """The performance detector compares the live lead-1 errors, each divided by its window's scale,
    with the validated fit's error: that must be in the same units, or over series at 1 and 1,000
    the reference was the large one's raw error (about 400 against live errors of 0.6) and the
    detector could never fire."""
    from adaptcast.streams.assess import validation_error

    Xs, Ys = zip(*(_windows(k, level=10.0) for k in range(2)), strict=True)
    X = np.concatenate([Xs[0], 1000 * Xs[1]])
    Y = np.concatenate([Ys[0], 1000 * Ys[1]])
    model = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, window_norm="standard")
    model.fit(X, Y)
    pred = model.predict(X)
    assert model.scaler is not None
    live = np.abs(pred[:, :1] - Y[:, :1]) / model.output_scale(X)[:, None, :] / model.scaler.std[:1]
    assert validation_error(model, X, Y, pred) == pytest.approx(float(live.mean()), rel=1e-5)
    half = len(Xs[0])
    small, large = (validation_error(model, X[s], Y[s]) for s in (slice(0, half), slice(half, None)))
    assert 0.5 < small / large < 2  # each series weighs alike, whatever its scale


@pytest.mark.parametrize("norm", ["auto", "none"])
def test_a_model_served_in_other_units_is_retrained_in_one_unit(norm):
    """A worker whose first fit settled on none is handed a model in other units (one trained by
    `adaptcast train` on a whole file, which settled auto on standard). Under auto its retrains
    continue in the served model's units; under units set by hand they are cold. Before, the
    retrain was warm from a model of other units: a network's warm fit raised at every retrain, and
    the closed-form AR-Net took over the served model's scaler, fitted on standardised windows, for
    raw ones."""
    from adaptcast.streams.build import build_loop
    from adaptcast.streams.config import load_config
    from adaptcast.streams.events import Retrained, RetrainFailed
    from adaptcast.streams.records import Record

    overrides = {
        "model": {"lookback": LOOKBACK, "horizon": HORIZON, "params": {"window_norm": norm}},
        "adaptation": {"policy": "periodic:24"},
    }
    loop = build_loop(load_config(overrides=overrides, environ={}))
    X, Y = _windows(0, level=10.0, rows=400)
    rng = np.random.default_rng(1)
    for step in range(600):
        if step == 200:
            assert loop.adaptation.model is not None and loop.adaptation.model.window_norm == "none"
            other = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, window_norm="standard")
            other.fit_closed_form(X, Y)
            loop.serve(other)
        loop.process([Record("s", step * 3_600_000, {"y": float(10 + rng.normal())})])
    after = [e for e in loop.events if isinstance(e, Retrained | RetrainFailed) and e.step > 200]
    assert after and all(isinstance(e, Retrained) for e in after)
    served = loop.adaptation.model
    assert served is not None and served.scaler is not None
    if norm == "auto":  # auto continues in the served model's units, warm from it
        assert served.window_norm == "standard"
    else:  # units set by hand stay; the refit is cold, not warm from a scaler of other units
        assert served.window_norm == "none" and served.scaler is not other.scaler


def test_a_loop_serving_a_checkpoint_retrains_in_its_units():
    """A worker restarted from a saved model keeps that model's window_norm for its retrains (a warm
    fit needs the same units) until its series' scales grow apart (the test above)."""
    from adaptcast.streams.build import build_loop
    from adaptcast.streams.config import load_config

    cfg = load_config(overrides={"model": {"lookback": LOOKBACK, "horizon": HORIZON}}, environ={})
    loop = build_loop(cfg)
    assert loop.adaptation.template.window_norm == "auto"
    X, Y = _windows(0, level=5.0, rows=300)
    saved = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, window_norm="standard")
    saved.fit_closed_form(X, Y)
    loop.serve(saved)
    assert loop.adaptation.template.window_norm == "standard"


def test_windows_that_do_not_move_do_not_wreck_a_standard_fit(tmp_path):
    """A sparse count (mostly zeros) beside a busy one: auto picks standard (step sizes 70× apart),
    and about four windows in ten of the sparse series are all zeros. Divided by their own spread
    (0) and with the step after them unbounded, they made a fit whose MAE was 10⁶; they are now
    divided by 1 and the targets clipped, and both series do as well as with the windows as they are."""
    rng = np.random.default_rng(7)
    n = 1200
    start = pl.datetime(2024, 1, 1)
    dates = pl.datetime_range(start, start + pl.duration(hours=n - 1), "1h", eager=True)
    frame = pl.concat(
        pl.DataFrame({"date": dates, "id": f"s{k}", "y": rng.poisson(lam, n).astype(float)})
        for k, lam in enumerate([0.02, 100.0])
    )
    path = tmp_path / "sparse.csv"
    frame.write_csv(path)
    maes = []
    for norm in ("auto", "none"):
        out = tmp_path / norm
        args = ["backtest", "--data", str(path), "--series-col", "id", "--target", "y", "--out", str(out)]
        res = CliRunner().invoke(main, [*args, "--param", f'window_norm="{norm}"'])
        assert res.exit_code == 0, res.output
        fc = pl.read_parquet(out / "forecasts.parquet").drop_nulls("y")
        maes.append(dict(fc.group_by("series").agg((pl.col("y") - pl.col("yhat")).abs().mean()).rows()))
    auto, plain = maes
    assert all(auto[k] < 1.1 * plain[k] for k in plain)
    model = create_forecaster("naive", lookback=4, horizon=1, window_norm="standard")
    still = np.zeros((2, 4, 1), dtype=np.float32)
    still[1] = 7.0
    assert model.output_scale(still).tolist() == [[1.0], [1.0]]

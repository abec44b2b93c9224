"""AR-Net reproduces least-squares AR coefficients and, with its regulariser, recovers sparse ones."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from adaptcast.forecast import create_forecaster, load_forecaster
from adaptcast.forecast.models.arnet import (
    CHOOSERS,
    CV_FOLDS,
    RIDGE_GRID,
    blocked_cv_error,
    huber_weights,
    ridge_solve,
    sparsity_penalty,
)

TRUE = np.array([0.5, -0.3, 0.2])
FAST = {"accelerator": "cpu", "num_threads": 1, "patience": 100}  # run the whole LR schedule


def ar_series(n: int, seed: int = 0) -> np.ndarray:
    """A stationary AR(3) process with unit-variance Gaussian noise (500 burn-in steps dropped)."""
    rng = np.random.default_rng(seed)
    y, e = np.zeros(n + 500), rng.standard_normal(n + 500)
    for t in range(3, n + 500):
        y[t] = TRUE @ y[t - 3 : t][::-1] + e[t]
    return y[500:].astype(np.float32)


def lag_windows(y: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    w = sliding_window_view(y, p + 1)
    return np.ascontiguousarray(w[:, :p, None]), np.ascontiguousarray(w[:, p:, None])


def least_squares(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """OLS AR coefficients with intercept, most recent lag first."""
    A = np.c_[X[:, ::-1, 0], np.ones(len(X))]
    return np.linalg.lstsq(A, Y[:, 0, 0], rcond=None)[0][:-1]


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    return ar_series(20_000)


def test_learns_least_squares_coefficients(series):
    X, Y = lag_windows(series, 3)
    model = create_forecaster("arnet", lookback=3, horizon=1, **FAST)
    model.fit(X, Y)
    coef = model.coefficients()
    assert coef.shape == (1, 3)
    np.testing.assert_allclose(coef[0], TRUE, atol=0.03)
    np.testing.assert_allclose(coef[0], least_squares(X, Y), atol=0.03)


def test_sparse_recovery_with_regulariser_and_without(series):
    X, Y = lag_windows(series, 100)
    sparse = create_forecaster("arnet", lookback=100, horizon=1, sparsity=0.03, **FAST)
    sparse.fit(X, Y)
    coef = sparse.coefficients()[0]
    np.testing.assert_allclose(coef[:3], TRUE, atol=0.05)
    assert np.abs(coef[3:]).max() < 0.02
    dense = create_forecaster("arnet", lookback=100, horizon=1, **FAST)
    dense.fit(X, Y)
    # The regulariser must be what makes the spurious lags vanish: much larger without it.
    spurious_dense = np.abs(dense.coefficients()[0][3:]).sum()
    assert np.abs(coef[3:]).sum() < 0.05 * spurious_dense


def test_coefficients_most_recent_lag_first_and_survive_reload(tmp_path):
    # y_t = 0.8 * y_{t-1} only: the weight must sit in column 0, not column lookback-1.
    rng = np.random.default_rng(1)
    y = np.zeros(6000, dtype=np.float32)
    for t in range(1, y.size):
        y[t] = 0.8 * y[t - 1] + rng.standard_normal()
    X, Y = lag_windows(y, 4)
    model = create_forecaster("arnet", lookback=4, horizon=1, epochs=15, **FAST)
    model.fit(X, Y)
    coef = model.coefficients()[0]
    assert abs(coef[0] - 0.8) < 0.05 and np.abs(coef[1:]).max() < 0.05
    model.save(tmp_path / "ar")
    np.testing.assert_array_equal(load_forecaster(tmp_path / "ar").coefficients(), model.coefficients())


def test_sparsity_penalty_shape():
    w = torch.tensor([0.0, 0.01, 0.1, 1.0, -1.0, 10.0])
    per = [float(sparsity_penalty(v.view(1), 3.0, 3.0)) for v in w]
    assert per[0] < 0.1 and per[-1] > 0.99 and per[3] == pytest.approx(per[4])
    assert per[1] < per[2] < per[3] < per[5]


def test_lambda_from_sparsity():
    model = create_forecaster("arnet", lookback=10, horizon=1, sparsity=0.1)
    assert model.lam == pytest.approx(0.01 * 9)
    assert create_forecaster("arnet", lookback=10, horizon=1, lam=0.5).lam == 0.5
    with pytest.raises(ValueError, match="sparsity"):
        create_forecaster("arnet", lookback=10, horizon=1, sparsity=1.5)


def test_coefficients_refuse_hidden_layers():
    X, Y = lag_windows(ar_series(500), 5)
    model = create_forecaster("arnet", lookback=5, horizon=1, hidden=[8], epochs=1, **FAST)
    model.fit(X, Y)
    with pytest.raises(ValueError, match="hidden"):
        model.coefficients()
    assert model.embed(X[:3]).shape == (3, 8)


def test_ridge_with_a_given_share_is_the_normal_equations_towards_the_prior():
    """Centred lags and targets, α = share × rows on the weights only; the intercept from the means."""
    rng = np.random.default_rng(3)
    z, y, prior = (torch.from_numpy(rng.standard_normal(s)) for s in ((40, 6), (40, 2), (6, 2)))
    z = z + 5.0
    w, b, shares, which = ridge_solve(z, y, prior, 0.5)
    zc, yc, alpha = z - z.mean(0), y - y.mean(0), 0.5 * 40
    expected = torch.linalg.solve(zc.T @ zc + alpha * torch.eye(6, dtype=z.dtype), zc.T @ yc + alpha * prior)
    assert shares.tolist() == [0.5, 0.5] and which.tolist() == [0, 0]
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(b, y.mean(0) - z.mean(0) @ expected)


@pytest.mark.parametrize("chooser", CHOOSERS)
def test_a_chosen_ridge_shrinks_a_fit_on_few_windows_and_leaves_one_on_many_alone(chooser):
    """48 lags of an AR(3): on 80 windows least squares overfits and the chosen shrinkage forecasts
    better out of sample; on 15,000 windows it is (almost) none and the fit finds the true lags."""
    fresh_X, fresh_Y = lag_windows(ar_series(4_000, seed=9), 48)

    def fit(X, Y, ridge):
        model = create_forecaster("arnet", lookback=48, horizon=1, ridge=ridge)
        report = model.fit_closed_form(X, Y)
        mse = float(((model.predict(fresh_X) - fresh_Y) ** 2).mean())
        (share,) = report.extra["ridge"]  # one output: one share
        return model, share, mse

    few_X, few_Y = lag_windows(ar_series(128, seed=4), 48)
    _, tiny, tiny_mse = fit(few_X, few_Y, 1e-3)
    _, chosen, chosen_mse = fit(few_X, few_Y, chooser)
    assert tiny == 1e-3 and chosen >= 0.1 and chosen_mse < 0.9 * tiny_mse
    many_X, many_Y = lag_windows(ar_series(15_048, seed=5), 48)
    model, chosen, _ = fit(many_X, many_Y, chooser)
    assert chosen <= 0.02  # 2 % of the evidence: blocked folds fit on 4/5 of it, so lean a step stronger
    np.testing.assert_allclose(model.coefficients()[0, :3], TRUE, atol=0.03)


@pytest.mark.parametrize("chooser", CHOOSERS)
def test_each_outputs_share_is_chosen_as_if_it_were_fitted_alone(chooser):
    """A column the lags predict (the AR(3)'s next value) and one they cannot (fresh noise) in one
    fit: the noise gets far stronger shrinkage than the signal, and each column's share and weights
    are what a fit of that column alone gives, so a noisy far lead cannot over-shrink lead 1."""
    X, Y = lag_windows(ar_series(400, seed=6), 24)
    z = torch.tensor(X[:, :, 0], dtype=torch.float64)
    noise = np.random.default_rng(7).standard_normal(len(Y))
    y = torch.from_numpy(np.c_[Y[:, 0, 0], noise])
    prior = torch.zeros(24, 2, dtype=torch.float64)
    w, b, shares, _ = ridge_solve(z, y, prior, chooser, gap=1)
    assert shares[1] > 10 * shares[0]
    for col in range(2):
        alone = ridge_solve(z, y[:, col : col + 1], prior[:, col : col + 1], chooser, gap=1)
        w_alone, b_alone, share_alone, _ = alone
        assert share_alone.item() == shares[col].item()
        torch.testing.assert_close(w[:, col : col + 1], w_alone)
        torch.testing.assert_close(b[col : col + 1], b_alone)


def test_blocked_cross_validation_is_each_left_out_blocks_error_under_a_fit_on_the_rest():
    """Every share and prior's error equals refitting on the windows outside a block and its gap
    and forecasting the block, summed over the blocks: one eigendecomposition per block gives the
    whole grid."""
    X, Y = lag_windows(ar_series(90, seed=3), 6)
    z, y = torch.tensor(X[:, :, 0], dtype=torch.float64), torch.tensor(Y[:, :, 0], dtype=torch.float64)
    priors = torch.stack([torch.zeros(6, 1), torch.eye(6, 1)]).double()  # the mean, then persistence
    err = blocked_cv_error(z, y, priors, gap=2)
    edges = np.linspace(0, len(z), CV_FOLDS + 1).round().astype(int)
    for g in (0, 9, 25):
        for k in range(2):
            total = 0.0
            for a, b in itertools.pairwise(edges):
                keep = np.r_[0 : max(0, a - 2), b + 2 : len(z)]
                w, bias, _, _ = ridge_solve(z[keep], y[keep], priors[k], float(RIDGE_GRID[g]))
                total += float(((z[a:b] @ w + bias - y[a:b]) ** 2).sum())
            assert err[k, g, 0].item() == pytest.approx(total, rel=1e-9)


def test_weighted_rows_count_as_that_many_copies_in_the_fit_and_in_the_chooser():
    """A row of weight 2 is the row twice: the same weights, intercept, chosen share and prior."""
    X, Y = lag_windows(ar_series(120, seed=8), 6)
    z, y = torch.tensor(X[:, :, 0], dtype=torch.float64), torch.tensor(Y[:, :, 0], dtype=torch.float64)
    priors = torch.stack([torch.zeros(6, 1), torch.eye(6, 1)]).double()
    twice = torch.arange(len(z)) % 3 == 0
    weights = torch.where(twice, 2.0, 1.0).double()
    order = torch.cat([torch.arange(len(z)), torch.nonzero(twice)[:, 0]])
    for ridge in (0.3, "gcv"):
        got = ridge_solve(z, y, priors, ridge, weights=weights)
        want = ridge_solve(z[order], y[order], priors, ridge)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b)
    ones = torch.ones(len(z), dtype=torch.float64)
    torch.testing.assert_close(blocked_cv_error(z, y, priors, 2, ones), blocked_cv_error(z, y, priors, 2))


def test_huber_weights_leave_ordinary_windows_alone_and_down_weigh_a_jump():
    """Gaussian residuals over 12 leads: almost every window keeps weight 1, and none loses much. A
    window that errs by 20 deviations at every lead gets about c / 20, whatever the residuals' units."""
    rng = np.random.default_rng(11)
    resid = torch.from_numpy(rng.standard_normal((500, 12)))
    resid[7] = 20.0
    for unit in (1.0, 1e-6, 1e6):
        w = huber_weights(resid * unit)
        assert w[7].item() == pytest.approx(1.345 / 20.0, rel=0.1)
        rest = w[torch.arange(500) != 7]
        assert (rest == 1.0).float().mean() > 0.99 and rest.min() > 0.9
    assert (huber_weights(torch.zeros(5, 3)) == 1.0).all()  # a perfect fit: nothing to down-weigh


def test_a_robust_fit_is_bent_less_by_level_shifts_in_its_windows():
    """An AR(3) with ten level shifts of 30 deviations in its training windows: the reweighted fit
    forecasts the same process without shifts over 5 % better than least squares does; trained on
    the process without shifts, the two forecast alike."""
    fresh_X, fresh_Y = lag_windows(ar_series(4_000, seed=9), 3)
    y = ar_series(3_000, seed=12)
    shifted = y + 30.0 * (np.arange(len(y)) // 300 % 2)

    def mse(data, robust):
        model = create_forecaster("arnet", lookback=3, horizon=1, robust=robust)
        report = model.fit_closed_form(*lag_windows(data, 3))
        assert report.epochs == (3 if robust else 1)  # each reweighted solve is one more pass
        return float(((model.predict(fresh_X) - fresh_Y) ** 2).mean())

    assert mse(shifted, True) < 0.95 * mse(shifted, False)
    assert mse(y, True) == pytest.approx(mse(y, False), rel=0.01)


def test_blocked_cross_validation_falls_back_to_generalised_on_too_few_windows():
    """Leaving a block and its gap out must leave windows to fit; where it would not, ``cv``
    chooses as ``gcv`` does rather than fail."""
    X, Y = lag_windows(ar_series(30, seed=4), 4)
    z, y = torch.tensor(X[:, :, 0], dtype=torch.float64), torch.tensor(Y[:, :, 0], dtype=torch.float64)
    prior = torch.zeros(4, 1, dtype=torch.float64)
    assert blocked_cv_error(z, y, prior[None], gap=len(z)) is None
    torch.testing.assert_close(
        ridge_solve(z, y, prior, "cv", gap=len(z))[2], ridge_solve(z, y, prior, "gcv")[2]
    )


@pytest.mark.parametrize("chooser", CHOOSERS)
@pytest.mark.parametrize("seed", range(5))
def test_a_chosen_ridge_shrinks_random_walks_towards_persistence_and_noise_towards_the_mean(seed, chooser):
    """Every lead of a random walk is pulled towards its last value, every lead of white noise
    around a level towards the windows' mean: what each series' own history says is the better
    guess when the lags have little to add."""
    rng = np.random.default_rng(seed)
    for y, prior in ((np.cumsum(rng.standard_normal(300)), "last"), (5 + rng.standard_normal(300), "mean")):
        w = sliding_window_view(y.astype(np.float32), 27)
        model = create_forecaster("arnet", lookback=24, horizon=3, ridge=chooser)
        report = model.fit_closed_form(w[:, :24, None].copy(), w[:, 24:, None].copy())
        assert report.extra["prior"] == [prior] * 3


def test_the_persistence_prior_forecasts_each_targets_last_value_at_every_lead():
    """The prior's layout: lags channel-major, outputs lead-major, targets the leading channels."""
    model = create_forecaster("arnet", lookback=5, horizon=4, n_features=3, n_targets=2, exogenous=True)
    net = model.build_module()
    X = torch.randn(7, 5, 3)
    prior = model._persistence(torch.zeros_like(net.out.weight.T))
    out = (net.lags(X) @ prior).reshape(7, 4, 2)
    torch.testing.assert_close(out, X[:, -1:, :2].expand(7, 4, 2))


def test_the_fit_report_gives_one_share_per_lead_and_target():
    X, Y = lag_windows(ar_series(300, seed=8), 12)
    model = create_forecaster("arnet", lookback=8, horizon=5)
    report = model.fit_closed_form(np.ascontiguousarray(X[:, :8]), np.concatenate([X[:, 8:], Y], axis=1))
    assert len(report.extra["ridge"]) == 5 and all(v in RIDGE_GRID.tolist() for v in report.extra["ridge"])
    assert len(report.extra["prior"]) == 5


@pytest.mark.parametrize("ridge", ["auto", 0, -1.0, True])
def test_ridge_refuses_what_is_not_a_positive_share_or_a_chooser(ridge):
    with pytest.raises(ValueError, match="ridge must be 'cv', 'gcv' or a share > 0"):
        create_forecaster("arnet", lookback=4, horizon=1, ridge=ridge)


def test_a_chosen_ridge_ignores_the_parents_weights_and_a_fixed_one_pulls_towards_them():
    """Cross-validation cannot judge a pull towards a model fitted on the same windows, so with
    a chosen ridge the serving model's weights do not enter the new solution (its scaler still does)."""
    X, Y = lag_windows(ar_series(600, seed=1), 8)
    for ridge, same in (("cv", True), ("gcv", True), (1.0, False)):
        parent = create_forecaster("arnet", lookback=8, horizon=1, ridge=ridge)
        parent.fit_closed_form(X, Y)
        children = []
        for scale in (1.0, -3.0):  # the same parent, then one with other weights
            with torch.no_grad():
                parent.module.out.weight.mul_(scale)
            child = create_forecaster("arnet", lookback=8, horizon=1, ridge=ridge)
            child.fit_closed_form(X, Y, parent=parent)
            children.append(child.predict(X))
        assert np.allclose(children[0], children[1], atol=1e-5) is same


def test_shrinkage_pulls_forecasts_towards_the_windows_mean_not_an_old_level():
    """The intercept is not shrunk: with a huge share the weights vanish and the forecast is the
    mean of the targets, even where the scaler (a parent's, fitted at another level) says 0."""
    X, Y = lag_windows(ar_series(600, seed=2), 6)
    parent = create_forecaster("arnet", lookback=6, horizon=1, ridge=1e6)
    parent.fit_closed_form(X, Y)
    child = create_forecaster("arnet", lookback=6, horizon=1, ridge=1e6)
    child.fit_closed_form(X + 50.0, Y + 50.0, parent=parent)  # the level moved far from the scaler's
    np.testing.assert_allclose(child.predict(X + 50.0), np.full_like(Y, float(Y.mean()) + 50.0), atol=0.05)

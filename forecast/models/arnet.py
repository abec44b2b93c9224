"""AR-Net (Triebe et al. 2019): a linear layer over the last p lags, with the paper's sparsity regulariser."""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from adaptcast.forecast.base import BaseForecaster, FitReport, register
from adaptcast.forecast.training import TorchForecaster


def sparsity_penalty(weight: torch.Tensor, c1: float, c2: float) -> torch.Tensor:
    """R(θ) = mean_i [2 / (1 + exp(−c1·|θ_i|^(1/c2))) − 1]: 0 at θ=0, saturating at 1 for large |θ|.

    |θ| is floored at 1e-4: the root's slope is infinite at 0, and without the floor Adam's
    second-moment estimate explodes for weights near zero and freezes them wherever they are.
    """
    return (2.0 * torch.sigmoid(c1 * weight.abs().clamp_min(1e-4).pow(1.0 / c2)) - 1.0).mean()


# shares of the evidence "cv" and "gcv" choose among
RIDGE_GRID = torch.logspace(-3, 2, 26, dtype=torch.float64)
# what a chosen ridge may shrink each output towards: the windows' mean, or persistence
PRIORS = ("mean", "last")
CHOOSERS = ("cv", "gcv")  # ways to choose the ridge per fit: blocked or generalised cross-validation
CV_FOLDS = 5  # contiguous blocks of windows "cv" leaves out in turn
# Huber's usual constant (95 % efficiency under Gaussian errors), on a window's mean standardised residual
HUBER_C = 1.345
ROBUST_PASSES = 2  # reweighted fits after the plain one ("robust": true)


def ridge_solve(
    z: torch.Tensor,
    y: torch.Tensor,
    priors: torch.Tensor,
    ridge: float | str,
    gap: int = 0,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ridge regression towards a prior with a free intercept: argmin Σ wᵢ‖yᵢ − zᵢW − b‖² + α‖W − prior‖².

    α = share × Σw (the number of rows when unweighted), per output column. ``ridge`` is one share
    for all columns, or a way to choose it (``CHOOSERS``): for each column the share on
    ``RIDGE_GRID`` with the least cross-validated error, blocked (``"cv"``,
    :func:`blocked_cv_error`; ``gap`` windows each side of a left-out block are left out of its
    fit too) or generalised (``"gcv"``, :func:`gcv_error`). A column that
    is mostly noise (a far lead) then gets strong shrinkage without forcing it on a column the lags
    predict well (lead 1); few or collinear rows get strong shrinkage, many rows almost none. The
    intercept is not shrunk. ``priors`` is one prior ``[d, columns]`` or several ``[K, d, columns]``;
    a chosen ridge also takes, per column, the prior with the least error, the first on a tie (with
    a fixed share, the first). ``weights`` (one per row, > 0 somewhere; None: all 1) weigh the rows
    in the fit and in the chooser's errors alike. Returns the weights, the intercepts, and per
    column the share and the prior used.
    """
    priors = priors if priors.dim() == 3 else priors[None]
    cols = y.shape[1]
    wt = torch.ones(z.shape[0], dtype=z.dtype) if weights is None else weights.to(z.dtype)
    n = wt.sum()
    z_mean, y_mean = _weighted_mean(z, wt), _weighted_mean(y, wt)
    root = wt.sqrt()[:, None]
    zc = root * (z - z_mean)
    resid = (root * (y - y_mean))[None] - zc @ priors  # [K, rows, columns]: the departure from a prior
    s2, v = _spectrum(zc.T @ zc)
    g = v.T @ (zc.T @ resid)  # [K, d, columns]: the residuals' correlations with the lags' eigenvectors
    if ridge in CHOOSERS:
        err = blocked_cv_error(z, y, priors, gap, wt) if ridge == "cv" else None
        err = gcv_error(resid, g, s2, n) if err is None else err
        best = torch.argmin(err.reshape(-1, cols), dim=0)
        which, shares = best // len(RIDGE_GRID), RIDGE_GRID[best % len(RIDGE_GRID)]
    else:
        which = torch.zeros(cols, dtype=torch.long)
        shares = torch.full((cols,), float(ridge), dtype=z.dtype)
    at = torch.arange(cols)
    prior, g = priors[which, :, at].T, g[which, :, at].T  # each column's own prior
    w = prior + v @ (g / (s2[:, None] + shares[None, :] * n))
    return w, y_mean - z_mean @ w, shares, which


def _spectrum(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (squared singular values, ≥ 0) and eigenvectors of the centred lags' Gram
    matrix ``zcᵀzc``: a ridge solve's every quantity from this ``[d, d]`` matrix, as the normal
    equations do, instead of an SVD of the ``[rows, d]`` lags, which costs about ten times more
    on thousands of windows. A chosen share is at least 10⁻³ of the evidence, far above the
    rounding that squaring the lags' conditioning adds."""
    s2, v = torch.linalg.eigh(gram)
    return s2.clamp_min(0.0), v


def _weighted_mean(x: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    return (wt[:, None] * x).sum(0) / wt.sum()


def huber_weights(resid: torch.Tensor, c: float = HUBER_C) -> torch.Tensor:
    """Per row of residuals ``[rows, columns]``, Huber's weight min(1, c / score) (iteratively
    reweighted least squares), where a row's score is its mean absolute residual over the columns,
    each in units of its column's robust deviation (1.4826 × median |residual|).

    A window whose targets span a jump nothing in its lags foretold (a level shift, a link that
    failed) errs by many deviations at once; least squares would bend every weight towards it, as
    squared errors make one such window count like hundreds of ordinary ones. Rows of ordinary
    error keep weight 1.
    """
    a = resid.abs()
    scale = 1.4826 * a.median(0).values
    z = torch.where(scale > 0, a / torch.where(scale > 0, scale, 1.0), torch.zeros_like(a))
    return (c / z.mean(1).clamp_min(1e-12)).clamp(max=1.0)


def gcv_error(
    resid: torch.Tensor, g: torch.Tensor, s2: torch.Tensor, n: torch.Tensor | float
) -> torch.Tensor:
    """Generalised cross-validation error n·RSS / (n − tr H)², ``[K, grid, columns]``, from the
    lags' spectrum (eigenvalues ``s2`` of their Gram matrix, the residuals' correlations ``g`` with
    its eigenvectors); ``n`` is the rows' summed weight. Directions the lags do not span (an
    eigenvalue below 1e-12 of the largest) fit nothing."""
    live = s2 > 1e-12 * s2.max()
    proj_sq = torch.where(live[:, None], g * g / torch.where(live, s2, 1.0)[:, None], 0.0)
    s2 = torch.where(live, s2, 0.0)[:, None]
    alphas = RIDGE_GRID[:, None, None] * n  # [grid, 1, 1]
    outside = (resid * resid).sum(1) - proj_sq.sum(1)  # [K, columns]: what no weights can fit
    rss = outside[:, None, :] + ((alphas / (s2 + alphas)) ** 2 * proj_sq[:, None]).sum(2)
    dof = 1.0 + (s2 / (s2 + alphas)).sum(1)  # [grid, 1]; the intercept is one more
    return n * rss / (n - dof).clamp_min(1.0) ** 2


def blocked_cv_error(
    z: torch.Tensor, y: torch.Tensor, priors: torch.Tensor, gap: int, weights: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Squared error of forecasting each of ``CV_FOLDS`` contiguous blocks of windows from a fit on
    the others, less ``gap`` windows each side, summed ``[K, grid, columns]`` (each row's error and
    fit weighted by ``weights``, as in :func:`ridge_solve`); None when a fit would keep fewer than
    two windows. Expanded as Σout² − 2·Σout·guess + Σguess², so no
    ``[K, grid, left out, columns]`` array is made: a fleet's fit has many windows.

    Neighbouring windows share most of their values, and windows that share a rare event say
    the same thing: leaving one window out (what GCV approximates) lets a fit that memorised the
    event look good, leaving a block out does not.
    """
    n = z.shape[0]
    wt = torch.ones(n, dtype=z.dtype) if weights is None else weights.to(z.dtype)
    root = wt.sqrt()[:, None]
    z, y = z - _weighted_mean(z, wt), y - _weighted_mean(y, wt)  # moments about the overall means
    wz, wy = wt[:, None] * z, wt[:, None] * y

    def moments(part: slice) -> tuple[torch.Tensor, ...]:
        """Σw, Σwz, Σwy, Σwzzᵀ, Σwzyᵀ over a run of rows: a fold's fit is all rows less one run."""
        return wt[part].sum(), wz[part].sum(0), wy[part].sum(0), wz[part].T @ z[part], wz[part].T @ y[part]

    total = moments(slice(None))
    edges = torch.linspace(0, n, CV_FOLDS + 1).round().long().tolist()
    err = torch.zeros(priors.shape[0], len(RIDGE_GRID), y.shape[1], dtype=z.dtype)
    for a, b in itertools.pairwise(edges):
        lo, hi = max(0, a - gap), min(n, b + gap)
        if n - (hi - lo) < 2 or a == b:
            return None
        w_fit, sz, sy, zz, zy = (t - e for t, e in zip(total, moments(slice(lo, hi)), strict=True))
        z_mean, y_mean = sz / w_fit, sy / w_fit
        czz = zz - w_fit * torch.outer(z_mean, z_mean)  # zcᵀzc of the fitted rows, centred on their means
        czy = zy - w_fit * torch.outer(z_mean, y_mean)
        zo = root[a:b] * (z[a:b] - z_mean)
        out = (root[a:b] * (y[a:b] - y_mean))[None] - zo @ priors  # [K, left out, columns]
        s2, v = _spectrum(czz)
        gain = 1.0 / (s2[None] + RIDGE_GRID[:, None] * w_fit)  # [grid, d]
        g, basis = v.T @ (czy[None] - czz @ priors), zo @ v  # [K, d, columns], [left out, d]
        coef = gain[None, :, :, None] * g[:, None]  # [K, grid, d, columns]: guess = basis @ coef
        cross = (coef * (basis.T @ out)[:, None]).sum(2)
        square = (coef * ((basis.T @ basis) @ coef)).sum(2)
        err += (out * out).sum(1)[:, None] - 2.0 * cross + square
    return err


class ARNetModule(nn.Module):
    """Lags, most recent first, of the chosen channels → optional hidden layers → [B, H, T].

    The flattened input is channel-major: column ``c * lookback + k`` is lag ``k + 1`` of
    channel ``c`` (k = 0 is the most recent step).
    """

    def __init__(self, lookback: int, horizon: int, n_targets: int, channels: int, hidden: list[int]):
        super().__init__()
        self.horizon, self.n_targets, self.channels = horizon, n_targets, channels
        sizes = [channels * lookback, *hidden]
        self.hidden = nn.Sequential(
            *[layer for a, b in itertools.pairwise(sizes) for layer in (nn.Linear(a, b), nn.ReLU())]
        )
        self.out = nn.Linear(sizes[-1], horizon * n_targets)
        self.first = self.hidden[0] if hidden else self.out

    def lags(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : self.channels].flip(1).transpose(1, 2).reshape(x.shape[0], -1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(self.lags(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_embed(x)[0]

    def forward_embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(x)
        return self.out(h).view(x.shape[0], self.horizon, self.n_targets), h


@register
class ARNet(TorchForecaster):
    """AR-Net: sparse, interpretable autoregression trained by SGD; ``coefficients()`` gives the lag weights.

    Hyper-parameters: ``hidden`` (list of hidden widths; [] = the classic linear AR-Net),
    ``exogenous`` (also use the non-target channels' lags), ``c1``, ``c2`` (regulariser
    shape), ``lam`` (λ; 0 = no regulariser) or ``sparsity`` (expected fraction s of
    non-zero lags, giving λ = c_λ·(1/s − 1) with c_λ = √L̂/100 and L̂ = 1, the loss of
    predicting the mean on standardised data), ``ridge`` (the closed-form fit's shrinkage as a
    share of the windows, or ``"cv"``/``"gcv"`` to choose it per fit and output by blocked or
    generalised cross-validation), ``robust`` (the closed-form fit reweighs its windows by
    :func:`huber_weights` twice, so jumps nothing foretold do not set the weights). Optimisation:
    Adam with the LR decayed by cosine annealing over ``epochs`` so the weights settle to the
    optimum, not near it.
    """

    kind = "arnet"
    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 30,
        "batch_size": 256,
        "lr": 3e-2,
        "patience": 10,
        "hidden": [],
        "exogenous": False,
        "c1": 3.0,
        "c2": 3.0,
        "lam": 0.0,
        "sparsity": None,
        "ridge": "cv",
        "robust": True,
    }

    def _validate_hparams(self) -> None:
        super()._validate_hparams()
        s = self.hparams["sparsity"]
        if s is not None and not 0 < float(s) <= 1:
            raise ValueError(f"arnet: sparsity must be in (0, 1], got {s!r}")
        self.hparams["hidden"] = [int(h) for h in self.hparams["hidden"]]
        r = self.hparams["ridge"]
        if r not in CHOOSERS and (isinstance(r, bool) or not isinstance(r, int | float) or r <= 0):
            raise ValueError(f"arnet: ridge must be 'cv', 'gcv' or a share > 0 such as 0.001, got {r!r}")

    @property
    def lam(self) -> float:
        """The regulariser weight λ actually used (from ``sparsity`` when given)."""
        s = self.hparams["sparsity"]
        return float(self.hparams["lam"]) if s is None else (math.sqrt(1.0) / 100.0) * (1.0 / float(s) - 1.0)

    def build_module(self) -> ARNetModule:
        channels = self.n_features if self.hparams["exogenous"] else self.n_targets
        return ARNetModule(self.lookback, self.horizon, self.n_targets, channels, self.hparams["hidden"])

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mse = nn.functional.mse_loss(module(x).float(), y.float())
        if self.lam == 0.0:
            return mse
        return mse + self.lam * sparsity_penalty(
            module.first.weight, float(self.hparams["c1"]), float(self.hparams["c2"])
        )

    def configure_optimizer(self, params):
        opt = torch.optim.Adam(
            params, lr=float(self.hparams["lr"]), weight_decay=float(self.hparams["weight_decay"])
        )
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=int(self.hparams["epochs"]), eta_min=0.0
        )

    @property
    def supports_closed_form(self) -> bool:  # type: ignore[override]
        """A linear AR-Net without the sparsity regulariser is least squares: it has a closed form."""
        return not self.hparams["hidden"] and self.lam == 0.0

    def _fit_closed_form(self, X: np.ndarray, Y: np.ndarray, parent: BaseForecaster | None) -> FitReport:
        """Ridge least squares of the targets on the lags, free intercept (:func:`ridge_solve`); with
        ``robust`` solved again ``ROBUST_PASSES`` times with each window weighed by
        :func:`huber_weights` of the previous solve's residuals. Each solve counts as an epoch.

        α is a share of the windows' summed weight (their number, unweighted). With ``ridge="cv"``
        (the default) blocked cross-validation chooses it per fit and output, with a gap of one
        horizon so no fitted window's targets overlap a left-out one's (``"gcv"``: generalised),
        and W₀ too: zero or persistence (``PRIORS``, :meth:`_persistence`); with a fixed share W₀
        is the parent's weights (a warm, recursive-least-squares-like update) or zero for a first
        model.
        """
        torch.manual_seed(self.seed)
        net = self.build_module()
        if isinstance(parent, ARNet) and parent.module is not None:
            net.load_state_dict({k: v.detach().cpu() for k, v in parent.module.state_dict().items()})
        with torch.no_grad():
            z = net.lags(torch.from_numpy(X)).double()
            y = torch.from_numpy(Y).double().reshape(Y.shape[0], -1)
            prior = net.out.weight.double().T
            if parent is None or self.hparams["ridge"] in CHOOSERS:
                # cross-validation cannot judge a pull towards a model fitted on these same windows:
                # it would always keep that model, so a chosen ridge shrinks towards zero (the
                # windows' mean) or towards persistence, whichever it finds the better per output
                prior = torch.stack([torch.zeros_like(prior), self._persistence(prior)])
            passes = 1 + (ROBUST_PASSES if self.hparams["robust"] else 0)
            weights = None
            for k in range(passes):
                w, bias, shares, which = ridge_solve(
                    z, y, prior, self.hparams["ridge"], gap=self.horizon, weights=weights
                )
                if k + 1 < passes:
                    weights = huber_weights(y - z @ w - bias)
            net.out.weight.copy_(w.T.float())
            net.out.bias.copy_(bias.float())
            mse = float(((z @ w + bias - y) ** 2).mean())
        self.module = net.to(self.device).eval()
        return FitReport(
            epochs=passes,
            samples_seen=passes * int(X.shape[0]),
            wall_seconds=0.0,
            cpu_seconds=0.0,
            device="cpu",
            train_loss=mse,
            extra={
                "closed_form": True,
                "ridge": shares.tolist(),
                "prior": [PRIORS[i] for i in which.tolist()],
                "down_weighted": 0 if weights is None else int((weights < 1).sum()),
            },
        )

    def _persistence(self, like: torch.Tensor) -> torch.Tensor:
        """Output weights ``[lags, outputs]`` (shaped as ``like``) that forecast every lead of each
        target as its last value: 1 from its lag 1, the same in the scaler's units, 0 elsewhere."""
        w = torch.zeros_like(like)
        n_t, lookback = self.n_targets, self.lookback
        for t in range(n_t):
            w[t * lookback, t::n_t] = 1.0  # output column h·n_targets + t is lead h + 1 of target t
        return w

    def coefficients(self) -> np.ndarray:
        """Own-lag AR weights ``[n_targets, lookback]`` for the first horizon step; column 0 is lag 1.

        Weights act on standardised data; since each target's input and output share one
        scaler they equal the AR coefficients in original units.
        """
        if self.module is None:
            raise RuntimeError("arnet model is not fitted: call fit() or load a checkpoint first")
        if self.hparams["hidden"]:
            raise ValueError("coefficients() needs a linear AR-Net (hidden=[]); this one has hidden layers")
        w = self.module.out.weight.detach().cpu().numpy()  # [horizon * n_targets, channels * lookback]
        rows = w.reshape(self.horizon, self.n_targets, -1)[0]
        L = self.lookback
        return np.stack([rows[t, t * L : (t + 1) * L] for t in range(self.n_targets)]).astype(np.float32)

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
    predicting the mean on standardised data). Optimisation: Adam with the LR decayed
    by cosine annealing over ``epochs`` so the weights settle to the optimum, not near it.
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
    }

    def _validate_hparams(self) -> None:
        super()._validate_hparams()
        s = self.hparams["sparsity"]
        if s is not None and not 0 < float(s) <= 1:
            raise ValueError(f"arnet: sparsity must be in (0, 1], got {s!r}")
        self.hparams["hidden"] = [int(h) for h in self.hparams["hidden"]]

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

    RIDGE = 1e-3  # closed-form shrinkage per window: a tiny pull towards the prior (zero or the parent)

    @property
    def supports_closed_form(self) -> bool:  # type: ignore[override]
        """A linear AR-Net without the sparsity regulariser is least squares: it has a closed form."""
        return not self.hparams["hidden"] and self.lam == 0.0

    def _fit_closed_form(self, X: np.ndarray, Y: np.ndarray, parent: BaseForecaster | None) -> FitReport:
        """Ridge least squares of the targets on the lags (plus a bias) in one pass: (ZᵀZ + αI)⁻¹(ZᵀY + αW₀).

        W₀ is the parent's weights (a warm, recursive-least-squares-like update) or zero; α is
        ``RIDGE`` times the number of windows, so the prior is a fixed share of the evidence.
        """
        torch.manual_seed(self.seed)
        net = self.build_module()
        if isinstance(parent, ARNet) and parent.module is not None:
            net.load_state_dict({k: v.detach().cpu() for k, v in parent.module.state_dict().items()})
        with torch.no_grad():
            z = net.lags(torch.from_numpy(X)).double()
            z = torch.cat([z, torch.ones(z.shape[0], 1, dtype=z.dtype)], dim=1)
            y = torch.from_numpy(Y).double().reshape(Y.shape[0], -1)
            prior = torch.cat([net.out.weight, net.out.bias[:, None]], dim=1).double().T
            if parent is None:
                prior = torch.zeros_like(prior)
            alpha = self.RIDGE * z.shape[0]
            w = torch.linalg.solve(
                z.T @ z + alpha * torch.eye(z.shape[1], dtype=z.dtype), z.T @ y + alpha * prior
            )
            net.out.weight.copy_(w[:-1].T.float())
            net.out.bias.copy_(w[-1].float())
            mse = float(((z @ w - y) ** 2).mean())
        self.module = net.to(self.device).eval()
        return FitReport(
            epochs=1,
            samples_seen=int(X.shape[0]),
            wall_seconds=0.0,
            cpu_seconds=0.0,
            device="cpu",
            train_loss=mse,
            extra={"closed_form": True},
        )

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

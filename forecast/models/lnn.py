"""Liquid neural networks (ncps CfC or LTC) with a multi-horizon head and stateful streaming."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from ncps.torch import LTC, CfC
from ncps.wirings import AutoNCP
from torch import nn

from adaptcast.forecast.base import register
from adaptcast.forecast.training import TorchForecaster

CELLS = ("cfc", "ltc")
WIRINGS = ("full", "ncp")


class LiquidModule(nn.Module):
    """A liquid RNN; a Linear head on its last output predicts the change from the window's last value."""

    def __init__(
        self,
        n_features: int,
        horizon: int,
        n_targets: int,
        units: int,
        cell: str,
        wiring: str,
        motor: int,
        backbone_units: int = 128,
    ):
        super().__init__()
        self.horizon, self.n_targets = horizon, n_targets
        net: Any = AutoNCP(units, motor) if wiring == "ncp" else units
        out_dim = motor if wiring == "ncp" else units
        if cell == "cfc" and wiring == "full":  # only a fully connected CfC has a backbone MLP
            self.rnn = CfC(
                n_features, net, return_sequences=False, batch_first=True, backbone_units=backbone_units
            )
        else:
            rnn_cls = CfC if cell == "cfc" else LTC
            self.rnn = rnn_cls(n_features, net, return_sequences=False, batch_first=True)
        self.head = nn.Linear(out_dim, horizon * n_targets)

    def step(
        self, x: torch.Tensor, hx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance over ``x[B, k, F]`` from state ``hx``: (forecast [B,H,T], last output, new state)."""
        out, hx = self.rnn(x, hx)
        yhat = x[:, -1:, : self.n_targets] + self.head(out).view(x.shape[0], self.horizon, self.n_targets)
        return yhat, out, hx

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.step(x)[0]

    def forward_embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        yhat, out, _ = self.step(x)
        return yhat, out


@register
class LiquidForecaster(TorchForecaster):
    """Liquid network forecaster: ``cell`` "cfc" (default, fast) or "ltc"; ``wiring`` "full" or "ncp".

    ``"ncp"`` wires the cell with ncps' AutoNCP. ``backbone_units`` is the width of a fully
    connected CfC's backbone MLP, applied at every time step (ncps' default is 128).

    ``embed`` is the RNN's last output (the motor neurons under NCP wiring). :meth:`stream`
    carries the hidden state between calls, so a live service feeds one new step at a time.
    """

    kind = "lnn"
    defaults: ClassVar[dict[str, Any]] = {
        "units": 32,
        "cell": "cfc",
        "wiring": "full",
        "motor": 8,
        "backbone_units": 128,
        "epochs": 15,  # early stopping ended the embedded default's fits after 8-14 epochs
        "epoch_samples": 1024,
    }

    def _validate_hparams(self) -> None:
        super()._validate_hparams()
        hp = self.hparams
        if hp["cell"] not in CELLS:
            raise ValueError(f"lnn: cell must be one of {CELLS}, got {hp['cell']!r}")
        if hp["wiring"] not in WIRINGS:
            raise ValueError(f"lnn: wiring must be one of {WIRINGS}, got {hp['wiring']!r}")
        if hp["wiring"] == "ncp" and not 1 <= int(hp["motor"]) < int(hp["units"]) - 2:
            raise ValueError(
                f"lnn: NCP wiring needs 1 <= motor < units - 2, got motor={hp['motor']}, units={hp['units']}"
            )

    def build_module(self) -> LiquidModule:
        hp = self.hparams
        return LiquidModule(
            self.n_features,
            self.horizon,
            self.n_targets,
            int(hp["units"]),
            hp["cell"],
            hp["wiring"],
            int(hp["motor"]),
            int(hp["backbone_units"]),
        )

    def stream(
        self, x_steps: np.ndarray, state: torch.Tensor | None = None
    ) -> tuple[np.ndarray, torch.Tensor]:
        """Feed raw steps ``[B, k, F]`` (or ``[B, F]``) from ``state``; return (forecast [B,H,T], new state).

        Starting from ``state=None`` and feeding a window's steps in any number of calls gives
        the same forecast as ``predict`` on that window.
        """
        if self.module is None or self.scaler is None:
            raise RuntimeError("lnn model is not fitted: call fit() or load a checkpoint first")
        arr = np.asarray(x_steps, dtype=np.float32)
        arr = arr[:, None, :] if arr.ndim == 2 else arr
        if arr.ndim != 3 or arr.shape[2] != self.n_features or arr.shape[1] == 0:
            raise ValueError(
                f"x_steps must have shape [batch, steps, n_features={self.n_features}] "
                f"or [batch, n_features], got {list(np.shape(x_steps))}"
            )
        if not np.isfinite(arr).all():
            raise ValueError("x_steps contains NaN/inf values; impute them before streaming")
        with torch.inference_mode():
            x = torch.from_numpy(self.scaler.transform(arr)).to(self.device)
            yhat, _, state = self.module.step(x, None if state is None else state.to(self.device))
        return self.scaler.head(self.n_targets).inverse(yhat.float().cpu().numpy()), state

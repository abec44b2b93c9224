"""LSTM encoder with a direct multi-horizon head."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from adaptcast.forecast.base import register
from adaptcast.forecast.training import TorchForecaster


class LSTMModule(nn.Module):
    """Stacked LSTM over the window; the last hidden state feeds one Linear to all H×T outputs."""

    def __init__(
        self, n_features: int, horizon: int, n_targets: int, hidden: int, layers: int, dropout: float
    ):
        super().__init__()
        self.horizon, self.n_targets = horizon, n_targets
        self.lstm = nn.LSTM(
            n_features, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.head = nn.Linear(hidden, horizon * n_targets)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return h[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_embed(x)[0]

    def forward_embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Residual on the last observed target values: the head learns the change, not the level.
        last = x[:, -1:, : self.n_targets]
        h = self.embed(x)
        return last + self.head(h).view(x.shape[0], self.horizon, self.n_targets), h


@register
class LSTMForecaster(TorchForecaster):
    """LSTM encoder + multi-horizon linear head; ``embed`` is the top layer's last hidden state."""

    kind = "lstm"
    # Sized for short series on a CPU: 20 epochs of at most 768 windows at lr 3e-3 trained the embedded
    # default's largest fit in 3.4 s of CPU against 5.9 s, validation MAE 1.285 against 1.267.
    defaults: ClassVar[dict[str, Any]] = {
        "hidden": 64,
        "layers": 1,
        "dropout": 0.0,
        "epochs": 20,
        "lr": 3e-3,
        "epoch_samples": 768,
    }

    def build_module(self) -> LSTMModule:
        hp = self.hparams
        return LSTMModule(
            self.n_features,
            self.horizon,
            self.n_targets,
            int(hp["hidden"]),
            int(hp["layers"]),
            float(hp["dropout"]),
        )

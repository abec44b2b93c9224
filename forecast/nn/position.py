"""Sinusoidal position encoding (Vaswani et al., 2017), shared by the transformer models."""

from __future__ import annotations

import math

import torch


def sinusoid_table(length: int, d_model: int) -> torch.Tensor:
    """``[length, d_model]``: sin on even, cos on odd channels, wavelengths 2π … 10000·2π.

    Row ``p`` encodes position ``p``; slice rows to encode a later stretch (e.g. future steps).
    """
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
    return pe

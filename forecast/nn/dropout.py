"""Dropout with a cheaper mask on the CPU: the same Bernoulli keep-mask, drawn as ``uniform >= p``.

``nn.Dropout`` draws its mask with ``bernoulli_``, which on a CPU costs about five times a
uniform draw (a ``[32, 96, 2048]`` tensor: 134 ms against 28 ms on one core here), and
dropout was a tenth of an Informer training step. Comparing a uniform draw with ``p`` keeps
each element with probability ``1 - p`` exactly as before, and survivors are scaled by
``1 / (1 - p)``; only the random stream differs.
"""

from __future__ import annotations

import torch
from torch import nn


class UniformDropout(nn.Module):
    """``nn.Dropout(p)`` with the keep-mask drawn as ``rand >= p``; identity in eval mode or at ``p = 0``.

    No parameters or buffers, so it replaces ``nn.Dropout`` without changing a ``state_dict``.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        # drawn in fp32 whatever x's dtype (a bf16 uniform is too coarse to hit p), then one buffer:
        # the draw becomes the 0/1 keep-mask and the scale in place
        keep = torch.rand(x.shape, device=x.device).ge_(self.p)
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"

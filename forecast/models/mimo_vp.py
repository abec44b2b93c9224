"""MIMO-VP (Ning et al., AAAI 2023): a multi-in-multi-out transformer that emits every future frame at once.

Written from the paper's description (arXiv 2212.04655); see ``docs/models.md``.

**Frames.** A window ``x [B, T, F]`` is a sequence of ``T`` frames. With ``grid=(C, H, W)``
(``C·H·W == n_features``) each time step's feature vector is a grid of ``C`` channels on an
``H × W`` lattice, flattened channel-major then row-major: feature ``f = c·H·W + i·W + j`` is
channel ``c`` at cell ``(i, j)`` (so a stream's records for a sensor grid must list their
values in that order in the schema). Without ``grid`` a frame is the vector of all
``n_features`` channels at one time step: ``grid = (n_features, 1, 1)`` — the ETT-style
multivariate case. (``grid=(1, 1, N)`` instead treats ``N`` series as ``N`` positions of one
channel, which lets attention and the local blocks mix *across* series.)

**Network** (pre-norm transformer on spatio-temporal tokens):

* *tokens*: each frame is cut into ``patch × patch`` patches, each patch's ``C·patch²`` values
  projected to ``d_model``; plus a learned spatial embedding per patch position and a
  sinusoidal temporal encoding of the frame index (past frames ``0 … T-1``);
* *encoder*: ``e_layers`` blocks of [multi-head self-attention over all ``T·S`` tokens →
  local spatio-temporal block];
* *local spatio-temporal block*: ``Linear(d→d_ff)`` → depthwise ``Conv3d`` (kernel 3 over time,
  rows and columns; 1 along a dimension of size 1) → GELU → ``Linear(d_ff→d)``, so each token
  mixes with its neighbours in time and space;
* *multi-output decoder*: one learned query per future frame and patch position (learned frame
  query + spatial embedding + temporal encoding of frame index ``T + h``), ``d_layers`` blocks of
  [self-attention among the queries → cross-attention to the encoder memory → local
  spatio-temporal block over the future frames]; a shared head maps every decoder block's output
  to frames, so all ``horizon`` frames come out of one pass — no recursive roll-out;
* *deep supervision* (optional, default on): every decoder block's prediction enters the
  training loss, ``mse_weight·MSE + l1_weight·L1`` averaged over blocks (the paper: 10·MSE + L1).

The output is the predicted frames flattened back to ``[B, horizon, C·H·W]``, of which the
leading ``n_targets`` features are returned (targets-first convention).

Defaults are sized for a few short series on a CPU (``d_model=32``, 4 heads, ``d_ff=64``, 1 + 1
blocks, patch 1, 8 epochs of at most 384 windows); the paper's video models are far wider and
deeper, which the hyper-parameters allow.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from adaptcast.forecast.base import register
from adaptcast.forecast.nn.attention import make_attention
from adaptcast.forecast.nn.position import sinusoid_table
from adaptcast.forecast.nn.sizes import transformer_sizes
from adaptcast.forecast.training import TorchForecaster


class LocalSTBlock(nn.Module):
    """Local spatio-temporal feed-forward: ``Linear → depthwise Conv3d(T, H, W) → GELU → Linear``."""

    def __init__(self, d_model: int, d_ff: int, grid_hw: tuple[int, int], dropout: float):
        super().__init__()
        self.hw = grid_hw
        kernel = (3, 3 if grid_hw[0] > 1 else 1, 3 if grid_hw[1] > 1 else 1)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.conv = nn.Conv3d(d_ff, d_ff, kernel, padding=tuple(k // 2 for k in kernel), groups=d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:  # x [B, T*S, d]
        B, N, _ = x.shape
        h = self.fc1(x)
        h = h.view(B, frames, self.hw[0], self.hw[1], -1).permute(0, 4, 1, 2, 3)
        h = F.gelu(self.conv(h))
        h = h.permute(0, 2, 3, 4, 1).reshape(B, N, -1)
        return self.dropout(self.fc2(h))


class EncoderBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, grid_hw: tuple[int, int], dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = make_attention("full", d_model, n_heads, dropout=dropout)
        self.local = LocalSTBlock(d_model, d_ff, grid_hw, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.dropout(self.attn(h, h, h))
        return x + self.local(self.norm2(x), frames)


class DecoderBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, grid_hw: tuple[int, int], dropout: float):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (
            nn.LayerNorm(d_model),
            nn.LayerNorm(d_model),
            nn.LayerNorm(d_model),
        )
        self.self_attn = make_attention("full", d_model, n_heads, dropout=dropout)
        self.cross_attn = make_attention("full", d_model, n_heads, dropout=dropout)
        self.local = LocalSTBlock(d_model, d_ff, grid_hw, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, memory: torch.Tensor, frames: int) -> torch.Tensor:
        h = self.norm1(q)
        q = q + self.dropout(self.self_attn(h, h, h))
        q = q + self.dropout(self.cross_attn(self.norm2(q), memory, memory))
        return q + self.local(self.norm3(q), frames)


class MIMOVPNet(nn.Module):
    """The MIMO-VP network: ``forward(x [B, T, C·H·W]) -> [B, horizon, n_targets]``.

    ``forward_all`` gives every decoder block's output (deep supervision).
    """

    def __init__(
        self,
        lookback: int,
        horizon: int,
        grid: tuple[int, int, int],
        n_targets: int,
        *,
        d_model: int = 64,
        n_heads: int = 4,
        d_ff: int = 128,
        e_layers: int = 2,
        d_layers: int = 2,
        patch: int = 1,
        dropout: float = 0.1,
    ):
        super().__init__()
        C, H, W = grid
        if H % patch or W % patch:
            raise ValueError(f"grid {H}x{W} is not divisible by patch={patch}")
        self.lookback, self.horizon, self.grid, self.patch, self.n_targets = (
            lookback,
            horizon,
            (C, H, W),
            patch,
            n_targets,
        )
        self.hp, self.wp = H // patch, W // patch
        S = self.hp * self.wp
        patch_dim = C * patch * patch
        self.tokenize = nn.Linear(patch_dim, d_model)
        self.spatial = nn.Parameter(torch.randn(S, d_model) * 0.02)
        time = sinusoid_table(lookback + horizon, d_model)  # frame indices 0 … T-1, then T … T+horizon-1
        self.register_buffer("time_past", time[:lookback], persistent=False)
        self.register_buffer("time_future", time[lookback:], persistent=False)
        self.queries = nn.Parameter(torch.randn(horizon, d_model) * 0.02)
        hw = (self.hp, self.wp)
        self.encoder = nn.ModuleList(
            [EncoderBlock(d_model, n_heads, d_ff, hw, dropout) for _ in range(e_layers)]
        )
        self.decoder = nn.ModuleList(
            [DecoderBlock(d_model, n_heads, d_ff, hw, dropout) for _ in range(d_layers)]
        )
        self.enc_norm = nn.LayerNorm(d_model)
        self.head_norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, patch_dim)
        self.dropout = nn.Dropout(dropout)

    # [B, T, C*H*W] <-> tokens [B, T*S, C*p*p]
    def _to_patches(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        C = self.grid[0]
        p = self.patch
        x = x.reshape(B, T, C, self.hp, p, self.wp, p).permute(0, 1, 3, 5, 2, 4, 6)
        return x.reshape(B, T * self.hp * self.wp, C * p * p)

    def _from_patches(self, t: torch.Tensor, frames: int) -> torch.Tensor:
        B = t.shape[0]
        C, H, W = self.grid
        p = self.patch
        t = t.reshape(B, frames, self.hp, self.wp, C, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return t.reshape(B, frames, C * H * W)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        S = self.hp * self.wp
        tok = self.tokenize(self._to_patches(x)).view(B, T, S, -1)
        tok = tok + self.spatial + self.time_past[:T, None, :]
        h = self.dropout(tok.reshape(B, T * S, -1))
        for block in self.encoder:
            h = block(h, T)
        return self.enc_norm(h)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Predictions of every decoder block (deep supervision), each ``[B, horizon, n_targets]``."""
        return self.decode_all(self.encode(x))

    def decode_all(self, memory: torch.Tensor) -> list[torch.Tensor]:
        """Every decoder block's predictions from the encoder's output ``memory``."""
        B = memory.shape[0]
        S = self.hp * self.wp
        q = (self.queries + self.time_future)[:, None, :] + self.spatial  # [horizon, S, d]
        q = q.reshape(1, self.horizon * S, -1).expand(B, -1, -1)
        outs = []
        for block in self.decoder:
            q = block(q, memory, self.horizon)
            frames = self._from_patches(self.head(self.head_norm(q)), self.horizon)
            outs.append(frames[..., : self.n_targets])
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[-1]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x).mean(dim=1)

    def forward_embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        memory = self.encode(x)
        return self.decode_all(memory)[-1], memory.mean(dim=1)


@register
class MIMOVPForecaster(TorchForecaster):
    """MIMO-VP forecaster, e.g. on 16 × 16 frames of one channel::

        create_forecaster("mimo_vp", lookback=10, horizon=10, n_features=256, n_targets=256, grid=(1, 16, 16))

    Hyper-parameters (besides the common torch ones): ``grid`` ((C, H, W) or None → frame =
    vector of all features), ``d_model``, ``n_heads``, ``d_ff``, ``e_layers``, ``d_layers``,
    ``patch``, ``dropout``, ``deep_supervision`` (bool), ``mse_weight``, ``l1_weight``.
    """

    kind = "mimo_vp"
    defaults: ClassVar[dict[str, Any]] = {
        "grid": None,
        "d_model": 32,
        "n_heads": 4,
        "d_ff": 64,
        "e_layers": 1,
        "d_layers": 1,
        "epochs": 8,
        "epoch_samples": 384,
        "patch": 1,
        "dropout": 0.1,
        "deep_supervision": True,
        "mse_weight": 10.0,
        "l1_weight": 1.0,
    }

    def _validate_hparams(self) -> None:
        super()._validate_hparams()
        hp = self.hparams
        if hp["grid"] is not None:
            hp["grid"] = [int(v) for v in hp["grid"]]  # JSON-friendly in the manifest
        C, H, W = self.grid
        if self.n_features != C * H * W:
            raise ValueError(
                f"mimo_vp: grid (C, H, W) = {(C, H, W)} has {C * H * W} cells per frame "
                f"but n_features={self.n_features}"
            )
        if min(C, H, W) < 1:
            raise ValueError(f"mimo_vp: grid sizes must be positive, got {(C, H, W)}")
        p = int(hp["patch"])
        if p < 1 or H % p or W % p:
            raise ValueError(f"mimo_vp: patch={p} must divide the grid's H={H} and W={W}")
        self.sizes = transformer_sizes(self.kind, hp)

    @property
    def grid(self) -> tuple[int, int, int]:
        g = self.hparams["grid"]
        if g is None:
            return (self.n_features, 1, 1)
        if len(g) != 3:
            raise ValueError(f"mimo_vp: grid must be (C, H, W), got {g!r}")
        return (int(g[0]), int(g[1]), int(g[2]))

    def build_module(self) -> nn.Module:
        hp = self.hparams
        return MIMOVPNet(
            self.lookback,
            self.horizon,
            self.grid,
            self.n_targets,
            patch=int(hp["patch"]),
            **self.sizes,
        )

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hp = self.hparams
        outs = module.forward_all(x) if hp["deep_supervision"] else [module(x)]
        y = y.float()
        total = 0.0
        for out in outs:
            out = out.float()
            total = (
                total
                + float(hp["mse_weight"]) * F.mse_loss(out, y)
                + float(hp["l1_weight"]) * F.l1_loss(out, y)
            )
        return total / len(outs)

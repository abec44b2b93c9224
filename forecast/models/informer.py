"""Informer (Zhou et al., AAAI 2021): ProbSparse self-attention, distilling, generative decoder.

Written from the paper's description (arXiv 2012.07436); see ``docs/models.md`` for the design
notes. The network, :class:`InformerNet`, maps a standardised window ``x [B, lookback, F]`` to
the whole horizon ``[B, horizon, n_targets]`` in one forward pass:

1. **Embedding** (encoder and decoder alike): a value *token* embedding (``Conv1d``, kernel 3,
   circular padding, over the value channels), a sinusoidal *position* encoding and, when the
   window carries calendar marks, a *time-feature* embedding ``Linear(k → d_model)``; summed,
   then dropout.
2. **Encoder**: ``e_layers`` layers of [ProbSparse self-attention → add & LayerNorm →
   position-wise FFN (d_ff, GELU) → add & LayerNorm]; between consecutive layers a
   *distilling* step ``Conv1d(k=3, circular) → BatchNorm → ELU → MaxPool(k=3, stride=2)`` halves
   the sequence (``L → ceil(L/2)``); a final LayerNorm.
3. **Generative decoder**: its input is the last ``label_len`` steps of the window (the *start
   token*) followed by ``horizon`` zero placeholders, with the calendar marks of all those steps
   (the future ones derived by stepping the calendar, :mod:`forecast.nn.calendar`).
   ``d_layers`` layers of [causal ProbSparse self-attention → add & norm → full
   cross-attention to the encoder output → add & norm → FFN → add & norm], a LayerNorm and a
   linear projection to ``n_targets``; the last ``horizon`` positions are the forecast. No loop
   over horizon steps.

**Time features within the Forecaster protocol.** ``time_features=k`` says that the trailing
``k`` channels of ``X`` are calendar marks (:func:`forecast.nn.calendar.calendar_marks`, fields
set by ``freq``: ``"h"`` → hour, weekday, day, day-of-year, each in ``[-0.5, 0.5]``). Targets
stay the leading ``n_targets`` channels; the value channels are ``X[..., :n_features - k]``.
Those mark channels are standardised by :class:`BaseForecaster` like every channel; the network
keeps the scaler's mean/std for them as buffers (``mark_loc``, ``mark_scale``, saved with the
weights), undoes the scaling, and steps the last mark forward ``horizon`` steps for the decoder's
placeholders. ``time_features=0`` (the default) drops the time-feature embedding.

The defaults are sized for a few short series (d_model 64, 4 heads, d_ff 128, lr 1e-3, 1,024
windows per epoch, no dropout: at most six short epochs with early stopping, and the random masks
were a seventh of a step at this size), so ``adaptcast run --model informer`` trains in seconds on
a CPU. The paper's sizes are :data:`PAPER_SIZES` (d_model 512, 8 heads, d_ff 2048, lr 1e-4, every
window each epoch, dropout 0.05), passed by the ETTh1 benchmark; the rest of the paper's setup is
the default: 2 encoder / 1 decoder layers, factor 5, Adam with the lr halved every epoch, batch
32, 6 epochs, patience 3,
``label_len = lookback // 2`` (96 → 48). Ablations: ``attention="full"`` (canonical attention
everywhere) and ``distil=False``.

**The authors' released code** departs from the paper in a few places; ``reference_code=True``
follows it, to reproduce their published numbers (off by default: the default is the paper's
maths): the decoder self-attention's heads are merged with ``mix`` (also available alone,
``mix=True``; see :class:`forecast.nn.attention.AttentionLayer`), ProbSparse measures sparsity as
``max − sum(sampled)/L_K`` on keys sampled from the whole sequence (also in the causal decoder),
gives lazy decoder queries the running sum of the values instead of their running mean and drops
no attention weights, and the learning rate is halved from the third epoch on instead
of the second.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from adaptcast.forecast.base import register
from adaptcast.forecast.nn.attention import make_attention
from adaptcast.forecast.nn.calendar import STAMP_SIZES, mark_names, stamp_fields, step_marks
from adaptcast.forecast.nn.dropout import UniformDropout
from adaptcast.forecast.nn.position import sinusoid_table
from adaptcast.forecast.nn.sizes import transformer_sizes
from adaptcast.forecast.training import TorchForecaster


class StampEmbedding(nn.Module):
    """Per-field time-stamp embeddings, summed: one table per calendar field (month, day, weekday, …).

    The paper's "global time stamp" embedding: every field of the stamp indexes its own table,
    ``learned`` (``nn.Embedding``, as the paper describes) or ``fixed`` (sinusoidal rows, not
    trained). The fields are decoded from the mark channels (:func:`forecast.nn.calendar.stamp_fields`).
    """

    def __init__(self, freq: str, d_model: int, learned: bool):
        super().__init__()
        self.freq = freq
        self.fields = tuple(stamp_fields(torch.zeros(1, len(mark_names(freq))), freq))
        if learned:
            self.tables = nn.ModuleDict({f: nn.Embedding(STAMP_SIZES[f], d_model) for f in self.fields})
        else:
            self.tables = None
            for f in self.fields:
                self.register_buffer(f"fixed_{f}", sinusoid_table(STAMP_SIZES[f], d_model), persistent=False)

    def forward(self, marks: torch.Tensor) -> torch.Tensor:
        idx = stamp_fields(marks.float(), self.freq)
        if self.tables is not None:
            return sum(self.tables[f](idx[f]) for f in self.fields)
        return sum(getattr(self, f"fixed_{f}")[idx[f]] for f in self.fields)


TIME_EMBEDDINGS = ("linear", "learned", "fixed", "none")


class DataEmbedding(nn.Module):
    """Token (Conv1d k=3, circular) + sinusoidal position + optional time-feature embedding, then dropout.

    ``time_embedding``: ``"linear"`` = ``Linear(k → d_model)`` of the scaled marks (the authors'
    released ``timeF``), ``"learned"`` / ``"fixed"`` = :class:`StampEmbedding`, ``"none"`` = marks ignored.
    """

    def __init__(
        self,
        c_in: int,
        d_model: int,
        n_marks: int,
        max_len: int,
        dropout: float,
        time_embedding: str = "linear",
        freq: str = "h",
    ):
        super().__init__()
        self.token = nn.Conv1d(c_in, d_model, kernel_size=3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.token.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.register_buffer("position", sinusoid_table(max_len, d_model), persistent=False)
        self.temporal: nn.Module | None = None
        if n_marks > 0 and time_embedding == "linear":
            self.temporal = nn.Linear(n_marks, d_model, bias=False)
        elif n_marks > 0 and time_embedding in ("learned", "fixed"):
            self.temporal = StampEmbedding(freq, d_model, learned=time_embedding == "learned")
        self.dropout = UniformDropout(dropout)

    def forward(self, values: torch.Tensor, marks: torch.Tensor | None) -> torch.Tensor:
        # one copy to [B, L, d] order here, or every Linear downstream copies its transposed input again
        h = self.token(values.transpose(1, 2)).transpose(1, 2).contiguous() + self.position[: values.shape[1]]
        if self.temporal is not None and marks is not None:
            h = h + self.temporal(marks)
        return self.dropout(h)


class FeedForward(nn.Module):
    """Position-wise ``Linear(d→d_ff) → act → dropout → Linear(d_ff→d) → dropout`` (the paper's 1×1 convs)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float, activation: str):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.act = F.gelu if activation == "gelu" else F.relu
        self.dropout = UniformDropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(self.act(self.fc1(x)))))


class EncoderLayer(nn.Module):
    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        attention: str,
        factor: int,
        dropout: float,
        activation: str,
        reference_code: bool = False,
    ):
        super().__init__()
        self.attn = make_attention(
            attention, d_model, n_heads, factor=factor, dropout=dropout, reference_code=reference_code
        )
        self.ff = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = UniformDropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attn(x, x, x)))
        return self.norm2(x + self.ff(x))


class DistilLayer(nn.Module):
    """Self-attention distilling, ``L → ceil(L/2)``.

    ``Conv1d(k=3, circular) → BatchNorm → ELU → MaxPool(3, stride 2)``.
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, kernel_size=3, padding=1, padding_mode="circular")
        self.norm = nn.BatchNorm1d(d_model)
        self.pool = nn.MaxPool1d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, d] -> [B, ceil(L/2), d]
        h = F.elu(self.norm(self.conv(x.transpose(1, 2))))
        return self.pool(h).transpose(1, 2).contiguous()  # as in DataEmbedding: copy once, here


class Encoder(nn.Module):
    def __init__(self, layers: list[nn.Module], distils: list[nn.Module], d_model: int):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.distils = nn.ModuleList(distils)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.distils):
                x = self.distils[i](x)
        return self.norm(x)


class DecoderLayer(nn.Module):
    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        attention: str,
        factor: int,
        dropout: float,
        activation: str,
        reference_code: bool = False,
        mix: bool = False,
    ):
        super().__init__()
        self.self_attn = make_attention(
            attention,
            d_model,
            n_heads,
            causal=True,
            factor=factor,
            dropout=dropout,
            mix=mix,
            reference_code=reference_code,
        )
        self.cross_attn = make_attention("full", d_model, n_heads, dropout=dropout)
        self.ff = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1, self.norm2, self.norm3 = (
            nn.LayerNorm(d_model),
            nn.LayerNorm(d_model),
            nn.LayerNorm(d_model),
        )
        self.dropout = UniformDropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, rows: int | None = None) -> torch.Tensor:
        """``rows``: return only the last ``rows`` positions, computing nothing else past self-attention.

        Self-attention still sees (and ranks) every position; all that follows it is row-wise.
        """
        attn = self.self_attn(x, x, x, rows=rows)
        x = self.norm1((x if rows is None else x[:, -rows:]) + self.dropout(attn))
        x = self.norm2(x + self.dropout(self.cross_attn(x, memory, memory)))
        return self.norm3(x + self.ff(x))


class Decoder(nn.Module):
    def __init__(self, layers: list[nn.Module], d_model: int, c_out: int):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(d_model)
        self.projection = nn.Linear(d_model, c_out)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, rows: int | None = None) -> torch.Tensor:
        """``[B, L, c_out]``, or only the last ``rows`` positions (the last layer computes no others)."""
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, rows if i == last else None)
        return self.projection(self.norm(x))


class InformerNet(nn.Module):
    """The Informer network on standardised windows; see the module docstring.

    ``forward(x [B, lookback, n_values + n_marks]) -> [B, horizon, n_targets]``;
    ``embed(x) -> [B, d_model]`` (time-mean of the encoder output).
    """

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_values: int,
        n_targets: int,
        *,
        label_len: int,
        n_marks: int = 0,
        freq: str = "h",
        d_model: int = 512,
        n_heads: int = 8,
        d_ff: int = 2048,
        e_layers: int = 2,
        d_layers: int = 1,
        factor: int = 5,
        dropout: float = 0.05,
        attention: str = "prob",
        distil: bool = True,
        activation: str = "gelu",
        mix: bool = False,
        reference_code: bool = False,
        time_embedding: str = "linear",
    ):
        super().__init__()
        if not 1 <= label_len <= lookback:
            raise ValueError(f"label_len must be in [1, lookback={lookback}], got {label_len}")
        self.lookback, self.horizon, self.label_len = lookback, horizon, label_len
        self.n_values, self.n_targets, self.n_marks, self.freq = n_values, n_targets, n_marks, freq
        if n_marks:
            expected = len(mark_names(freq))
            if n_marks != expected:
                raise ValueError(
                    f"freq {freq!r} has {expected} calendar marks {mark_names(freq)}, "
                    f"got time_features={n_marks}"
                )
        self.register_buffer("mark_loc", torch.zeros(n_marks))
        self.register_buffer("mark_scale", torch.ones(n_marks))
        if time_embedding not in TIME_EMBEDDINGS:
            raise ValueError(f"time_embedding must be one of {TIME_EMBEDDINGS}, got {time_embedding!r}")
        self.enc_embedding = DataEmbedding(
            n_values, d_model, n_marks, lookback, dropout, time_embedding, freq
        )
        self.dec_embedding = DataEmbedding(
            n_values, d_model, n_marks, label_len + horizon, dropout, time_embedding, freq
        )
        layer_args = (d_model, n_heads, d_ff, attention, factor, dropout, activation, reference_code)
        self.encoder = Encoder(
            [EncoderLayer(*layer_args) for _ in range(e_layers)],
            [DistilLayer(d_model) for _ in range(e_layers - 1)] if distil else [],
            d_model,
        )
        self.decoder = Decoder(
            [DecoderLayer(*layer_args, mix=mix or reference_code) for _ in range(d_layers)],
            d_model,
            n_targets,
        )

    def set_mark_scaling(self, loc: np.ndarray | torch.Tensor, scale: np.ndarray | torch.Tensor) -> None:
        """Record how the forecaster standardised the mark channels (``x_scaled = (x - loc) / scale``)."""
        self.mark_loc.copy_(torch.as_tensor(np.asarray(loc, dtype=np.float32)))
        self.mark_scale.copy_(torch.as_tensor(np.asarray(scale, dtype=np.float32)))

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        values = x[..., : self.n_values]
        if not self.n_marks:
            return values, None
        marks = x[..., self.n_values : self.n_values + self.n_marks] * self.mark_scale + self.mark_loc
        return values, marks

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        values, marks = self._split(x)
        return self.encoder(self.enc_embedding(values, marks))

    def decoder_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Start token (last ``label_len`` steps) + ``horizon`` zero placeholders, with their marks."""
        values, marks = self._split(x)
        B = x.shape[0]
        dec_values = torch.cat(
            [values[:, -self.label_len :], values.new_zeros(B, self.horizon, self.n_values)], dim=1
        )
        dec_marks = None
        if marks is not None:
            future = step_marks(marks[:, -1].float(), self.horizon, self.freq).to(marks.dtype)
            dec_marks = torch.cat([marks[:, -self.label_len :], future], dim=1)
        return dec_values, dec_marks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(x, self.encode(x))

    def decode(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Forecasts of windows ``x`` from their encoding ``memory``."""
        dec = self.dec_embedding(*self.decoder_inputs(x))
        # only the placeholders' rows are forecasts: the start token's rows stop after self-attention
        return self.decoder(dec, memory, rows=self.horizon)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x).mean(dim=1)

    def forward_embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        memory = self.encode(x)
        return self.decode(x, memory), memory.mean(dim=1)


PAPER_SIZES: dict[str, Any] = {
    "d_model": 512,
    "n_heads": 8,
    "d_ff": 2048,
    "lr": 1e-4,
    "epoch_samples": None,
    "dropout": 0.05,
}


@register
class InformerForecaster(TorchForecaster):
    """``create_forecaster("informer", lookback=96, horizon=24, n_features=7, n_targets=7, time_features=4)``.

    Hyper-parameters (besides the common torch ones): ``label_len`` (None → ``lookback // 2``),
    ``d_model``, ``n_heads``, ``d_ff``, ``e_layers``, ``d_layers``, ``factor``, ``dropout``,
    ``attention`` ("prob" | "full"), ``distil`` (bool), ``activation`` ("gelu" | "relu"),
    ``time_features`` (number of trailing calendar-mark channels in X, 0 = none), ``freq``
    (calendar frequency of those marks), ``time_embedding`` (how the marks are embedded:
    "linear" | "learned" | "fixed" | "none", :class:`DataEmbedding`), ``lr_decay``
    (learning-rate factor per epoch; 0.5 = halved every epoch as in the paper, 1 = constant),
    ``mix`` and ``reference_code`` (the authors' code paths, module docstring; both off).
    """

    kind = "informer"
    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 6,
        "batch_size": 32,
        "epoch_samples": 1024,
        "lr": 1e-3,
        "patience": 3,
        "lr_decay": 0.5,
        "label_len": None,
        "d_model": 64,
        "n_heads": 4,
        "d_ff": 128,
        "e_layers": 2,
        "d_layers": 1,
        "factor": 5,
        "dropout": 0.0,
        "attention": "prob",
        "distil": True,
        "activation": "gelu",
        "mix": False,
        "reference_code": False,
        "time_features": 0,
        "freq": "h",
        "time_embedding": "linear",
    }

    def _validate_hparams(self) -> None:
        super()._validate_hparams()
        hp = self.hparams
        k = int(hp["time_features"])
        if k < 0 or self.n_features - k < self.n_targets:
            raise ValueError(
                f"informer: time_features={k} must leave at least n_targets={self.n_targets} "
                f"value channels of n_features={self.n_features}"
            )
        if k:
            expected = len(mark_names(hp["freq"]))
            if k != expected:
                raise ValueError(
                    f"informer: freq {hp['freq']!r} has {expected} calendar marks "
                    f"{mark_names(hp['freq'])}, got time_features={k}"
                )
        if hp["attention"] not in ("prob", "full"):
            raise ValueError(f"informer: attention must be 'prob' or 'full', got {hp['attention']!r}")
        if hp["time_embedding"] not in TIME_EMBEDDINGS:
            raise ValueError(
                f"informer: time_embedding must be one of {TIME_EMBEDDINGS}, got {hp['time_embedding']!r}"
            )
        if hp["activation"] not in ("gelu", "relu"):
            raise ValueError(f"informer: activation must be 'gelu' or 'relu', got {hp['activation']!r}")
        self.sizes = transformer_sizes(self.kind, hp)
        if not 0 < float(hp["lr_decay"]) <= 1:
            raise ValueError(f"informer: lr_decay must be in (0, 1], got {hp['lr_decay']!r}")
        if not 1 <= self.label_len <= self.lookback:
            raise ValueError(
                f"informer: label_len must be in [1, lookback={self.lookback}], got {self.label_len}"
            )

    @property
    def label_len(self) -> int:
        ll = self.hparams["label_len"]
        return max(1, self.lookback // 2) if ll is None else int(ll)

    def build_module(self) -> nn.Module:
        hp = self.hparams
        k = int(hp["time_features"])
        net = InformerNet(
            self.lookback,
            self.horizon,
            self.n_features - k,
            self.n_targets,
            label_len=self.label_len,
            n_marks=k,
            freq=hp["freq"],
            factor=int(hp["factor"]),
            attention=hp["attention"],
            distil=bool(hp["distil"]),
            activation=hp["activation"],
            mix=bool(hp["mix"]),
            reference_code=bool(hp["reference_code"]),
            time_embedding=hp["time_embedding"],
            **self.sizes,
        )
        if k and self.scaler is not None:
            net.set_mark_scaling(self.scaler.mean[-k:], self.scaler.std[-k:])
        return net

    def configure_optimizer(self, params):
        # fused=True: one kernel per parameter for the whole Adam update
        # (same algorithm, ~5-10 % of a CPU step saved)
        opt = torch.optim.Adam(
            params, lr=float(self.hparams["lr"]), weight_decay=float(self.hparams["weight_decay"]), fused=True
        )
        decay = float(self.hparams["lr_decay"])
        # the authors' code halves from the third epoch on (its schedule is applied one epoch late)
        delay = 1 if self.hparams["reference_code"] else 0
        sched = (
            None
            if decay == 1.0
            else torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: decay ** max(0, epoch - delay))
        )
        return opt, sched

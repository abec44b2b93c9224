"""Multi-head attention with two inner kernels: full (softmax) attention and Informer's ProbSparse.

Shapes: an :class:`AttentionLayer` maps queries ``[B, L_Q, d_model]`` and keys/values
``[B, L_K, d_model]`` to ``[B, L_Q, d_model]``; the inner kernels work per head on
``q [B, H, L_Q, E]``, ``k [B, H, L_K, E]``, ``v [B, H, L_K, E_v]``.

ProbSparse self-attention (Zhou et al., AAAI 2021, Sect. "Efficient Self-attention Mechanism"):

* sparsity measurement of each query, ``M(q_i, K) = max_j s_ij - mean_j s_ij`` with
  ``s_ij = q_i·k_j / sqrt(E)``, estimated on ``n_sample = factor·ceil(ln L_K)`` keys drawn
  uniformly at random (with replacement, one draw shared by the batch and the heads);
* only the ``u = factor·ceil(ln L_Q)`` queries with the largest ``M`` attend to all keys;
* every other ("lazy") query outputs ``mean(V)``, under a causal mask the mean of the values it
  may see, ``cumsum(V)_i / (i + 1)`` (the paper's "cumsum() in mean()"; uniform attention over the
  admissible keys, as ``mean(V)`` is over all keys).

Implementation choices (same maths, documented because they differ from other code bases):

* **All keys when the sample would cover them.** If ``n_sample >= L_K`` the measurement uses
  every key exactly (no random draw); with ``u = L_Q`` too, ProbSparse *is* full attention.
* **Causal measurement.** Under a causal mask query ``i`` may only see keys ``j <= i``, so its
  sample is drawn from those keys (``floor(U·(i+1))``) and the exact measurement masks the
  rest. The Informer reference code measures on all keys, which lets placeholder positions
  later in the decoder influence which earlier queries are active.
* **Deterministic inference.** In ``eval()`` mode the key sample comes from a generator with a
  fixed seed, so ``predict`` is reproducible (a saved and re-loaded model gives identical
  forecasts); training draws from torch's global RNG as usual.
* **No gradient through the measurement.** Only the top-u *indices* leave step 1, so the
  scores it needs are computed under ``no_grad``; the active rows are then recomputed as
  ``Q_top Kᵀ`` (``u`` of ``L_Q`` rows), which carries the gradient. Backward therefore never
  touches an ``L_Q × L_K`` tensor (at ``L = 720``, batch 32: a CPU step 9.2 → 6.9 s in fp32).
* **Cheapest exact route to the sampled scores.** When ``L_K <= n_sample·E`` (e.g. ``L = 96``,
  ``E = 64``) one batched ``Q Kᵀ`` product is smaller and much faster than gathering a
  ``[B, H, L_Q, n_sample, E]`` tensor of sampled keys; the sampled scores are then picked from
  it with ``gather``. For long sequences the sampled keys are gathered instead. Both routes
  compute the same dot products.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

_EVAL_SEED = 20210202  # fixed key sample at inference (any constant would do)


class FullAttention(nn.Module):
    """Scaled dot-product attention ``softmax(Q Kᵀ / sqrt(E)) V``, optionally causal."""

    def __init__(self, causal: bool = False, dropout: float = 0.0):
        super().__init__()
        self.causal = causal
        self.dropout = dropout

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.causal and q.shape[2] != k.shape[2]:
            raise ValueError(f"causal attention needs L_Q == L_K, got {q.shape[2]} and {k.shape[2]}")
        return F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=self.causal
        )


def _ceil_log(n: int) -> int:
    return math.ceil(math.log(n)) if n > 1 else 1


class ProbSparseAttention(nn.Module):
    """Informer's ProbSparse attention: top-u queries by sampled sparsity; others get the (causal) mean of V.

    Parameters
    ----------
    factor:
        The sampling factor ``c``: ``u = c·ceil(ln L_Q)`` active queries and ``c·ceil(ln L_K)``
        sampled keys per query (both capped at the sequence lengths).
    causal:
        Mask keys after each query (decoder self-attention); lazy queries then output the mean of
        the values up to their position.
    dropout:
        Dropout on the attention weights of the active queries (training only).
    reference_measure:
        Measure sparsity as the authors' released code does rather than as the paper states:
        ``max − (sum of the sampled scores) / L_K`` instead of ``max − mean``, keys always sampled
        (with replacement) from the whole sequence, also under the causal mask; and under the
        mask lazy queries output the running *sum* ``cumsum(V)`` rather than the running mean.
        Only for reproducing their published numbers.
    """

    def __init__(
        self, factor: int = 5, causal: bool = False, dropout: float = 0.0, reference_measure: bool = False
    ):
        super().__init__()
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        self.factor = int(factor)
        self.causal = causal
        self.dropout = dropout
        self.reference_measure = reference_measure

    def sizes(self, L_Q: int, L_K: int) -> tuple[int, int]:
        """``(u, n_sample)``: active queries and sampled keys per query for these lengths."""
        return min(L_Q, self.factor * _ceil_log(L_Q)), min(L_K, self.factor * _ceil_log(L_K))

    def _sample_keys(self, L_Q: int, L_K: int, n: int, device: torch.device) -> torch.Tensor:
        """Key indices ``[L_Q, n]`` drawn uniformly (per query, admissible keys only when causal)."""
        gen = None
        if not self.training:
            gen = torch.Generator(device="cpu").manual_seed(_EVAL_SEED)
        u = torch.rand(L_Q, n, generator=gen)
        if self.causal and not self.reference_measure:
            bound = torch.arange(1, L_Q + 1, dtype=u.dtype).unsqueeze(1)
        else:
            bound = torch.full((L_Q, 1), float(L_K))
        return (u * bound).long().clamp_(max=L_K - 1).to(device)

    def measure(
        self, q: torch.Tensor, k: torch.Tensor, n_sample: int, causal_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """1) Sparsity ``M(q_i, K)`` ``[B, H, L_Q]`` on ``n_sample`` sampled keys (all admissible keys when
        ``n_sample >= L_K``); the 1/sqrt(E) factor is left out as it does not change the ranking."""
        B, H, L_Q, E = q.shape
        L_K = k.shape[2]
        if n_sample >= L_K and not self.reference_measure:
            full = q @ k.transpose(-2, -1)  # [B, H, L_Q, L_K]
            if causal_mask is None:
                return full.amax(-1) - full.mean(-1)
            counts = torch.arange(1, L_Q + 1, device=q.device, dtype=full.dtype)
            return (
                full.masked_fill(causal_mask, float("-inf")).amax(-1)
                - full.masked_fill(causal_mask, 0.0).sum(-1) / counts
            )
        idx = self._sample_keys(L_Q, L_K, n_sample, q.device)  # [L_Q, n]
        if n_sample * E >= L_K:
            sampled = (q @ k.transpose(-2, -1)).gather(-1, idx.expand(B, H, L_Q, n_sample))
        else:
            sampled = torch.einsum("bhqe,bhqne->bhqn", q, k[:, :, idx, :])  # k[:, :, idx]: [B, H, L_Q, n, E]
        if self.reference_measure:
            return sampled.amax(-1) - sampled.sum(-1) / L_K
        return sampled.amax(-1) - sampled.mean(-1)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        B, H, L_Q, E = q.shape
        L_K = k.shape[2]
        if self.causal and L_Q != L_K:
            raise ValueError(f"causal ProbSparse attention needs L_Q == L_K, got {L_Q} and {L_K}")
        u, n_sample = self.sizes(L_Q, L_K)
        scale = 1.0 / math.sqrt(E)
        causal_mask = None
        if self.causal:
            causal_mask = torch.ones(L_Q, L_K, dtype=torch.bool, device=q.device).triu_(1)  # True = hidden
        with torch.no_grad():  # only the top-u indices leave the measurement
            m = self.measure(q, k, n_sample, causal_mask)

        # 2) the top-u queries attend to every (admissible) key; these scores carry the gradient
        top = m.topk(u, dim=-1, sorted=False).indices  # [B, H, u]
        scores = q.gather(2, top.unsqueeze(-1).expand(B, H, u, E)) @ k.transpose(-2, -1)
        scores = scores * scale
        if causal_mask is not None:
            scores = scores.masked_fill(causal_mask[top], float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        if self.training and self.dropout > 0:
            attn = F.dropout(attn, self.dropout)
        out_top = attn @ v  # [B, H, u, E_v]

        # 3) lazy queries: mean(V), under the causal mask the running mean; active rows overwritten
        if self.causal:
            context = v.cumsum(dim=2)
            if not self.reference_measure:
                context = context / torch.arange(1, L_K + 1, device=v.device, dtype=context.dtype).unsqueeze(
                    -1
                )
        else:
            context = v.mean(dim=2, keepdim=True).expand(B, H, L_Q, v.shape[-1])
        return context.scatter(2, top.unsqueeze(-1).expand(B, H, u, v.shape[-1]), out_top.to(context.dtype))


class AttentionLayer(nn.Module):
    """Multi-head wrapper: Q, K, V projected into ``n_heads`` heads, an inner kernel, an output projection.

    ``mix=True`` merges the heads as the Informer authors' released code does in the decoder's
    self-attention: the ``[B, H, L, E]`` output is read row-major as ``[B, L, H·E]``, so each merged
    row holds ``H·E / E`` consecutive positions of one head instead of every head at one position.
    Not in the paper; kept only to reproduce the published numbers (``mix=False`` is the usual merge).
    """

    def __init__(self, inner: nn.Module, d_model: int, n_heads: int, *, mix: bool = False):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.inner = inner
        self.n_heads = n_heads
        self.mix = mix
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        return x.view(B, L, self.n_heads, D // self.n_heads).transpose(1, 2)

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, rows: int | None = None
    ) -> torch.Tensor:
        """``[B, L_Q, d_model]``, or its last ``rows`` positions (only those go through ``out_proj``)."""
        B, L, D = queries.shape
        q, k, v = (
            self._heads(self.q_proj(queries)),
            self._heads(self.k_proj(keys)),
            self._heads(self.v_proj(values)),
        )
        out = self.inner(q, k, v)  # [B, H, L, E]
        if self.mix:
            merged = out.reshape(B, L, D)
            return self.out_proj(merged if rows is None else merged[:, -rows:])
        if rows is not None:
            out = out[:, :, -rows:]
        return self.out_proj(out.transpose(1, 2).reshape(B, out.shape[2], D))


def make_attention(
    kind: str,
    d_model: int,
    n_heads: int,
    *,
    causal: bool = False,
    factor: int = 5,
    dropout: float = 0.0,
    mix: bool = False,
    reference_code: bool = False,
) -> AttentionLayer:
    """``kind`` is ``"prob"`` (ProbSparse) or ``"full"``; ``reference_code`` gives ProbSparse the
    authors' measurement and, as in their code, no dropout."""
    if kind == "prob":
        inner: nn.Module = ProbSparseAttention(
            factor=factor,
            causal=causal,
            dropout=0.0 if reference_code else dropout,
            reference_measure=reference_code,
        )
    elif kind == "full":
        inner = FullAttention(causal=causal, dropout=dropout)
    else:
        raise ValueError(f"attention must be 'prob' or 'full', got {kind!r}")
    return AttentionLayer(inner, d_model, n_heads, mix=mix)

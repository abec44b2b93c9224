"""ReLoop2-style error memory for regression: a fixed-size sketch of recent residuals keyed by embeddings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validate import finite_array

__all__ = ["ErrorMemory"]

_RENORM_AT = 1e150


class ErrorMemory:
    """Fast-learning residual memory that corrects a slow model's forecasts (ReLoop2, KDD 2023).

    Hashing: keys (model embeddings, ``[B, dim]``) are standardised with a per-dimension
    mean/std (running estimate over the first ``warmup`` keys after a reset, then frozen so
    bucket codes stay stable; or set explicitly via :meth:`set_standardizer`) and hashed by
    ``tables`` x ``bits`` Gaussian sign random projections into ``tables`` tables of
    ``2**bits`` buckets.  Centring matters: signs of projections of raw, non-centred keys
    mostly agree, which would put everything into one bucket.

    Storage per bucket (fixed, see :attr:`nbytes`): residual sums ``[horizon*n_targets]``,
    key sums ``[dim]`` and a weight (count).  ``update`` adds each record to its bucket in
    every table; with ``decay < 1`` each new record multiplies all older weights by ``decay``, and
    with ``step_decay < 1`` each :meth:`advance` (one clock step) multiplies them by ``step_decay``
    (both applied lazily through one global scale, so updates stay O(tables) per record).

    Correction for a query in table ``k``'s bucket with weight ``c_k``, residual sum ``S_k``
    and key centroid ``z_k``: bucket estimate ``e_k = S_k / (c_k + prior)`` (shrunk towards 0
    while a bucket holds few records), similarity ``s_k = cos(query, z_k)``, weights
    ``a = softmax(s / tau)`` over the non-empty buckets, and
    ``yhat_corrected = yhat + lam * sum_k a_k e_k``.  A query whose buckets are all empty is
    left unchanged (a miss).  Call :meth:`reset` when the base model is swapped.

    >>> import numpy as np
    >>> from adaptcast.drift.memory import ErrorMemory
    >>> memory = ErrorMemory(dim=3, horizon=2, warmup=0)
    >>> key, forecast = np.array([[1.0, 0.0, 0.5]]), np.zeros((1, 2, 1))
    >>> memory.correct(key, forecast).ravel().tolist()  # nothing learnt yet: a miss
    [0.0, 0.0]
    >>> for _ in range(20):  # the model keeps falling short by 0.3 and 0.6 on this window
    ...     memory.update(key, np.array([[[0.3], [0.6]]]))
    >>> memory.correct(key, forecast).ravel().round(3).tolist()
    [0.273, 0.545]
    """

    def __init__(
        self,
        dim: int,
        horizon: int,
        n_targets: int = 1,
        tables: int = 8,
        bits: int = 6,
        lam: float = 1.0,
        tau: float = 0.1,
        seed: int = 0,
        decay: float = 1.0,
        prior: float = 2.0,
        warmup: int = 512,
        step_decay: float = 1.0,
        clip: float | None = None,
    ) -> None:
        for name, v, lo in (
            ("dim", dim, 1),
            ("horizon", horizon, 1),
            ("n_targets", n_targets, 1),
            ("tables", tables, 1),
        ):
            if int(v) < lo:
                raise ValueError(f"{name} must be >= {lo}, got {v}")
        if not 1 <= bits <= 24:
            raise ValueError(f"bits must be in [1, 24], got {bits}")
        if not (math.isfinite(lam) and math.isfinite(tau) and tau > 0):
            raise ValueError(f"lam must be finite and tau finite > 0, got lam={lam}, tau={tau}")
        if not 0.0 < decay <= 1.0 or not 0.0 < step_decay <= 1.0:
            raise ValueError(f"decay and step_decay must be in (0, 1], got {decay}, {step_decay}")
        if not (math.isfinite(prior) and prior >= 0):
            raise ValueError(f"prior must be finite and >= 0, got {prior}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        if clip is not None and not (math.isfinite(clip) and clip > 0):
            raise ValueError(f"clip must be finite and > 0 (or None), got {clip}")
        self.dim, self.horizon, self.n_targets = int(dim), int(horizon), int(n_targets)
        self.tables, self.bits = int(tables), int(bits)
        self.lam, self.tau, self.seed = float(lam), float(tau), int(seed)
        self.decay, self.prior, self.warmup = float(decay), float(prior), int(warmup)
        self.step_decay = float(step_decay)
        self.clip = None if clip is None else float(clip)
        self._nb = 1 << self.bits
        rng = np.random.default_rng(self.seed)
        # [dim, tables*bits]; column t*bits + b is hyperplane b of table t
        self._planes = rng.standard_normal((self.dim, self.tables * self.bits))
        self._pow2 = 1 << np.arange(self.bits, dtype=np.int64)
        self._offsets = (np.arange(self.tables, dtype=np.int64) * self._nb)[None, :]
        vw = self.horizon * self.n_targets
        self._sums = np.zeros((self.tables * self._nb, vw))
        self._keysums = np.zeros((self.tables * self._nb, self.dim))
        self._counts = np.zeros(self.tables * self._nb)
        self._vcounts = np.zeros((self.tables * self._nb, vw))  # weight per stored value (partial updates)
        self._mu = np.zeros(self.dim)
        self._m2 = np.zeros(self.dim)
        self._std_n = 0
        self._frozen = False
        self.reset()

    # -- housekeeping -------------------------------------------------------------------------
    def reset(self) -> None:
        """Empty the memory and forget the key standardisation (call on every model swap)."""
        self._sums.fill(0.0)
        self._keysums.fill(0.0)
        self._counts.fill(0.0)
        self._vcounts.fill(0.0)
        self._scale = 1.0  # weight of the next record relative to stored ones (grows with decay)
        self._mu.fill(0.0)
        self._m2.fill(0.0)
        self._std_n = 0
        self._frozen = self.warmup == 0  # warmup=0: keys are used as given
        self.n_updates = 0
        self.n_lookups = 0
        self.n_hits = 0
        self.abs_correction_sum = 0.0

    @property
    def nbytes(self) -> int:
        """Bytes held by the sketch and projections: fixed by (tables, bits, dim, horizon, n_targets)."""
        return int(
            self._sums.nbytes
            + self._keysums.nbytes
            + self._counts.nbytes
            + self._vcounts.nbytes
            + self._planes.nbytes
            + self._mu.nbytes
            + self._m2.nbytes
        )

    @property
    def hit_ratio(self) -> float:
        """Fraction of corrected records that matched at least one non-empty bucket (0.0 before any)."""
        return self.n_hits / self.n_lookups if self.n_lookups else 0.0

    @property
    def mean_abs_correction(self) -> float:
        """Mean |correction| per corrected value (0.0 before any)."""
        n = self.n_lookups * self.horizon * self.n_targets
        return self.abs_correction_sum / n if n else 0.0

    def set_standardizer(self, mean: Any, std: Any) -> None:
        """Fix the key standardisation explicitly (e.g. from training embeddings) and freeze it."""
        mu = finite_array(mean, "mean", ndim=1)
        sd = finite_array(std, "std", ndim=1)
        if mu.shape != (self.dim,) or sd.shape != (self.dim,) or (sd <= 0).any():
            raise ValueError(f"mean/std must have shape ({self.dim},) and std > 0")
        self._mu[:] = mu
        self._m2[:] = sd * sd
        self._std_n = 1
        self._frozen = True

    # -- core -------------------------------------------------------------------------------
    def _check_keys(self, keys: Any) -> np.ndarray:
        k = finite_array(keys, "keys", ndim=2)
        if k.shape[1] != self.dim:
            raise ValueError(f"keys must have shape [B, {self.dim}], got {k.shape}")
        return k

    def _check_values(self, v: Any, name: str, b: int) -> np.ndarray:
        a = finite_array(v, name, ndim=(2, 3))
        want = (b, self.horizon, self.n_targets)
        if a.ndim == 2 and self.n_targets == 1:
            a = a[:, :, None]
        if a.shape != want:
            raise ValueError(f"{name} must have shape {list(want)}, got {list(a.shape)}")
        return a

    def _observe_keys(self, k: np.ndarray, c: np.ndarray | None = None) -> None:
        """Running (Chan et al.) mean/variance of keys until ``warmup`` keys were seen (``c``: each
        key's multiplicity)."""
        if self._frozen:
            return
        if c is None:
            nb = k.shape[0]
            bm = k.mean(axis=0)
            bm2 = ((k - bm) ** 2).sum(axis=0)
        else:
            nb = int(c.sum())
            bm = (c[:, None] * k).sum(axis=0) / nb
            bm2 = (c[:, None] * (k - bm) ** 2).sum(axis=0)
        n = self._std_n
        tot = n + nb
        d = bm - self._mu
        self._mu += d * (nb / tot)
        self._m2 += bm2 + d * d * (n * nb / tot)
        self._std_n = tot
        if tot >= self.warmup:
            self._frozen = True

    def _standardise(self, k: np.ndarray) -> np.ndarray:
        if self._std_n == 0:
            return k
        sd = np.sqrt(self._m2 / self._std_n)
        sd = np.where(sd > 1e-12, sd, 1.0)
        return (k - self._mu) / sd

    def _buckets(self, z: np.ndarray) -> np.ndarray:
        proj = z @ self._planes  # [B, tables*bits]
        bits = (proj > 0).reshape(z.shape[0], self.tables, self.bits)
        return bits.astype(np.int64) @ self._pow2 + self._offsets  # [B, tables] flat indices

    def update(self, keys: Any, residuals: Any, mask: Any = None, counts: Any = None) -> None:
        """Store residuals ``y - yhat_base`` ``[B, horizon, n_targets]`` under their keys ``[B, dim]``.

        ``mask`` (bool, same shape) marks the residuals that are known: a forecast's lead-1 error
        can be stored as soon as it is observed, without waiting for the whole horizon.
        ``counts`` ``[B]`` (default 1 each) says how many records each row stands for: one row with
        ``c`` known residuals of one key is the same as ``c`` rows of that key with one residual each
        (up to rounding), at a fraction of the cost. Only without per-record decay (``decay == 1``),
        where a record's weight does not depend on its place in the batch.
        """
        k = self._check_keys(keys)
        b = k.shape[0]
        r = self._check_values(residuals, "residuals", b).reshape(b, -1)
        if self.clip is not None:
            r = np.clip(r, -self.clip, self.clip)
        if mask is None:
            m = np.ones_like(r)
        else:
            m = np.asarray(mask, dtype=bool)
            if m.size != r.size:
                raise ValueError(
                    f"mask must have the shape of residuals {[b, self.horizon, self.n_targets]}, "
                    f"got {list(m.shape)}"
                )
            m = m.reshape(b, -1).astype(np.float64)
        c = None if counts is None else np.asarray(counts, dtype=np.float64)
        if c is not None and (c.shape != (b,) or (c < 1).any()):
            raise ValueError(f"counts must have shape [{b}] and be >= 1, got shape {list(c.shape)}")
        if self.decay < 1.0:
            if c is not None and (c != 1).any():
                raise ValueError("counts above 1 need decay == 1 (a record's weight depends on its order)")
            step = max(1, int(100.0 / -math.log(self.decay)))  # keep decay**-step far from overflow
            if b > step:
                for i in range(0, b, step):
                    self._update(k[i : i + step], r[i : i + step], m[i : i + step], None)
                return
        self._update(k, r, m, c)

    def _update(self, k: np.ndarray, r: np.ndarray, m: np.ndarray, c: np.ndarray | None) -> None:
        b = k.shape[0]
        if self.decay < 1.0 and self._scale * self.decay**-b > _RENORM_AT:
            self._renormalise()
        self._observe_keys(k, c)
        z = self._standardise(k)
        idx = self._buckets(z)  # [B, T]
        if self.decay < 1.0:
            # record i of the batch weighs decay**-(i+1) relative to the current scale
            w = self._scale * self.decay ** -np.arange(1, b + 1, dtype=np.float64)
            self._scale = float(w[-1])
        else:
            w = np.full(b, self._scale)
        wk = w if c is None else w * c  # a key's weight: one per record it stands for
        flat = idx.ravel()
        self._counts += np.bincount(flat, weights=np.repeat(wk, self.tables), minlength=self._counts.size)
        order = np.argsort(flat, kind="stable")
        fs = flat[order]
        starts = np.flatnonzero(np.r_[True, fs[1:] != fs[:-1]])
        rows = order // self.tables
        mw = m * w[:, None]

        def per_bucket(x: np.ndarray) -> np.ndarray:
            """Sums of ``x`` ``[B, V]`` over each bucket's rows, in row order. Reduced along contiguous
            memory (``x`` transposed): the same additions as along axis 0, a fraction of the cost."""
            return np.add.reduceat(x.T[:, rows], starts, axis=1).T

        self._sums[fs[starts]] += per_bucket(r * mw)
        self._vcounts[fs[starts]] += per_bucket(mw)
        self._keysums[fs[starts]] += per_bucket(z * wk[:, None])
        self.n_updates += b if c is None else int(c.sum())

    def advance(self, steps: int = 1) -> None:
        """``steps`` clock steps passed: every stored record weighs ``step_decay**steps`` less.

        Decaying per step rather than per update keeps the memory's length in time the same
        whether it serves four series or four thousand.
        """
        if self.step_decay >= 1.0 or steps <= 0:
            return
        for _ in range(int(steps)):
            self._scale /= self.step_decay
            if self._scale > _RENORM_AT:
                self._renormalise()

    def _renormalise(self) -> None:
        s = self._scale
        self._counts /= s
        self._vcounts /= s
        self._sums /= s
        self._keysums /= s
        self._scale = 1.0

    def correction(self, keys: Any) -> np.ndarray:
        """The additive correction ``[B, horizon, n_targets]`` for ``keys`` (zeros for misses)."""
        k = self._check_keys(keys)
        return self._correction(k)[0]

    def _correction(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = k.shape[0]
        z = self._standardise(k)
        idx = self._buckets(z)  # [B, T]
        c = self._counts[idx]  # [B, T]
        occupied = c > 1e-12 * self._scale
        vc = self._vcounts[idx] + self.prior * self._scale  # [B, T, V]: per value, as updates may be partial
        known = occupied[..., None] & (vc > 1e-12 * self._scale)
        est = np.divide(self._sums[idx], vc, out=np.zeros_like(vc), where=known)  # [B, T, V]
        cent = self._keysums[idx]  # [B, T, dim]
        zn = np.linalg.norm(z, axis=1, keepdims=True)  # [B, 1]
        cn = np.linalg.norm(cent, axis=2)  # [B, T]
        sim = np.einsum("bd,btd->bt", z, cent) / np.maximum(zn * cn, 1e-12)
        logits = np.where(occupied, sim / self.tau, -np.inf)
        hit = occupied.any(axis=1)
        mx = np.where(hit, logits.max(axis=1), 0.0)
        ex = np.where(occupied, np.exp(logits - mx[:, None]), 0.0)
        den = ex.sum(axis=1)
        a = ex / np.where(den > 0, den, 1.0)[:, None]
        corr = self.lam * np.einsum("bt,btv->bv", a, est)
        if not np.isfinite(corr).all():
            raise ValueError("error memory overflowed (keys or residuals too large to represent)")
        return corr.reshape(b, self.horizon, self.n_targets), hit

    def correct(self, keys: Any, yhat: Any) -> np.ndarray:
        """Return ``yhat + lam * weighted mean residual`` of the matched buckets (same shape as ``yhat``)."""
        k = self._check_keys(keys)
        y = np.asarray(yhat)
        yv = self._check_values(yhat, "yhat", k.shape[0])
        corr, hit = self._correction(k)
        self.n_lookups += k.shape[0]
        self.n_hits += int(hit.sum())
        self.abs_correction_sum += float(np.abs(corr).sum())
        out = yv + corr
        if not np.isfinite(out).all():
            raise ValueError("corrected forecast overflowed (yhat + correction is not finite)")
        return out.reshape(y.shape)

    # -- state --------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-able)."""
        return {
            "dim": self.dim,
            "horizon": self.horizon,
            "n_targets": self.n_targets,
            "tables": self.tables,
            "bits": self.bits,
            "lam": self.lam,
            "tau": self.tau,
            "seed": self.seed,
            "decay": self.decay,
            "prior": self.prior,
            "warmup": self.warmup,
            "step_decay": self.step_decay,
            **({} if self.clip is None else {"clip": self.clip}),
        }

    def state_dict(self) -> dict[str, Any]:
        """Complete state (arrays + scalars), pickle-free; see :func:`drift.save_state`."""
        return {
            "kind": "error_memory",
            "params": self.params(),
            "sums": self._sums.copy(),
            "keysums": self._keysums.copy(),
            "counts": self._counts.copy(),
            "vcounts": self._vcounts.copy(),
            "scale": self._scale,
            "mu": self._mu.copy(),
            "m2": self._m2.copy(),
            "std_n": self._std_n,
            "frozen": self._frozen,
            "counters": [self.n_updates, self.n_lookups, self.n_hits, self.abs_correction_sum],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from ``state_dict`` of a memory built with the same parameters."""
        if state.get("kind") != "error_memory":
            raise ValueError("not an error-memory state")
        if dict(state["params"]) != self.params():
            raise ValueError(f"parameters differ: {state['params']} vs {self.params()}")
        self._sums[...] = state["sums"]
        self._keysums[...] = state["keysums"]
        self._counts[...] = state["counts"]
        self._vcounts[...] = state["vcounts"]
        self._scale = float(state["scale"])
        self._mu[...] = state["mu"]
        self._m2[...] = state["m2"]
        self._std_n = int(state["std_n"])
        self._frozen = bool(state["frozen"])
        nu, nl, nh, acs = state["counters"]
        self.n_updates, self.n_lookups, self.n_hits, self.abs_correction_sum = (
            int(nu),
            int(nl),
            int(nh),
            float(acs),
        )

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ErrorMemory:
        """Build a memory from a saved state."""
        mem = cls(**state["params"])
        mem.load_state_dict(state)
        return mem

    def __repr__(self) -> str:
        return "ErrorMemory(" + ", ".join(f"{k}={v!r}" for k, v in self.params().items()) + ")"

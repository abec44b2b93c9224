"""The base class of every torch model: one training path, direct inference, weight files.

A torch model subclasses :class:`TorchForecaster`, declares its hyper-parameters in
``defaults`` and implements :meth:`TorchForecaster.build_module`; fitting (with Lightning, in
:mod:`adaptcast.forecast.lightning_fit`, loaded on the first fit), early stopping, device and
precision choice, inference and weight files are handled here once.
"""

from __future__ import annotations

import functools
import os
import sys
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from adaptcast.forecast.base import BaseForecaster, FitReport
from adaptcast.forecast.threads import set_torch_threads

WEIGHTS = "weights.pt"
PREDICT_BATCHES = 4  # inference runs on chunks of this many training batches: memory like one training step
SMALL_NET = 200_000


@functools.cache
def _cuda_available() -> bool:
    """``torch.cuda.is_available()`` asked once: per predict call it cost ~12 % of a small predict."""
    return torch.cuda.is_available()


def resolve_accelerator(accelerator: str) -> str:
    """Map ``"auto"`` to ``"gpu"`` when CUDA is usable, else ``"cpu"``; pass explicit choices through."""
    if accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"accelerator={accelerator!r} requested but CUDA is not available; use 'auto' or 'cpu'"
            )
        return "gpu"
    return "cpu"


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The processor's feature flags (the first ``flags`` line of ``cpuinfo``); empty where there is none."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_precision(flags: frozenset[str] | None = None) -> str:
    """``"bf16-mixed"`` on a CPU with native bf16 (``avx512_bf16`` or ``amx_bf16``), else ``"32-true"``.

    Without those instructions bf16 autocast is emulated: an Informer step on a 2-core AVX2
    EPYC took 72 s in bf16 against 2.85 s in fp32. With them it may still not pay (seq 96 on an
    AVX512-BF16 Xeon without AMX: slower than fp32), so this says when bf16 is worth measuring,
    and training's ``precision="auto"`` stays fp32 on CPUs. ``flags`` defaults to :func:`cpu_flags`.
    """
    flags = cpu_flags() if flags is None else flags
    return "bf16-mixed" if any(f in flags for f in CPU_BF16_FLAGS) else "32-true"


def resolve_precision(precision: str, accelerator: str) -> str:
    """``"auto"``: bf16-mixed on CUDA with bf16 support, 16-mixed on older CUDA, 32-true on CPU."""
    if precision != "auto":
        return precision
    if accelerator == "gpu":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def show_progress() -> bool:
    """A progress bar only for a person at a terminal: stderr is a TTY and ``CI`` is unset."""
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def progress_bar(desc: str, total: int, unit: str) -> Iterator[tqdm | None]:
    """A bar over a fit's epochs or rounds (ETA from tqdm) at a terminal; ``None`` elsewhere."""
    if not show_progress():
        yield None
        return
    with tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr) as bar:
        yield bar


class TorchForecaster(BaseForecaster):
    """Base for torch models: one Lightning fit, direct inference, ``state_dict`` weights.

    Common hparams (all keyword, with defaults): epochs=30, batch_size=64, lr=1e-3,
    weight_decay=0.0, patience=3, accelerator="auto", precision="auto", max_minutes=None,
    num_threads=None (see :meth:`cpu_threads`), epoch_samples=None (each epoch visits this
    many training windows, a fresh random draw every epoch, so a fit's cost stops growing
    with the history while every window is still seen over the epochs; None = all). A
    subclass adds its own in a ``defaults`` class dict (see :class:`BaseForecaster`).
    """

    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 30,
        "batch_size": 64,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "patience": 3,
        "accelerator": "auto",
        "precision": "auto",
        "max_minutes": None,
        "num_threads": None,
        "epoch_samples": None,
    }

    module: nn.Module | None = None  # the trained network, set by fit or load
    supports_warm: ClassVar[bool] = True
    refit_continues: ClassVar[bool] = True  # a network keeps what the validated fit learned

    def _validate_hparams(self) -> None:
        super()._validate_hparams()
        if self.hparams["accelerator"] not in ("auto", "cpu", "gpu", "cuda"):
            raise ValueError(
                f"{self.kind}: accelerator must be 'auto', 'cpu' or 'gpu', "
                f"got {self.hparams['accelerator']!r}"
            )
        names = ("epochs", "batch_size", "patience", "epoch_samples")
        for name in (n for n in names if self.hparams[n] is not None):
            if int(self.hparams[name]) < 1:
                raise ValueError(f"{self.kind}: {name} must be >= 1, got {self.hparams[name]!r}")

    # ---- what a model defines -----------------------------------------------------------
    @abstractmethod
    def build_module(self) -> nn.Module:
        """A fresh network: ``module(x[B,L,F]) -> [B,H,T]``, ``module.embed(x) -> [B,d]`` and
        ``module.forward_embed(x)``, both from one pass (the key is an intermediate of the forecast)."""

    def loss(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Training loss of one batch; override to add regularisers or deep supervision."""
        return nn.functional.mse_loss(module(x).float(), y.float())

    def configure_optimizer(self, params: Iterator[nn.Parameter]) -> tuple[torch.optim.Optimizer, Any | None]:
        """Optimiser and optional per-epoch LR scheduler; default Adam(lr, weight_decay)."""
        return torch.optim.Adam(
            params, lr=float(self.hparams["lr"]), weight_decay=float(self.hparams["weight_decay"])
        ), None

    # ---- the shared machinery -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where inference runs: CUDA when asked for (or "auto") and available, else CPU.

        A model trained with ``accelerator="gpu"`` still loads and predicts on a CPU-only host.
        """
        wants_gpu = self.hparams["accelerator"] != "cpu"
        return torch.device("cuda" if wants_gpu and _cuda_available() else "cpu")

    def cpu_threads(self, net: nn.Module) -> int | None:
        """CPU threads to train and predict with: ``num_threads`` if set; else 1 for small nets (< SMALL_NET).

        Small nets are dominated by per-op overhead, and on a shared 2-core machine extra
        intra-op threads mostly wait on each other: AR-Net on ETTh1 measured 3.9 s with one
        thread vs 45 s with two under load, and an LSTM predicting 4 windows took 540 ms per
        call with two threads against 14 ms with one. Larger nets keep torch's default.
        """
        if self.hparams["num_threads"] is not None:
            return int(self.hparams["num_threads"])
        return 1 if sum(p.numel() for p in net.parameters()) < SMALL_NET else None

    def _fit(self, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None) -> FitReport:
        return self._train(self._seeded_module(), X, Y, val)

    def _fit_warm(
        self, parent: BaseForecaster, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None
    ) -> FitReport:
        """Train a copy of ``parent``'s network (its weights, a fresh optimiser) for this model's epochs."""
        assert isinstance(parent, TorchForecaster) and parent.module is not None
        net = self._seeded_module()
        net.load_state_dict({k: v.detach().cpu() for k, v in parent.module.state_dict().items()})
        return self._train(net, X, Y, val)

    def warm_hparams(self) -> dict[str, Any]:
        """A fifth of the epochs (at least one) at a third of the learning rate: refine, do not relearn."""
        hp = self.hparams
        return {"epochs": max(1, int(hp["epochs"]) // 5), "lr": float(hp["lr"]) / 3}

    def _seeded_module(self) -> nn.Module:
        """A fresh network built after seeding everything, so one seed gives one set of initial weights."""
        from adaptcast.forecast import lightning_fit  # seconds to import: only a fit needs it

        lightning_fit.seed(self.seed)
        return self.build_module()

    def _train(
        self, net: nn.Module, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None
    ) -> FitReport:
        """Fit ``net`` (fresh or warm) with Lightning; keep the best epoch's weights as ``self.module``."""
        from adaptcast.forecast import lightning_fit  # loaded by _seeded_module already

        report = lightning_fit.train(self, net, X, Y, val)
        self.module = net.to(self.device).eval()
        return report

    def refit_hparams(self, report: FitReport, windows: int) -> dict[str, Any]:
        """As many epochs as the validated fit's best one (an epoch already covers every window)."""
        return {"epochs": max(1, int(report.extra.get("best_epoch", report.epochs)))}

    def _run(self, X: np.ndarray, method: str) -> list[np.ndarray]:
        """Apply ``module.<method>`` (one tensor or a tuple of them) to scaled windows in chunks, without
        autograd or a Trainer; one array per output."""
        assert self.module is not None
        fn = getattr(self.module, method)
        outs: list[tuple[np.ndarray, ...]] = []
        size = PREDICT_BATCHES * int(self.hparams["batch_size"])
        with torch.inference_mode(), set_torch_threads(self.cpu_threads(self.module)):
            for start in range(0, X.shape[0], size):
                chunk = torch.from_numpy(np.ascontiguousarray(X[start : start + size])).to(self.device)
                out = fn(chunk)
                outs.append(
                    tuple(t.float().cpu().numpy() for t in (out if isinstance(out, tuple) else (out,)))
                )
        return [np.concatenate(parts, axis=0) for parts in zip(*outs, strict=True)]

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self._run(X, "forward")[0]

    def _embed(self, X: np.ndarray) -> np.ndarray:
        return self._run(X, "embed")[0]

    def _predict_embed(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out, keys = self._run(X, "forward_embed")
        return out, keys

    def _save_weights(self, directory: Path) -> None:
        assert self.module is not None
        torch.save({k: v.detach().cpu() for k, v in self.module.state_dict().items()}, directory / WEIGHTS)

    def _load_weights(self, directory: Path) -> None:
        path = Path(directory) / WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"{path}: weights file missing; the checkpoint is incomplete")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated zip, bad pickle header, …
            raise ValueError(f"{path}: corrupted or truncated weights ({type(exc).__name__}: {exc})") from exc
        net = self.build_module()
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{path}: weights do not match a {self.kind} model with this manifest's config ({exc})"
            ) from exc
        self.module = net.to(self.device).eval()

"""One Lightning training path shared by every torch model, and the base class that uses it.

A torch model subclasses :class:`TorchForecaster`, declares its hyper-parameters in
``defaults`` and implements :meth:`TorchForecaster.build_module`; fitting, early stopping,
device and precision choice, inference and weight files are handled here once.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import os
import sys
import time
import warnings
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler
from tqdm import tqdm

from adaptcast.forecast.base import BaseForecaster, FitReport
from adaptcast.forecast.threads import set_torch_threads

WEIGHTS = "weights.pt"
PREDICT_BATCHES = 4  # inference runs on chunks of this many training batches: memory like one training step
SMALL_NET = 200_000
_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")


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


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning for one fit: its banners and its internal deprecation noise.

    The banners are "GPU available…", tips and "max_epochs reached".
    """
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Lightning 2.6 on torch 2.15 calls a deprecated pytree check every step.
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=False):
            lg.setLevel(level)


class _Batches(torch.utils.data.Dataset):
    """Tensors indexed by a whole list of rows at once, so a batch is one gather, not B item calls."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(rows)
        return self.x[idx], self.y[idx]


class WindowData(pl.LightningDataModule):
    """Train (shuffled, seeded) and optional validation windows as in-memory tensor batches."""

    def __init__(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        batch_size: int,
        seed: int,
        epoch_samples: int | None = None,
    ):
        super().__init__()
        self.train = _Batches(torch.from_numpy(X), torch.from_numpy(Y))
        self.val = None if val is None else _Batches(torch.from_numpy(val[0]), torch.from_numpy(val[1]))
        self.batch_size = batch_size
        self.seed = seed
        self.epoch_samples = epoch_samples

    @property
    def samples_per_epoch(self) -> int:
        """Training windows one epoch visits: all of them, or ``epoch_samples`` when that is fewer."""
        n = len(self.train)
        return n if self.epoch_samples is None else min(n, self.epoch_samples)

    def _loader(self, data: _Batches, shuffle: bool) -> DataLoader:
        gen = torch.Generator().manual_seed(self.seed)
        sampler = (
            RandomSampler(data, num_samples=self.samples_per_epoch, generator=gen)
            if shuffle
            else SequentialSampler(data)
        )
        return DataLoader(
            data,
            batch_size=None,
            sampler=BatchSampler(sampler, self.batch_size, drop_last=False),
            num_workers=0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        assert self.val is not None, "validation is disabled (limit_val_batches=0) when no val set is given"
        return self._loader(self.val, shuffle=False)


class ForecastModule(pl.LightningModule):
    """The one LightningModule: delegates the network, loss and optimiser to its forecaster."""

    def __init__(self, forecaster: TorchForecaster, net: nn.Module, progress: tqdm | None = None):
        super().__init__()
        self.forecaster = forecaster  # plain attribute; not a submodule
        self.net = net
        self.progress = progress  # one tick per epoch, with the epoch's losses (a terminal only)
        self._sums: dict[str, list[torch.Tensor]] = {"train": [], "val": []}
        self.history: list[dict[str, float]] = []
        self.samples_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.forecaster.loss(self.net, x, y)
        self._sums["train"].append(loss.detach() * x.shape[0])
        self.samples_seen += x.shape[0]
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self._sums["val"].append(nn.functional.mse_loss(self.net(x).float(), y.float()).detach() * x.shape[0])

    def _epoch_mean(self, stage: str, n: int) -> float:
        sums = self._sums[stage]
        value = float(torch.stack(sums).sum().item()) / max(n, 1) if sums else math.nan
        sums.clear()
        return value

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.log("val_loss", self._epoch_mean("val", len(self.trainer.datamodule.val)), prog_bar=True)

    def on_train_epoch_end(self) -> None:
        train = self._epoch_mean("train", self.trainer.datamodule.samples_per_epoch)
        self.log("train_loss", train, prog_bar=True)
        val = self.trainer.callback_metrics.get("val_loss")
        self.history.append({"train_loss": train, "val_loss": float(val) if val is not None else math.nan})
        if self.progress is not None:
            self.progress.set_postfix(
                {k: f"{v:.4g}" for k, v in self.history[-1].items() if math.isfinite(v)}
            )
            self.progress.update(1)

    def configure_optimizers(self) -> Any:
        optimizer, scheduler = self.forecaster.configure_optimizer(self.net.parameters())
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


class KeepBest(pl.callbacks.Checkpoint):
    """Early stopping that keeps the best weights in memory (no checkpoint files) and restores them.

    A ``Checkpoint`` subclass so Lightning runs it after the module's ``on_train_epoch_end``,
    where ``train_loss`` of the current epoch is logged.
    """

    def __init__(self, monitor: str, patience: int):
        self.monitor, self.patience = monitor, patience
        self.best = math.inf
        self.best_epoch = -1
        self.state: dict[str, torch.Tensor] | None = None

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        if float(value) < self.best - 1e-12:
            self.best, self.best_epoch = float(value), trainer.current_epoch
            self.state = copy.deepcopy({k: v.detach() for k, v in module.net.state_dict().items()})
        elif trainer.current_epoch - self.best_epoch >= self.patience:
            trainer.should_stop = True

    def restore(self, net: nn.Module) -> None:
        if self.state is not None:
            net.load_state_dict(self.state)


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
        pl.seed_everything(self.seed, workers=True, verbose=False)
        return self._train(self.build_module(), X, Y, val)

    def _fit_warm(
        self, parent: BaseForecaster, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None
    ) -> FitReport:
        """Train a copy of ``parent``'s network (its weights, a fresh optimiser) for this model's epochs."""
        assert isinstance(parent, TorchForecaster) and parent.module is not None
        pl.seed_everything(self.seed, workers=True, verbose=False)
        net = self.build_module()
        net.load_state_dict({k: v.detach().cpu() for k, v in parent.module.state_dict().items()})
        return self._train(net, X, Y, val)

    def warm_hparams(self) -> dict[str, Any]:
        """A fifth of the epochs (at least one) at a third of the learning rate: refine, do not relearn."""
        hp = self.hparams
        return {"epochs": max(1, int(hp["epochs"]) // 5), "lr": float(hp["lr"]) / 3}

    def _train(
        self, net: nn.Module, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None
    ) -> FitReport:
        """Fit ``net`` (fresh or warm) with Lightning; keep the best epoch's weights as ``self.module``."""
        hp = self.hparams
        accelerator = resolve_accelerator(hp["accelerator"])
        with (
            set_torch_threads(self.cpu_threads(net)),
            quiet_lightning(),
            progress_bar(f"{self.kind} training", int(hp["epochs"]), "epoch") as progress,
        ):
            lit = ForecastModule(self, net, progress)
            keep = KeepBest("val_loss" if val is not None else "train_loss", int(hp["patience"]))
            trainer = pl.Trainer(
                accelerator=accelerator,
                devices=1,
                precision=resolve_precision(hp["precision"], accelerator),
                max_epochs=int(hp["epochs"]),
                max_time=None if hp["max_minutes"] is None else {"minutes": float(hp["max_minutes"])},
                callbacks=[keep],
                logger=False,
                enable_checkpointing=True,  # KeepBest is the only checkpoint callback; it writes no files
                enable_model_summary=False,
                enable_progress_bar=False,  # per-batch bars: ours ticks per epoch with losses and an ETA
                num_sanity_val_steps=0,
                limit_val_batches=None if val is not None else 0,
            )
            cap = hp["epoch_samples"]
            data = WindowData(X, Y, val, int(hp["batch_size"]), self.seed, None if cap is None else int(cap))
            t0 = time.perf_counter()
            trainer.fit(lit, datamodule=data)
            if accelerator == "gpu":
                torch.cuda.synchronize()
            fit_seconds = time.perf_counter() - t0
        keep.restore(net)
        self.module = net.to(self.device).eval()
        best = (
            lit.history[keep.best_epoch]
            if 0 <= keep.best_epoch < len(lit.history)
            else (lit.history or [{}])[-1]
        )
        return FitReport(
            epochs=len(lit.history),
            samples_seen=lit.samples_seen,
            wall_seconds=0.0,
            cpu_seconds=0.0,
            device=str(self.device) if accelerator == "gpu" else "cpu",
            train_loss=float(best.get("train_loss", math.nan)),
            val_loss=None if val is None else float(best.get("val_loss", math.nan)),
            gpu_seconds=fit_seconds if accelerator == "gpu" else None,
            extra={"best_epoch": keep.best_epoch + 1, "history": lit.history, "precision": trainer.precision},
        )

    def refit_hparams(self, report: FitReport) -> dict[str, Any]:
        """As many epochs as the validated fit's best one."""
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

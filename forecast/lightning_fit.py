"""The Lightning fit every torch model trains with: the data module, the LightningModule, early stopping.

Imported only when a network is fitted (Lightning takes seconds to import, pulling in torch's
compiler and scipy): serving, closed-form fits and the other model kinds never load it.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler
from tqdm import tqdm

from adaptcast.forecast.base import FitReport
from adaptcast.forecast.threads import set_torch_threads
from adaptcast.forecast.training import progress_bar, resolve_accelerator, resolve_precision

if TYPE_CHECKING:
    from adaptcast.forecast.training import TorchForecaster

_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")


def seed(value: int) -> None:
    """Seed Python, numpy and torch (and data-loader workers) before a network is built and fitted."""
    pl.seed_everything(value, workers=True, verbose=False)


def train(
    forecaster: TorchForecaster,
    net: nn.Module,
    X: np.ndarray,
    Y: np.ndarray,
    val: tuple[np.ndarray, np.ndarray] | None,
) -> FitReport:
    """Fit ``net`` (fresh or warm) for ``forecaster``'s recipe and leave the best epoch's weights in it."""
    hp = forecaster.hparams
    accelerator = resolve_accelerator(hp["accelerator"])
    with (
        set_torch_threads(forecaster.cpu_threads(net)),
        quiet_lightning(),
        progress_bar(f"{forecaster.kind} training", int(hp["epochs"]), "epoch") as progress,
    ):
        lit = ForecastModule(forecaster, net, progress)
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
        data = WindowData(
            X, Y, val, int(hp["batch_size"]), forecaster.seed, None if cap is None else int(cap)
        )
        t0 = time.perf_counter()
        trainer.fit(lit, datamodule=data)
        if accelerator == "gpu":
            torch.cuda.synchronize()
        fit_seconds = time.perf_counter() - t0
    keep.restore(net)
    best = (
        lit.history[keep.best_epoch] if 0 <= keep.best_epoch < len(lit.history) else (lit.history or [{}])[-1]
    )
    return FitReport(
        epochs=len(lit.history),
        samples_seen=lit.samples_seen,
        wall_seconds=0.0,
        cpu_seconds=0.0,
        device=str(forecaster.device) if accelerator == "gpu" else "cpu",
        train_loss=float(best.get("train_loss", math.nan)),
        val_loss=None if val is None else float(best.get("val_loss", math.nan)),
        gpu_seconds=fit_seconds if accelerator == "gpu" else None,
        extra={"best_epoch": keep.best_epoch + 1, "history": lit.history, "precision": trainer.precision},
    )


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

"""XGBoost direct multi-horizon forecaster: one multi-output booster over the flattened window."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import xgboost as xgb

from adaptcast.forecast.base import BaseForecaster, FitReport, register
from adaptcast.forecast.training import progress_bar

MODEL_FILE = "model.ubj"
SMALL_DATA = 2_000_000


class _Progress(xgb.callback.TrainingCallback):
    """Ticks a progress bar once per boosting round, showing the last evaluation's RMSE."""

    def __init__(self, bar: Any):
        super().__init__()
        self.bar = bar

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, dict[str, list[float]]]) -> bool:
        self.bar.set_postfix({f"{name}_rmse": f"{log['rmse'][-1]:.4g}" for name, log in evals_log.items()})
        self.bar.update(1)
        return False


class _Patience(xgb.callback.TrainingCallback):
    """Early stopping whose patience grows with the round of the best score so far, from ``least`` to
    ``most`` rounds: it stops once the last evaluation set's RMSE has not improved in as many rounds
    as it took to reach its best. A fixed patience of 20 ran 21-24 rounds for fits whose best was
    round 1 to 4; a late best still gets the full ``most``."""

    def __init__(self, least: int, most: int):
        super().__init__()
        self.least, self.most = least, most
        self.rounds, self.best, self.best_score = 0, 0, math.inf

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, dict[str, list[float]]]) -> bool:
        score = float(next(reversed(evals_log.values()))["rmse"][-1])
        self.rounds += 1
        if score < self.best_score:
            self.best, self.best_score = self.rounds - 1, score
        return self.rounds - 1 - self.best >= min(self.most, max(self.least, self.best + 1))


@register
class XGBForecaster(BaseForecaster):
    """Gradient-boosted trees predicting all H×T outputs at once (``multi_strategy``: one tree per output).

    Features are the standardised window flattened to ``[lookback * n_features]``; ``embed``
    returns the same vector (the error memory keys on the input for tree models). Runs on
    ``device="cuda"`` when available; saved as UBJSON, never pickle.
    """

    kind = "xgboost"
    defaults: ClassVar[dict[str, Any]] = {
        "n_estimators": 300,
        "max_depth": 4,
        "max_bin": 64,
        "learning_rate": 0.1,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 1.0,
        "reg_lambda": 1.0,
        "early_stopping_rounds": 20,
        "early_stopping_min_rounds": 5,
        "multi_strategy": "one_output_per_tree",
        "device": "auto",
        "num_threads": None,
    }

    booster: xgb.Booster | None = None  # the trained model, set by fit or load
    supports_warm: ClassVar[bool] = True
    extrapolates: ClassVar[bool] = False  # a tree's forecast stays within the targets it was trained on

    def _validate_hparams(self) -> None:
        super()._validate_hparams()
        if self.hparams["device"] not in ("auto", "cpu", "cuda"):
            raise ValueError(
                f"xgboost: device must be 'auto', 'cpu' or 'cuda', got {self.hparams['device']!r}"
            )
        least, most = (
            int(self.hparams["early_stopping_min_rounds"]),
            int(self.hparams["early_stopping_rounds"]),
        )
        if most < 0 or least < 1:
            raise ValueError(
                "xgboost: early_stopping_rounds must be >= 0 (0: no early stopping) and "
                f"early_stopping_min_rounds >= 1, got {most} and {least}"
            )

    @property
    def device(self) -> str:
        d = self.hparams["device"]
        return ("cuda" if torch.cuda.is_available() else "cpu") if d == "auto" else d

    def _params(self) -> dict[str, Any]:
        hp = self.hparams
        params = {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "device": self.device,
            "max_depth": int(hp["max_depth"]),
            "max_bin": int(hp["max_bin"]),
            "eta": float(hp["learning_rate"]),
            "subsample": float(hp["subsample"]),
            "colsample_bytree": float(hp["colsample_bytree"]),
            "min_child_weight": float(hp["min_child_weight"]),
            "lambda": float(hp["reg_lambda"]),
            "multi_strategy": hp["multi_strategy"],
            "seed": self.seed,
            "eval_metric": "rmse",
        }
        return params

    def fit_threads(self, X: np.ndarray) -> int | None:
        """``num_threads`` if set; else 1 thread for small data (< SMALL_DATA cells), xgboost's default above.

        On the shared 2-core box a 2400×144 fit with 12 outputs took 16.5 s on one thread and
        54.6 s on the default (all cores): for small data, thread hand-offs cost more than they save.
        """
        if self.hparams["num_threads"] is not None:
            return int(self.hparams["num_threads"])
        return 1 if X.size < SMALL_DATA else None

    @staticmethod
    def _flat(X: np.ndarray) -> np.ndarray:
        return X.reshape(X.shape[0], -1)

    def _fit(self, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None) -> FitReport:
        return self._boost(X, Y, val, None)

    def _fit_warm(
        self, parent: BaseForecaster, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None
    ) -> FitReport:
        """``n_estimators`` more boosting rounds on the new windows, on a copy of the parent's trees."""
        assert isinstance(parent, XGBForecaster) and parent.booster is not None
        return self._boost(X, Y, val, parent.booster.copy())

    def continues(self, parent: BaseForecaster) -> bool:
        """While ``parent``'s booster has fewer rounds than this recipe's ``n_estimators``: past that a
        warm fit starts cold, so that a booster continued at every growth refit stays bounded."""
        assert isinstance(parent, XGBForecaster) and parent.booster is not None
        return parent.booster.num_boosted_rounds() < int(self.hparams["n_estimators"])

    def warm_hparams(self) -> dict[str, Any]:
        """A fifth of the boosting rounds (at least one), added to the serving model's trees."""
        return {"n_estimators": max(1, int(self.hparams["n_estimators"]) // 5)}

    def _boost(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        base: xgb.Booster | None,
    ) -> FitReport:
        """Boost ``n_estimators`` rounds (early-stopped on ``val``) from scratch or on top of ``base``.

        The data are evaluated every round only when early stopping reads them; otherwise the
        losses are computed once at the end (per-round evaluation cost ~10-40 % of a small fit).
        """
        params = self._params()
        threads = self.fit_threads(X)
        if threads is not None:
            params["nthread"] = threads
        flat_y = Y.reshape(Y.shape[0], -1)
        dtrain = xgb.DMatrix(self._flat(X), label=flat_y, nthread=threads or -1)
        stop = int(self.hparams["early_stopping_rounds"])
        patience = _Patience(int(self.hparams["early_stopping_min_rounds"]), stop) if stop else None
        evals = [(dtrain, "train")] if stop else []
        if val is not None and stop:
            evals.append((xgb.DMatrix(self._flat(val[0]), label=val[1].reshape(val[1].shape[0], -1)), "val"))
        history: dict[str, dict[str, list[float]]] = {}
        rounds = int(self.hparams["n_estimators"])
        with progress_bar("xgboost training", rounds, "round") as bar:
            callbacks = [c for c in (None if bar is None else _Progress(bar), patience) if c is not None]
            booster = xgb.train(
                params,
                dtrain,
                num_boost_round=rounds,
                evals=evals,
                evals_result=history,
                verbose_eval=False,
                callbacks=callbacks or None,
                xgb_model=base,
            )
        start = 0 if base is None else base.num_boosted_rounds()
        rounds = booster.num_boosted_rounds() - start
        best = rounds - 1 if patience is None else patience.best
        self.booster = booster[: start + best + 1]
        if stop:
            train_loss = float(history["train"]["rmse"][best]) ** 2
            val_loss = float(history["val"]["rmse"][best]) ** 2 if val is not None else None
        else:
            train_loss = self._mse(X, flat_y)
            val_loss = self._mse(*val) if val is not None else None
        return FitReport(
            epochs=rounds,
            samples_seen=rounds * X.shape[0],
            wall_seconds=0.0,
            cpu_seconds=0.0,
            device=self.device,
            train_loss=train_loss,
            val_loss=val_loss,
            extra={"best_iteration": best + 1, "rows": int(X.shape[0])},
        )

    def _mse(self, X: np.ndarray, Y: np.ndarray) -> float:
        """Mean squared error of the fitted booster on standardised windows ``X`` against targets ``Y``."""
        assert self.booster is not None
        pred = np.asarray(self.booster.inplace_predict(self._flat(X)), dtype=np.float64)
        return float(np.mean((pred.reshape(Y.shape[0], -1) - Y.reshape(Y.shape[0], -1)) ** 2))

    def refit_hparams(self, report: FitReport, windows: int) -> dict[str, Any]:
        """The boosting rounds the validated fit kept, grown in proportion to the windows the refit
        adds (the validation slice's: the usual rule for refitting a booster on all its data), up
        to ``n_estimators``; nothing to stop early on."""
        kept, rows = int(report.extra["best_iteration"]), int(report.extra["rows"])
        rounds = min(int(self.hparams["n_estimators"]), math.ceil(kept * max(windows, rows) / rows))
        return {"n_estimators": rounds, "early_stopping_rounds": 0}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        assert self.booster is not None
        out = self.booster.inplace_predict(self._flat(X))
        return np.asarray(out, dtype=np.float32).reshape(X.shape[0], self.horizon, self.n_targets)

    def _embed(self, X: np.ndarray) -> np.ndarray:
        return self._flat(X)

    def _save_weights(self, directory: Path) -> None:
        assert self.booster is not None
        self.booster.save_model(str(Path(directory) / MODEL_FILE))

    def _load_weights(self, directory: Path) -> None:
        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: booster file missing; the checkpoint is incomplete")
        booster = xgb.Booster()
        try:
            booster.load_model(str(path))
        except xgb.core.XGBoostError as exc:
            raise ValueError(f"{path}: corrupted or truncated booster ({str(exc).splitlines()[0]})") from exc
        if booster.num_features() != self.lookback * self.n_features:
            raise ValueError(
                f"{path}: booster expects {booster.num_features()} features, "
                f"manifest says {self.lookback * self.n_features}"
            )
        booster.set_param(
            {"device": "cuda" if self.device == "cuda" and torch.cuda.is_available() else "cpu"}
        )
        self.booster = booster

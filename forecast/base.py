"""The Forecaster contract every model follows, and the registry that creates and loads them.

Data convention (all models): ``X`` is float32 ``[batch, lookback, n_features]`` and its
first ``n_targets`` channels are the targets' own history; ``Y`` is ``[batch, horizon,
n_targets]``. Models see standardised data: :class:`BaseForecaster` fits a :class:`Scaler`
on the training windows, scales inputs, and maps predictions back to the original units.
"""

from __future__ import annotations

import contextlib
import json
import platform
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from adaptcast.forecast.atomic import atomic_directory
from adaptcast.forecast.integrity import check_seal, file_digests, seal, verify_files
from adaptcast.forecast.outliers import repair, widened
from adaptcast.forecast.scaling import Scaler

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2  # 2: the manifest lists every file's SHA-256 and carries its own checksum
READABLE_FORMATS = (1, 2)
# per-window level (and scale) taken out (_anchor); "auto" is settled from the series (windows.auto_norm)
WINDOW_NORMS = ("none", "last", "delta", "mean", "standard", "auto")
# The smallest magnitude that is infinite in float32 (its largest value plus half a step, where
# rounding overflows): rows, windows and forecasts are float32, so inputs this large are rejected
# where they enter (records, files). Printed, it is ±3.4028236e38.
VALUE_LIMIT = 2.0**128 * (1 - 2.0**-25)
STANDARD_CLIP = 20.0  # training targets under "standard" are kept within this many window deviations


class InputError(ValueError):
    """A problem with user input (file, column, flag, checkpoint); the CLI prints it and exits 2."""


@dataclass
class FitReport:
    """What one ``fit`` call cost and achieved; the unit of compute accounting."""

    epochs: int
    samples_seen: int
    wall_seconds: float
    cpu_seconds: float
    device: str
    train_loss: float
    val_loss: float | None = None
    gpu_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_windows(x: np.ndarray, lookback: int, n_features: int, name: str = "X") -> np.ndarray:
    """Return ``x`` as float32 ``[B, lookback, n_features]`` or raise a ValueError saying why."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[1] != lookback or arr.shape[2] != n_features:
        raise ValueError(
            f"{name} must have shape [batch, lookback={lookback}, n_features={n_features}], "
            f"got {list(arr.shape)}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: expected at least one window of shape [{lookback}, {n_features}]")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN/inf values; clean or impute the input before forecasting"
        )
    return arr


def check_targets(y: np.ndarray, n: int, horizon: int, n_targets: int, name: str = "Y") -> np.ndarray:
    arr = np.asarray(y, dtype=np.float32)
    if arr.shape != (n, horizon, n_targets):
        raise ValueError(
            f"{name} must have shape [batch={n}, horizon={horizon}, n_targets={n_targets}], "
            f"got {list(arr.shape)}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN/inf values; drop those windows before fitting")
    return arr


class BaseForecaster(ABC):
    """Shared behaviour: validation, scaling, manifest, save/load, clone.

    Subclasses set ``kind`` and implement ``_fit``, ``_predict``, ``_embed`` on scaled arrays,
    plus ``_save_weights`` / ``_load_weights`` (torch ``state_dict`` or XGBoost UBJ; never pickle).
    Hyper-parameters are fixed in ``__init__``; learned state appears only in ``fit``. A model
    lists its hyper-parameters in a ``defaults`` class dict (merged along the MRO; any other name
    is then rejected so a typo never passes silently) and checks their values in
    :meth:`_validate_hparams` instead of overriding ``__init__``.

    Windows ``X`` are ``[batch, lookback, features]`` (targets first), targets ``Y`` ``[batch,
    horizon, targets]``:

    >>> import tempfile
    >>> import numpy as np
    >>> from adaptcast.forecast import create_forecaster, load_forecaster
    >>> y = np.sin(np.arange(400) / 4).astype(np.float32)
    >>> X = np.stack([y[i : i + 24] for i in range(370)])[:, :, None]
    >>> Y = np.stack([y[i + 24 : i + 30] for i in range(370)])[:, :, None]
    >>> model = create_forecaster("arnet", lookback=24, horizon=6, epochs=20)
    >>> report = model.fit(X[:300], Y[:300], val=(X[300:], Y[300:]))
    >>> model.predict(X[300:]).shape
    (70, 6, 1)
    >>> bool(np.abs(model.predict(X[300:]) - Y[300:]).mean() < 0.05)
    True
    >>> with tempfile.TemporaryDirectory() as d:  # manifest + weights, written atomically, no pickle
    ...     again = load_forecaster(model.save(f"{d}/arnet"))
    >>> bool(np.array_equal(again.predict(X[:3]), model.predict(X[:3])))
    True
    """

    kind: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    supports_warm: ClassVar[bool] = False  # whether fit_warm can continue from a fitted model's state
    # whether a retrain's refit on every window continues the validated fit (a warm fit from it) rather
    # than repeating that fit's work from scratch with the validation slice added
    refit_continues: ClassVar[bool] = False
    supports_closed_form: ClassVar[bool] = False  # whether fit_closed_form can solve the fit in one pass
    # whether forecasts can leave the range of the targets seen in training (a tree's cannot): what
    # ``window_norm: auto`` settles on for series of like scales, none if so, else delta
    extrapolates: ClassVar[bool] = True

    def __init__(
        self,
        lookback: int,
        horizon: int,
        n_features: int = 1,
        n_targets: int = 1,
        seed: int = 0,
        window_norm: str = "none",
        **hparams: Any,
    ):
        if window_norm not in WINDOW_NORMS:
            raise ValueError(
                f"{self.kind}: window_norm must be one of {', '.join(WINDOW_NORMS)}, got {window_norm!r}"
            )
        if window_norm == "delta" and self.extrapolates:
            raise ValueError(
                f"{self.kind}: window_norm delta is for models that cannot extrapolate (xgboost): the "
                "window's level, in units of its changes, sits far outside what a network's inputs take; "
                "use last or none"
            )
        known = self.all_defaults()
        if known:
            unknown = sorted(set(hparams) - set(known))
            if unknown:
                raise ValueError(f"{self.kind}: unknown hyper-parameter(s) {unknown}; valid: {sorted(known)}")
            for name, v in hparams.items():
                _check_hparam_type(self.kind, name, v, known[name])
            hparams = {**known, **hparams}
        for name, v in (
            ("lookback", lookback),
            ("horizon", horizon),
            ("n_features", n_features),
            ("n_targets", n_targets),
        ):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if n_targets > n_features:
            raise ValueError(
                f"n_targets={n_targets} exceeds n_features={n_features}: "
                "targets must be the leading input channels"
            )
        self.lookback, self.horizon = int(lookback), int(horizon)
        self.n_features, self.n_targets = int(n_features), int(n_targets)
        self.seed = int(seed)
        self.window_norm = window_norm
        self.hparams: dict[str, Any] = dict(hparams)
        self.scaler: Scaler | None = None
        # per input channel, the least and greatest value of the training windows ([2, n_features]):
        # what the model has seen, against which a window's glitches are told (outliers.repair)
        self.input_bounds: np.ndarray | None = None
        self.version: str | None = None
        self.parent_version: str | None = None
        self.schema: dict[str, Any] = {}
        self._validate_hparams()

    @classmethod
    def all_defaults(cls) -> dict[str, Any]:
        """Hyper-parameter defaults of this class and its bases (subclass values win)."""
        merged: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            merged.update(klass.__dict__.get("defaults", {}))
        return merged

    # ---- public API -------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """Everything needed to build the same untrained model again."""
        return {
            "lookback": self.lookback,
            "horizon": self.horizon,
            "n_features": self.n_features,
            "n_targets": self.n_targets,
            "seed": self.seed,
            **({} if self.window_norm == "none" else {"window_norm": self.window_norm}),
            **self.hparams,
        }

    @property
    def is_fitted(self) -> bool:
        return self.scaler is not None

    def clone(self, **overrides: Any) -> BaseForecaster:
        """An untrained copy with the same hyper-parameters, ``overrides`` replaced (a retrain's start)."""
        new = type(self)(**{**self.config, **overrides})
        new.schema = dict(self.schema)
        return new

    def fit(
        self, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None = None
    ) -> FitReport:
        """Train from scratch on windows ``X`` → targets ``Y`` (``val``: early stopping / model choice)."""
        self._settle_norm()
        self.input_bounds = None
        X, Y, val = self._checked(X, Y, val)
        self.scaler = self._fit_scaler(X)
        return self._timed(self._fit, X, Y, val)

    def fit_warm(
        self,
        parent: BaseForecaster,
        X: np.ndarray,
        Y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> FitReport:
        """Continue training from fitted ``parent``'s learned state on new windows (a warm retrain).

        This model's own hyper-parameters set the work (e.g. a few epochs, some more boosting
        rounds); ``parent`` is left untouched. The parent's scaler is kept: its weights are in
        those units. Models with ``supports_warm`` False raise ``NotImplementedError``.
        """
        if not self.supports_warm:
            raise NotImplementedError(f"{self.kind} cannot continue training a fitted model; fit it cold")
        self._settle_norm(parent.window_norm)
        if type(parent) is not type(self) or not parent.is_fitted:
            raise ValueError(
                f"{self.kind}: fit_warm needs a fitted {self.kind} parent, got "
                f"{'a fitted' if parent.is_fitted else 'an unfitted'} {parent.kind}"
            )
        if (parent.lookback, parent.horizon, parent.n_features, parent.n_targets, parent.window_norm) != (
            self.lookback,
            self.horizon,
            self.n_features,
            self.n_targets,
            self.window_norm,
        ):
            raise ValueError(f"{self.kind}: fit_warm needs a parent with the same shapes and window_norm")
        self.input_bounds = parent.input_bounds
        X, Y, val = self._checked(X, Y, val)
        self.scaler = parent.scaler
        return self._timed(lambda x, y, v: self._fit_warm(parent, x, y, v), X, Y, val)

    def fit_closed_form(
        self, X: np.ndarray, Y: np.ndarray, parent: BaseForecaster | None = None
    ) -> FitReport:
        """Solve the fit in closed form in one pass over the windows (models with ``supports_closed_form``).

        With a fitted ``parent`` its scaler is kept; a model may also shrink the solution towards its
        weights (AR-Net with a fixed ``ridge``).
        """
        if not self.supports_closed_form:
            raise NotImplementedError(f"{self.kind} has no closed-form fit; fit it by training")
        self._settle_norm(None if parent is None else parent.window_norm)
        self.input_bounds = None if parent is None else parent.input_bounds
        X, Y, _ = self._checked(X, Y, None)
        self.scaler = parent.scaler if parent is not None else self._fit_scaler(X)
        return self._timed(lambda x, y, _v: self._fit_closed_form(x, y, parent), X, Y, None)

    def _fit_closed_form(self, X: np.ndarray, Y: np.ndarray, parent: BaseForecaster | None) -> FitReport:
        raise NotImplementedError(f"{self.kind} has no closed-form fit")

    def continues(self, parent: BaseForecaster) -> bool:
        """Whether a warm fit of this recipe may continue ``parent``: one that would grow a model past
        the size a cold fit may reach (a booster's rounds) starts cold instead. Every other kind may."""
        return True

    def warm_hparams(self) -> dict[str, Any]:
        """Hyper-parameter overrides for a warm retrain of this recipe (less work than a cold fit)."""
        return {}

    def refit_hparams(self, report: FitReport, windows: int) -> dict[str, Any]:
        """Hyper-parameters for a fit without validation data, on ``windows`` training windows, that
        does the work ``report`` (a validated fit on fewer of them) found best."""
        return {}

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Forecasts ``[B, horizon, n_targets]`` in the original units."""
        X = self._inputs(X)
        return self._original_units(X, self._predict(self._scaled(X)))

    def embed(self, X: np.ndarray) -> np.ndarray:
        """A fixed-width representation ``[B, d]`` of each window (the error memory's key)."""
        return np.ascontiguousarray(self._embed(self._prepare(X)), dtype=np.float32)

    def predict_embed(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(predict(X), embed(X))`` in one pass where the model can share one (the serving call with
        the error memory on: a network's key is an intermediate of its forecast)."""
        X = self._inputs(X)
        out, keys = self._predict_embed(self._scaled(X))
        return self._original_units(X, out), np.ascontiguousarray(keys, dtype=np.float32)

    def _original_units(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Scaled model outputs for windows ``X`` back in the targets' units, anchors added back."""
        out = self.scaler.head(self.n_targets).inverse(out)  # type: ignore[union-attr]
        if self.window_norm == "none":
            return out
        return out * self.output_scale(X)[:, None, :] + self._anchor(X)[:, None, :]

    def save(self, path: str | Path) -> Path:
        """Write manifest + weights to ``path`` atomically (temp dir, then rename)."""
        if not self.is_fitted:
            raise RuntimeError(f"cannot save an unfitted {self.kind} model: call fit() first")
        with atomic_directory(path) as tmp:
            self._save_weights(tmp)
            manifest = seal({**self.manifest(), "files": file_digests(tmp)})
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return Path(path)

    def manifest(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "kind": self.kind,
            "config": self.config,
            "scaler": self.scaler.to_dict() if self.scaler else None,
            "input_bounds": None if self.input_bounds is None else self.input_bounds.tolist(),
            "schema": self.schema,
            "version": self.version,
            "parent_version": self.parent_version,
            "created_at": datetime.now(UTC).isoformat(),
            "libraries": library_versions(),
        }

    # ---- for subclasses -----------------------------------------------------------------
    def _validate_hparams(self) -> None:  # noqa: B027  (an optional hook: most models have nothing to check)
        """Check (and normalise) ``self.hparams`` once, at the end of ``__init__``.

        Raise ``ValueError`` prefixed with the model ``kind``; may keep what it derives (e.g.
        typed sizes) as attributes. An override calls ``super()._validate_hparams()`` first.
        """

    @abstractmethod
    def _fit(self, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None) -> FitReport: ...

    def _fit_warm(
        self, parent: BaseForecaster, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None
    ) -> FitReport:
        """Continue from ``parent``'s state on scaled arrays; models with ``supports_warm`` override it."""
        raise NotImplementedError(f"{self.kind} cannot continue training a fitted model")

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _embed(self, X: np.ndarray) -> np.ndarray: ...

    def _predict_embed(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forecasts and keys of scaled windows; a network whose key is part of its forecast overrides it."""
        return self._predict(X), self._embed(X)

    @abstractmethod
    def _save_weights(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_weights(self, directory: Path) -> None: ...

    # ---- helpers --------------------------------------------------------------------------
    def _checked(
        self, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Checked training (and validation) windows, relative to their anchors under ``window_norm``;
        the training windows' values widen :attr:`input_bounds` (a warm fit's parent's, else none)."""
        X = check_windows(X, self.lookback, self.n_features)
        Y = check_targets(Y, X.shape[0], self.horizon, self.n_targets)
        self.input_bounds = widened(self.input_bounds, X)
        if val is not None:
            Xv = check_windows(val[0], self.lookback, self.n_features, name="val X")
            Yv = check_targets(val[1], Xv.shape[0], self.horizon, self.n_targets, name="val Y")
            val = (self._relative(Xv), self._relative_targets(Xv, Yv))
        return self._relative(X), self._relative_targets(X, Y), val

    def _relative_targets(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Targets ``Y`` in the units of their windows ``X`` (clipped under "standard", see output_scale)."""
        out = (Y - self._anchor(X)[:, None, :]) / self.output_scale(X)[:, None, :]
        return np.clip(out, -STANDARD_CLIP, STANDARD_CLIP) if self.window_norm == "standard" else out

    def _fit_scaler(self, X: np.ndarray) -> Scaler:
        """The scaler of relative windows ``X``. Under "delta" their last step, which carries the
        level, is left out: the lags and the targets are then scaled by how the series moves, not
        by how far from zero it sits (a counter at 1e12 would otherwise scale its changes to ~1e-6,
        too small for a tree to split on)."""
        return Scaler.fit(X[:, :-1] if self.window_norm == "delta" and self.lookback > 1 else X)

    def _timed(
        self, fit: Any, X: np.ndarray, Y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None
    ) -> FitReport:
        """Scale the (relative) windows with ``self.scaler``, run ``fit`` on them and time it."""
        scaled_val = None if val is None else (self.scaler.transform(val[0]), self._scale_y(val[1]))  # type: ignore[union-attr]
        t0, c0 = time.perf_counter(), time.process_time()
        report = fit(self.scaler.transform(X), self._scale_y(Y), scaled_val)  # type: ignore[union-attr]
        report.wall_seconds = time.perf_counter() - t0
        report.cpu_seconds = time.process_time() - c0
        return report

    @property
    def level_norm(self) -> str:
        """What ``window_norm: auto`` becomes over series of like scales: ``none`` for a model that
        extrapolates, ``delta`` for one that cannot forecast beyond the levels it was trained on."""
        return "none" if self.extrapolates else "delta"

    def _settle_norm(self, parent: str | None = None) -> None:
        """A fit decides ``window_norm: auto`` if nobody has (the loop does, from its series' scales):
        as its parent did, else :attr:`level_norm` (windows of one series, or of unknown ones)."""
        if self.window_norm == "auto":
            self.window_norm = parent or self.level_norm

    def _anchor(self, X: np.ndarray) -> np.ndarray:
        """Per window, the level ``window_norm`` removes from the targets ``[B, n_targets]`` (zeros for none).

        "last" is the window's last value (NLinear), "mean" and "standard" its mean (RevIN; standard
        also divides by the window's spread): the model then learns changes relative to the window,
        so it can follow a level it never saw.
        """
        targets = X[:, :, : self.n_targets]
        if self.window_norm in ("last", "delta"):
            return targets[:, -1, :]
        if self.window_norm in ("mean", "standard"):
            return targets.mean(axis=1)
        return np.zeros((X.shape[0], self.n_targets), dtype=np.float32)

    def output_scale(self, X: np.ndarray) -> np.ndarray:
        """Per window, what the targets are divided by ``[B, n_targets]``: the window's standard
        deviation under "standard", else ones. One model then serves series of any scale alike, and
        the error memory stores its residuals in these units so that series of different scales can
        share it. A window that does not move (all zeros of a sparse count, a stuck sensor) has no
        scale to tell: it is divided by 1, and the training targets are clipped (``STANDARD_CLIP``)
        so that the step after it cannot dominate a fit."""
        if self.window_norm != "standard":
            return np.ones((X.shape[0], self.n_targets), dtype=np.float32)
        targets = X[:, :, : self.n_targets].astype(np.float64)
        sd = targets.std(axis=1)
        still = sd <= 1e-6 * (np.abs(targets).mean(axis=1) + 1e-12)
        return np.where(still, 1.0, sd).astype(np.float32)

    def _relative(self, X: np.ndarray) -> np.ndarray:
        """``X`` with each window's anchor subtracted from (and spread divided out of) its target channels."""
        if self.window_norm == "none":
            return X
        out = X.copy()
        out[:, :, : self.n_targets] -= self._anchor(X)[:, None, :]
        out[:, :, : self.n_targets] /= self.output_scale(X)[:, None, :]
        if self.window_norm == "delta":  # the last step, zero once relative, carries the level instead
            out[:, -1, : self.n_targets] = X[:, -1, : self.n_targets]
        return out

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        return self._scaled(self._inputs(X))

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        """Checked windows, their glitches beyond what training saw repaired
        (:func:`~adaptcast.forecast.outliers.repair`): a window holding a sensor's 1e12 is read as
        if it held its neighbours' median."""
        X = check_windows(X, self.lookback, self.n_features)
        return X if self.input_bounds is None else repair(X, self.input_bounds)

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        """Checked windows as the model reads them: relative to their anchors, standardised."""
        if not self.is_fitted:
            raise RuntimeError(f"{self.kind} model is not fitted: call fit() or load a checkpoint first")
        return self.scaler.transform(self._relative(X))  # type: ignore[union-attr]

    def _scale_y(self, Y: np.ndarray) -> np.ndarray:
        return self.scaler.head(self.n_targets).transform(Y)  # type: ignore[union-attr]


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("adaptcast", "torch", "pytorch-lightning", "xgboost", "ncps", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def _check_hparam_type(kind: str, name: str, value: Any, default: Any) -> None:
    """Refuse a value of the wrong kind for a numeric, boolean or list hyper-parameter, naming it.

    ``None`` passes: several sizes take it to mean "all" or "off" (``epoch_samples``, ``max_minutes``).
    """
    if value is None:
        return
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)):
        ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(default, list):
        ok, want = isinstance(value, list), "a JSON list such as [64, 32]"
    else:
        return  # strings and None defaults: the model's own checks know what they accept
    if not ok:
        raise ValueError(
            f"{kind}: hyper-parameter {name!r} must be {want}, got {value!r} (default {default!r})"
        )


FORECASTERS: dict[str, type[BaseForecaster]] = {}


def register(cls: type[BaseForecaster]) -> type[BaseForecaster]:
    """Class decorator adding a model to :data:`FORECASTERS` under its ``kind``."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__} must set a non-empty `kind`")
    FORECASTERS[cls.kind] = cls
    return cls


def create_forecaster(kind: str, **config: Any) -> BaseForecaster:
    """Build an untrained model: ``create_forecaster("arnet", lookback=48, horizon=12, ...)``."""
    try:
        cls = FORECASTERS[kind]
    except KeyError:
        raise ValueError(
            f"unknown model kind {kind!r}; choose one of: {', '.join(sorted(FORECASTERS))}"
        ) from None
    return cls(**config)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Parse and check ``manifest.json`` of a saved model, naming the file on any problem."""
    mpath = Path(path) / MANIFEST
    try:
        manifest = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{mpath}: no manifest; is {path} a saved adaptcast model directory?"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{mpath}: corrupted manifest ({exc})") from None
    if not isinstance(manifest, dict) or "kind" not in manifest or "config" not in manifest:
        raise ValueError(f"{mpath}: manifest lacks 'kind' or 'config'")
    fmt = manifest.get("format")
    if fmt not in READABLE_FORMATS:
        raise ValueError(
            f"{mpath}: manifest format {fmt!r} is not one this adaptcast reads "
            f"({', '.join(map(str, READABLE_FORMATS))})"
        )
    if fmt >= 2:
        check_seal(manifest, mpath)
        if not isinstance(manifest.get("files"), dict):
            raise ValueError(f"{mpath}: manifest lacks its file list")
    return manifest


def load_forecaster(path: str | Path) -> BaseForecaster:
    """Load a model saved with ``save``; weights are read without pickle."""
    manifest = read_manifest(path)
    model = create_forecaster(manifest["kind"], **manifest["config"])
    if manifest.get("scaler") is None:
        raise ValueError(f"{Path(path) / MANIFEST}: no scaler recorded; the checkpoint is incomplete")
    model.scaler = Scaler.from_dict(manifest["scaler"])
    bounds = manifest.get("input_bounds")  # absent from models saved before it was kept
    if bounds is not None:
        try:
            model.input_bounds = np.asarray(bounds, dtype=np.float64).reshape(2, model.n_features)
        except (TypeError, ValueError):
            raise ValueError(
                f"{Path(path) / MANIFEST}: input_bounds is not two rows of {model.n_features} numbers"
            ) from None
    model.schema = manifest.get("schema") or {}
    model.version = manifest.get("version")
    model.parent_version = manifest.get("parent_version")
    verify_files(Path(path), manifest.get("files", {}))
    try:
        model._load_weights(Path(path))
    except (FileNotFoundError, ValueError):
        raise
    except Exception as exc:  # torch/xgboost raise many types on truncated files
        raise ValueError(
            f"{path}: cannot load {manifest['kind']} weights ({type(exc).__name__}: {exc})"
        ) from exc
    return model

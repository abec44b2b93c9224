"""The loop a configuration describes: one assembly for the embedded run, backtest and Kafka worker."""

from __future__ import annotations

import time
from collections.abc import Callable

from adaptcast.drift.compute import ComputeLedger
from adaptcast.forecast.base import BaseForecaster, create_forecaster
from adaptcast.streams.config import Config
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.metrics import Metrics
from adaptcast.streams.retrain import (
    AUTO_EARLY_REFIT_CLOSED_FORM,
    AUTO_GROWTH,
    AUTO_GROWTH_OFTEN,
    Trainer,
    make_policy,
    solves_closed_form,
)


def template_from_config(cfg: Config) -> BaseForecaster:
    """The untrained model the ``model`` section describes (what every retrain clones)."""
    m = cfg.model
    try:
        return create_forecaster(
            m.kind,
            lookback=m.lookback,
            horizon=m.horizon,
            n_features=len(m.channels),
            n_targets=len(m.targets),
            seed=m.seed,
            **{"window_norm": "auto", **m.params},  # the loop standardises windows of series of unlike scales
        )
    except TypeError as exc:
        raise ValueError(f"model.params: {exc}") from None


def misfit(model: BaseForecaster, cfg: Config) -> str | None:
    """What stops a trained ``model`` serving the loop ``cfg`` describes, or None when nothing does.

    The loop cuts windows, keeps forecasts and clones retrains by the configuration, so the model's
    kind, lookback, horizon and channel counts must be the configuration's (a model of another
    lookback fails on its first window; one of another kind would be replaced by a clone of this one).
    """
    m = cfg.model
    pairs = (
        ("model.kind", model.kind, m.kind),
        ("model.lookback", model.lookback, m.lookback),
        ("model.horizon", model.horizon, m.horizon),
        ("input channels", model.n_features, len(m.channels)),
        ("targets", model.n_targets, len(m.targets)),
    )
    diffs = [f"{name} {has} (configured: {wants})" for name, has, wants in pairs if has != wants]
    return "; ".join(diffs) or None


def _auto(value: float | str | None, chosen: float | None) -> float | None:
    """A setting as configured, or for ``auto`` (its one text value) the value chosen for this model kind."""
    return chosen if isinstance(value, str) else value


def build_loop(
    cfg: Config,
    *,
    metrics: Metrics | None = None,
    trainer_factory: Callable[[ComputeLedger], Trainer] | None = None,
    on_swap: Callable[[BaseForecaster], str | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ForecastLoop:
    """The loop a configuration describes, for every front end: untrained model, policy, error memory."""
    m, a = cfg.model, cfg.adaptation
    ledger = ComputeLedger()
    template = template_from_config(cfg)
    closed_form = solves_closed_form(a.refit_mode, template)
    growth = _auto(a.growth, AUTO_GROWTH_OFTEN if closed_form or not template.extrapolates else AUTO_GROWTH)
    early = _auto(a.early_refit_ratio, AUTO_EARLY_REFIT_CLOSED_FORM if closed_form else None)
    return ForecastLoop(
        template,
        m.channels,
        policy=make_policy(
            a.policy,
            a.window,
            m.lookback,
            m.horizon,
            a.history,
            defer=a.defer_rows,
            growth=growth,
            min_growth=0 if closed_form else None,  # a one-pass least-squares refit costs next to nothing
            refit_mode=a.refit_mode,
            early_refit_ratio=early,
        ),
        refit=a.refit,
        validate_routine=a.validate_routine,
        memory={"seed": m.seed, **a.memory_params} if a.memory else None,
        memory_gate=a.memory_gate,
        intervals=cfg.intervals.params(),
        trainer=None if trainer_factory is None else trainer_factory(ledger),
        ledger=ledger,
        on_swap=on_swap,
        min_train_rows=a.min_train_rows,
        history=a.history,
        grid=cfg.grid.rules(m.lookback),
        max_batch=cfg.serving.max_batch,
        metrics=metrics,
        clock=clock,
    )

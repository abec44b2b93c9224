"""adaptcast.drift — adaptation components shared by the backtest and the live service.

Drift detectors (``update(x) -> bool``, ``drift_detected``, ``reset()``), the Variance
Horizon window rule, retrain policies, the ReLoop2 error memory and compute accounting.
numpy only; every stateful component has ``state_dict()``/``load_state_dict()`` and
:func:`save_state`/:func:`load_state` snapshot several of them without pickle.
"""

from .adwin import ADWIN
from .base import DriftDetector
from .compute import ComputeLedger, PhaseTotals
from .detectors import DETECTORS, detector_from_state, make_detector
from .feature import FeatureDrift
from .kswin import KSWIN
from .memory import ErrorMemory
from .page_hinkley import PageHinkley
from .performance import PerformanceDrift
from .policy import Action, Decision, Reason, RetrainPolicy, StepInfo, WindowRule
from .serialize import load_state, save_state
from .variance_horizon import VarianceHorizon

__all__ = [
    "ADWIN",
    "DETECTORS",
    "KSWIN",
    "Action",
    "ComputeLedger",
    "Decision",
    "DriftDetector",
    "ErrorMemory",
    "FeatureDrift",
    "PageHinkley",
    "PerformanceDrift",
    "PhaseTotals",
    "Reason",
    "RetrainPolicy",
    "StepInfo",
    "VarianceHorizon",
    "WindowRule",
    "detector_from_state",
    "load_state",
    "make_detector",
    "save_state",
]

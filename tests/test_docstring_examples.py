"""The examples in docstrings run as written (River runs its docstring examples as tests too).

Every module whose source holds a ``>>>`` example is collected, so a new example is tested without
being listed here; the public entry points below must keep theirs.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"adaptcast": "adaptcast", "forecast": "adaptcast.forecast", "streams": "adaptcast.streams"}
PACKAGES |= {"drift": "adaptcast.drift", "deploy": "adaptcast.deploy"}
# what a newcomer meets first in Python: the package, a model, the loop, detectors, memory, policies
MUST_HAVE = {
    "adaptcast",
    "adaptcast.forecast.base",
    "adaptcast.streams.loop",
    "adaptcast.drift.adwin",
    "adaptcast.drift.page_hinkley",
    "adaptcast.drift.performance",
    "adaptcast.drift.memory",
    "adaptcast.drift.policy",
}


def module_name(path: Path) -> str:
    """``drift/adwin.py`` → ``adaptcast.drift.adwin`` (pyproject's package-dir mapping)."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


WITH_EXAMPLES = sorted(
    module_name(p)
    for top in PACKAGES
    for p in (ROOT / top).rglob("*.py")
    if "__pycache__" not in p.parts and ">>> " in p.read_text(encoding="utf-8")
)


def test_the_entry_points_have_examples():
    assert not MUST_HAVE - set(WITH_EXAMPLES), f"no example in {sorted(MUST_HAVE - set(WITH_EXAMPLES))}"


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_examples_run_as_written(name: str):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name}: its '>>> ' lines are not docstring examples"
    assert result.failed == 0, (
        f"{name}: {result.failed} of {result.attempted} example lines failed (output above)"
    )

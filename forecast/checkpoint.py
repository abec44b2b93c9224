"""Versioned checkpoint store: one directory per model version, newest loaded first, corrupt ones skipped."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path

from adaptcast.forecast.base import BaseForecaster, load_forecaster

log = logging.getLogger(__name__)
VERSION_RE = re.compile(r"^(\d{6})-(\d{8}T\d{6}Z)$")


class CheckpointStore:
    """Model versions under ``root`` as ``<counter:06d>-<UTC yyyymmddTHHMMSSZ>`` directories (sortable).

    Each version is written by :meth:`BaseForecaster.save` (temp dir + rename, so a crash never
    leaves a half-written version) and carries its manifest: kind, config, schema, scaler,
    library versions, created-at and parent version. One writer per store.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.skipped: list[tuple[str, str]] = []  # (version, error) passed over by the last load()

    def versions(self) -> list[str]:
        """All version ids, oldest first (temp and unrelated directories ignored)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and VERSION_RE.match(p.name))

    def latest(self) -> str | None:
        found = self.versions()
        return found[-1] if found else None

    def path(self, version: str) -> Path:
        if not VERSION_RE.match(version):
            raise ValueError(f"{version!r} is not a version id like 000001-20260101T000000Z")
        return self.root / version

    def save(self, model: BaseForecaster, parent: str | None = None) -> str:
        """Write ``model`` as a new version (recording ``parent``) and return its id."""
        last = self.latest()
        counter = int(last[:6]) + 1 if last else 1
        version = f"{counter:06d}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        old = (model.version, model.parent_version)
        model.version, model.parent_version = version, parent
        try:
            model.save(self.root / version)
        except BaseException:
            model.version, model.parent_version = old
            raise
        return version

    def load(self, version: str | None = None, fallback: bool = True) -> BaseForecaster:
        """Load ``version``, by default the latest (or, with ``fallback``, the newest readable one).

        Versions passed over are listed in :attr:`skipped` and logged as warnings. An explicit
        ``version`` is never substituted.
        """
        self.skipped = []
        if version is not None:
            return load_forecaster(self.path(version))
        candidates = self.versions()[::-1]
        if not candidates:
            raise FileNotFoundError(f"{self.root}: no model versions in this checkpoint store")
        for v in candidates if fallback else candidates[:1]:
            try:
                model = load_forecaster(self.root / v)
            except (ValueError, FileNotFoundError) as exc:
                self.skipped.append((v, str(exc)))
                log.warning("checkpoint %s is unusable, trying the previous version: %s", v, exc)
                continue
            return model
        detail = "; ".join(f"{v}: {err}" for v, err in self.skipped)
        raise ValueError(f"{self.root}: no loadable model version ({detail})")

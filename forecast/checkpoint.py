"""Versioned checkpoint store: one directory per model version and a mark naming the one that serves."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from adaptcast.forecast.base import BaseForecaster, load_forecaster

log = logging.getLogger(__name__)
VERSION_RE = re.compile(r"^(\d{6})-(\d{8}T\d{6}Z)$")
SERVING = "serving.json"


class CheckpointStore:
    """Model versions under ``root`` as ``<counter:06d>-<UTC yyyymmddTHHMMSSZ>`` directories (sortable).

    Each version is written by :meth:`BaseForecaster.save` (temp dir + rename, so a crash never
    leaves a half-written version) and carries its manifest: kind, config, schema, scaler,
    library versions, created-at and parent version. ``serving.json`` marks the version every
    worker should serve (:meth:`mark_serving`) and keeps the marks before it, so a rollback can
    name the previous one. Several processes may share the store (a ReadWriteMany volume): new
    versions and marks are written under a lock file.
    """

    def __init__(self, root: str | Path, keep: int | None = None):
        self.root = Path(root)
        self.keep = keep  # versions kept by save() (None: all); the marked one is always kept
        self.skipped: list[tuple[str, str]] = []  # (version, error) passed over by the last load()
        self.refused: list[tuple[str, str]] = []  # of those, the ones load()'s ``refuse`` gave a reason for

    def _lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / ".lock"))

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
        with self._lock():
            last = self.latest()
            counter = int(last[:6]) + 1 if last else 1
            version = f"{counter:06d}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
            old = (model.version, model.parent_version)
            model.version, model.parent_version = version, parent
            if self.keep is not None:  # room first: the store never holds more than keep, even mid-save
                self._prune(max(self.keep - 1, 0), protect={parent or ""})
            try:
                model.save(self.root / version)
            except BaseException:
                model.version, model.parent_version = old
                raise
            if self.keep is not None:
                self._prune(self.keep, protect={version, parent or version})
        return version

    def _prune(self, keep: int, protect: set[str]) -> list[str]:
        """Delete all but the newest ``keep`` versions, never the marked one nor ``protect``; return them.

        Called under the lock, where no writer is mid-save: leftover temp dirs are crashed writers'.
        """
        for stale in self.root.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            marked = self.serving()
        except ValueError as exc:  # without a readable mark nothing can be known safe to delete
            log.warning("not pruning %s: %s", self.root, exc)
            return []
        versions = self.versions()
        old = [v for v in versions[: max(len(versions) - keep, 0)] if v != marked and v not in protect]
        for v in old:
            shutil.rmtree(self.root / v, ignore_errors=True)
        if old:
            log.info("pruned %d old model versions from %s (keeping %d)", len(old), self.root, keep)
        return old

    def marks(self) -> list[dict[str, Any]]:
        """Every serving mark, oldest first: ``{"version", "at", "reason"}``."""
        try:
            return json.loads((self.root / SERVING).read_text())["marks"]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.root / SERVING}: unreadable serving mark ({exc})") from None

    def serving(self) -> str | None:
        """The version marked serving, or None when nothing was marked."""
        marks = self.marks()
        return marks[-1]["version"] if marks else None

    def mark_serving(self, version: str, reason: str) -> BaseForecaster:
        """Mark ``version`` as the one to serve, once it loads; workers following the store swap to it.
        Returns the model it loaded."""
        model = load_forecaster(self.path(version))
        with self._lock():
            marks = [
                *self.marks(),
                {"version": version, "at": datetime.now(UTC).isoformat(), "reason": reason},
            ]
            tmp = self.root / f".{SERVING}.{os.getpid()}"
            tmp.write_text(json.dumps({"marks": marks}, indent=2))
            os.replace(tmp, self.root / SERVING)
        return model

    def load(
        self,
        version: str | None = None,
        fallback: bool = True,
        refuse: Callable[[BaseForecaster], str | None] | None = None,
    ) -> BaseForecaster:
        """Load ``version``: by default the one marked serving, else the latest.

        With ``fallback``, an unreadable default gives way to the newest readable version, and so
        does one ``refuse`` gives a reason for (e.g. a model the configuration no longer fits).
        Versions passed over are listed in :attr:`skipped` (those refused in :attr:`refused` too)
        and logged as warnings. An explicit ``version`` is never substituted.
        """
        self.skipped, self.refused = [], []
        if version is not None:
            return load_forecaster(self.path(version))
        newest_first = self.versions()[::-1]
        marked = self.serving()
        candidates = [marked, *(v for v in newest_first if v != marked)] if marked else newest_first
        if not candidates:
            raise FileNotFoundError(f"{self.root}: no model versions in this checkpoint store")
        for v in candidates if fallback else candidates[:1]:
            try:
                model = load_forecaster(self.root / v)
            except (ValueError, FileNotFoundError) as exc:
                self.skipped.append((v, str(exc)))
                log.warning("checkpoint %s is unusable, trying the previous version: %s", v, exc)
                continue
            why = None if refuse is None else refuse(model)
            if why is not None:
                self.skipped.append((v, why))
                self.refused.append((v, why))
                log.warning("checkpoint %s is passed over, trying the previous version: %s", v, why)
                continue
            return model
        detail = "; ".join(f"{v}: {err}" for v, err in self.skipped)
        raise ValueError(f"{self.root}: no loadable model version ({detail})")

"""Checkpoint integrity: the manifest lists every file's SHA-256 and seals itself with one over its own text.

A truncated or bit-flipped file, a missing one, or an edited manifest is refused at load with the
file named, instead of serving weights that merely happen to parse.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

SEAL = "checksum"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(directory: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "bytes"}}`` of every file under ``directory``."""
    return {
        f.relative_to(directory).as_posix(): {"sha256": _sha256(f), "bytes": f.stat().st_size}
        for f in sorted(directory.rglob("*"))
        if f.is_file()
    }


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != SEAL}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def seal(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its own checksum added."""
    return {**manifest, SEAL: hashlib.sha256(_canonical(manifest)).hexdigest()}


def check_seal(manifest: dict[str, Any], where: Path) -> None:
    """Raise ValueError naming ``where`` when the manifest's text no longer matches its checksum."""
    if manifest.get(SEAL) != hashlib.sha256(_canonical(manifest)).hexdigest():
        raise ValueError(f"{where}: manifest checksum mismatch (the file was altered or damaged)")


def verify_files(directory: Path, files: dict[str, dict[str, Any]]) -> None:
    """Raise naming the first file that is missing, or whose size or SHA-256 differs from the manifest."""
    for name, expected in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; the checkpoint is incomplete")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise ValueError(
                f"{path}: truncated or extended ({size} bytes, manifest says {expected['bytes']})"
            )
        if _sha256(path) != expected["sha256"]:
            raise ValueError(f"{path}: checksum mismatch (corrupted)")

"""The launcher's one exception and the output tails its messages quote, so every failure says why."""

from __future__ import annotations


class KafkaLauncherError(RuntimeError):
    """A broker could not be resolved, started, reached or stopped; the message says why."""


def tail_text(text: str, lines: int) -> str:
    """Last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip().splitlines()[-lines:])

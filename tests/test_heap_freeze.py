"""The worker's start-up heap freeze (streams/service.py): old objects leave the collector, new ones stay."""

from __future__ import annotations

import gc
import weakref

from adaptcast.streams.service import freeze_startup_heap


class _Node:
    """A reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_objects_alive_at_start_up_are_frozen_and_later_cycles_are_still_collected():
    kept = _Node()
    freeze_startup_heap()
    try:
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # frozen: no collection walks it
        later = _Node()
        ref = weakref.ref(later)
        del later
        gc.collect()
        assert ref() is None
    finally:
        gc.unfreeze()

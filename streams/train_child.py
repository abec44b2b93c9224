"""Entry point of the retraining child process: lower its priority first, then import the models.

Importing torch and Lightning costs seconds of CPU; after ``os.nice`` that cost, too, yields to serving.
The child runs in a session of its own. Where the kernel groups processes by session for
scheduling (``/proc/self/autogroup``, on desktop and VM hosts outside containers), a process's nice
value only orders it within its group, so the child lowers its group's priority as well.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

TRAIN_NICE = 10  # how much lower the child's scheduling priority is than the worker's


def main() -> None:
    with contextlib.suppress(OSError):
        os.nice(TRAIN_NICE)
    with contextlib.suppress(OSError):  # absent, or not writable: containers schedule by cgroup instead
        Path("/proc/self/autogroup").write_text(f"{TRAIN_NICE}\n")
    from adaptcast.streams.train_process import child_main  # imported after the nice: see above

    child_main(sys.argv[1:])


if __name__ == "__main__":
    main()

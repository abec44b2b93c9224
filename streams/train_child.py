"""Entry point of the retraining child process: lower its priority first, then import the models.

Importing torch and Lightning costs seconds of CPU; after ``os.nice`` that cost, too, yields to serving.
Ctrl-C reaches the whole process group: the child ignores it, and ends when the worker closes its
stdin (or kills it), so a stopping worker finishes its batch without a trace from the child.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

TRAIN_NICE = 10  # how much lower the child's scheduling priority is than the worker's


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(TRAIN_NICE)
    from adaptcast.streams.train_process import child_main  # imported after the nice: see above

    child_main(sys.argv[1:])


if __name__ == "__main__":
    main()

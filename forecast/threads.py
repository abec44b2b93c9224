"""How many CPU threads torch's intra-op kernels use, for the whole process or for one block."""

from __future__ import annotations

from contextlib import ExitStack

import torch


def set_torch_threads(n: int | None) -> ExitStack:
    """Set torch's intra-op CPU threads to ``n`` now (``None``: leave them alone).

    Called plainly it holds for the rest of the process (the live worker); as
    ``with set_torch_threads(n):`` the previous count comes back when the block ends (one fit).
    """
    restore = ExitStack()
    before = torch.get_num_threads()
    if n is not None and int(n) != before:
        torch.set_num_threads(int(n))
        restore.callback(torch.set_num_threads, before)
    return restore

"""set_torch_threads: a plain call sets the count; a ``with`` block restores the previous one."""

from __future__ import annotations

import torch

from adaptcast.forecast.threads import set_torch_threads


def test_block_restores_and_plain_call_persists():
    before = torch.get_num_threads()
    try:
        with set_torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == before
        with set_torch_threads(None):
            assert torch.get_num_threads() == before
        set_torch_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)

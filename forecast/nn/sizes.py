"""The size hyper-parameters of an encoder-decoder transformer, checked and typed in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def transformer_sizes(kind: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """``d_model``, ``n_heads``, ``d_ff``, ``e_layers``, ``d_layers`` as ints and ``dropout`` as a float.

    The keyword arguments every transformer network here takes; raises ``ValueError`` (prefixed
    with the model ``kind``) when the heads do not split ``d_model`` or a stack has no layers.
    """
    sizes = {name: int(hparams[name]) for name in ("d_model", "n_heads", "d_ff", "e_layers", "d_layers")}
    if sizes["e_layers"] < 1 or sizes["d_layers"] < 1:
        raise ValueError(f"{kind}: e_layers and d_layers must be >= 1")
    d_model, n_heads = sizes["d_model"], sizes["n_heads"]
    if d_model % n_heads:
        raise ValueError(f"{kind}: d_model={d_model} must be divisible by n_heads={n_heads}")
    return {**sizes, "dropout": float(hparams["dropout"])}

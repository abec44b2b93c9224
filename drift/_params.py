"""Constructor parameters read from ``__init__``'s signature (River's convention), never hand-listed."""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

__all__ = ["Parametrised"]


@cache
def _param_names(cls: type) -> tuple[str, ...]:
    """Names of ``cls.__init__``'s parameters after ``self`` (no ``*args``/``**kwargs``)."""
    sig = inspect.signature(cls.__init__)
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return tuple(p.name for p in list(sig.parameters.values())[1:] if p.kind not in skip)


class Parametrised:
    """Mixin: ``params()`` and ``repr`` from ``__init__``, which stores each argument as ``self.<name>``."""

    def params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-able): ``type(x)(**x.params())`` is an untrained clone."""
        out = {}
        for name in _param_names(type(self)):
            try:
                out[name] = getattr(self, name)
            except AttributeError:
                raise TypeError(
                    f"{type(self).__name__}.__init__ takes {name!r} but does not store self.{name}"
                ) from None
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

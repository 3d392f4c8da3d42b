"""``torch.no_grad`` for in-place initialisers, free when gradients are already off.

``@torch.no_grad()`` builds and enters a context object on every call, which costs more than filling a small
layer, and :func:`detinit.initialize` already runs under ``no_grad`` when it calls a fill per parameter. This
decorator enters ``no_grad`` only where grad mode is on, which is the same grad mode for the body either way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")


def no_grad(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with gradients off, as ``@torch.no_grad()`` does.

    >>> @no_grad
    ... def fill_(t):
    ...     return t.fill_(1.0)
    >>> w = torch.zeros(2, requires_grad=True)
    >>> fill_(w).requires_grad, torch.is_grad_enabled()
    (True, True)
    """

    @functools.wraps(fn)
    def without_grad(*args: P.args, **kwargs: P.kwargs) -> R:
        if not torch.is_grad_enabled():
            return fn(*args, **kwargs)
        with torch.no_grad():
            return fn(*args, **kwargs)

    return without_grad

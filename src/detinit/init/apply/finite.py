"""After the fills: an output that the model computed as finite numbers before the initialisation and computes as
inf or NaN after it, on the same example input, is a network no one can train. :func:`detinit.initialize` says so
(a note in the report and a warning) and names the first module that turned finite inputs into non-finite outputs.

The known case: a kernel that is undefined where a deterministic rule puts every input. YOSO's attention takes
``acos`` of the cosine of a query and a key; ZerO's ``W_Q = W_K = I`` makes a token's query and key equal, their
normalised product 1 up to rounding, and ``acos(1 + 2^-23)`` is NaN. Where the rule was a default and the scheme
has a fallback (:meth:`~detinit.init.schemes.Scheme.finite_fallback`, ZerO's ``attention="kv_zero"``),
:func:`detinit.initialize` initialises again with it and keeps that if the output is then finite.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from ..roles.trace import eval_mode, finite_output_keys, parameters_kept, run_model

NON_FINITE_NOTE = "after initialisation the model's output"  # how the note begins


def non_finite_output_note(model: nn.Module, example: object, finite_before: list[str], kept: list[str]) -> str | None:
    """Run ``model`` on ``example`` (eval mode, no gradients, the parameters ``kept`` restored after) and say which
    of the outputs ``finite_before`` are no longer finite, and where that starts; ``None`` when none."""
    with torch.no_grad(), eval_mode(model), parameters_kept(model, kept), first_non_finite(model) as culprit:
        output = run_model(model, example)
    now = set(finite_output_keys(output))
    lost = [key or "the output" for key in finite_before if key not in now]
    if not lost:
        return None
    where = (
        f"the first module whose output is not finite on finite inputs is {culprit[0]} ({culprit[1]})"
        if culprit
        else "no single module turns finite inputs into non-finite outputs"
    )
    return (
        f"{NON_FINITE_NOTE} {', '.join(lost[:3])} is not finite on the example input (it was "
        f"before): {where}. A rule of this scheme puts that module's inputs where its computation is undefined "
        "(e.g. equal query and key projections, W_Q = W_K, under a kernel that takes acos of their cosine); "
        "give that module's layers other roles (roles=) or another option of the scheme (zero: attention='kv_zero')"
    )


@contextmanager
def first_non_finite(model: nn.Module) -> Iterator[list[str]]:
    """While the block runs, ``[name, class]`` of the first module (in the order modules finish: innermost first)
    whose output holds inf or NaN while every floating-point input it was given is finite; empty if none."""
    names = {id(m): name for name, m in model.named_modules()}
    found: list[str] = []

    def hook(module: nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        if found:
            return
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
        outputs = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if any(not bool(torch.isfinite(t).all()) for t in outputs) and all(
            bool(torch.isfinite(t).all()) for t in inputs
        ):
            found.extend([names.get(id(module)) or "the model", type(module).__name__])

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in model.modules()]
    try:
        yield found
    finally:
        for h in handles:
            h.remove()

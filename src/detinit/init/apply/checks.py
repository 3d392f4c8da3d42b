"""What :func:`detinit.initialize` refuses before it writes anything: a scheme that needs what the model does
not have, a ``device=`` that cannot be honoured, a meta parameter no rule fills; and when it traces."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from ... import hooks
from ..roles.example_inputs import Example, example_for
from ..roles.vocabulary import RoleSource
from ..schemes.base import Scheme
from .plan import Entry
from .report import FROZEN, UNKNOWN
from .sharded import parse_device


def check_gates(scheme: Scheme, model: nn.Module, modules: list[nn.Module]) -> None:
    """A scheme that gates every residual branch with a scalar at 0 needs the model's gates."""
    if scheme.policy.requires_gates and not any(hooks.is_residual_gate(m) for m in modules):
        raise ValueError(
            f"scheme {scheme.name!r} gates every residual branch with a scalar that starts at 0, but "
            f"{type(model).__name__} has no residual gates (detinit.nn.ScalarGate); build the model with "
            "gates (e.g. create_model(..., norm='none') or gate=True)"
        )


def check_scheme_applies(
    scheme: Scheme, model: nn.Module, modules: list[nn.Module], roles: Mapping[str, RoleSource]
) -> None:
    """Refuse an option or scheme that would do nothing on this model (instead of silently doing nothing):
    the scheme says what it needs (:meth:`~detinit.init.schemes.base.Scheme.check_model`); ``modules`` are the
    model's."""
    found = frozenset(r.role.partition(":")[0] for r in roles.values())
    scheme.check_model(type(model).__name__, found, modules)


def example_to_trace(
    model: nn.Module, modules: list[nn.Module], example_inputs: object | None, trace: bool | None
) -> Example:
    """The example input to trace with (``inputs=None`` for no tracing: see :func:`initialize`'s ``trace``) and
    what it assumed, or why a model its library describes could not be given one; ``modules`` are the model's."""
    if trace not in (None, True, False):
        raise ValueError(f"initialize: trace={trace!r} is not supported; trace must be None (auto), True or False")
    if trace is False:
        return Example(None)
    if example_inputs is not None:
        return Example(example_inputs)
    declares = any(callable(hooks.find_hook(m, hooks.ROLES_HOOK)) for m in modules)
    if trace is None and declares:
        return Example(None)
    found = example_for(model)
    if (found is None or found.inputs is None) and trace:
        why = f" ({found.note})" if found is not None and found.note else ""
        raise ValueError(
            f"initialize(trace=True): no example input for {type(model).__name__}{why}; pass example_inputs= (a "
            "tensor, a tuple of positional arguments or a dict of keyword arguments)"
        )
    return found if found is not None else Example(None)


def untraced_warning(model: nn.Module, example: Example) -> str | None:
    """The warning for a model its library describes but that could not be traced: ZerO's promises need the
    traced roles (which layer is the output, which ends a residual branch)."""
    if example.inputs is not None or not example.note:
        return None
    return (
        f"{type(model).__name__} was not traced ({example.note}): without the traced roles the output layer and "
        "the ends of the residual branches are not known, so a zero output and identity blocks are not promised; "
        "pass example_inputs= (a dict of the model's keyword arguments)"
    )


def check_materialisable(model: nn.Module, device: object, example_inputs: object | None, trace: bool | None) -> None:
    """``device=`` materialises a meta-device model: refuse a device that is not one, a model with no meta
    tensor, or one that would be traced."""
    parse_device(device)
    if not any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        raise ValueError(
            f"initialize(device=...) materialises a model built on the meta device; {type(model).__name__} has no "
            "meta tensor: move it with model.to(device) and call initialize without device="
        )
    if example_inputs is not None or trace:
        raise ValueError(
            "initialize(device=...): tracing runs the model, which a meta-device model cannot do; give the roles "
            "(detinit_roles(), roles=) and trace=False, or build the model on a real device to trace it"
        )


def refuse_unfilled_meta(model: nn.Module, entries: list[Entry]) -> None:
    """Every meta parameter must get a rule: anything else would be left as uninitialised memory."""
    meta = {name for name, p in model.named_parameters() if p.is_meta}
    unfilled = [f"{r.name} ({r.rule})" for r in entries if r.name in meta and r.rule in (UNKNOWN, FROZEN)]
    if unfilled:
        raise ValueError(
            "initialize(device=...): no rule fills " + ", ".join(unfilled) + "; on the meta device they hold no "
            "values to keep. Give them roles (roles=), a detinit_init_ hook, or requires_grad=True"
        )

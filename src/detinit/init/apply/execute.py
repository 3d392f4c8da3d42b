"""Writing the plan: each module's hook, or its rules, in module order (so random draws come in a fixed
order); the report entries of hooked modules say what the hook did."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ... import hooks
from ..schemes.base import Scheme
from .plan import Entry, ModulePlan, direct_parameters
from .report import FROZEN, UNKNOWN
from .sharded import write_


def execute(
    plans: list[ModulePlan], entries: list[Entry], scheme: Scheme, generator: torch.Generator, *, materialised: bool
) -> None:
    """Fill every planned parameter (:func:`~detinit.init.apply.sharded.write_`: a shard's rows alone where
    the parameter is a DTensor) and finish the entries of hooked modules. ``materialised``: the model was
    moved off the meta device after the plan, which replaced its parameters, so they are read again."""
    for plan in plans:
        params = direct_parameters(plan.module) if materialised else plan.params
        if not plan.hooked:
            for name, rule in plan.rules.items():
                _write(plan, entries, name, params[name], rule.fill, generator)
        else:
            _run_hook(plan, params, entries, scheme, generator)


def _write(
    plan: ModulePlan, entries: list[Entry], name: str, param: torch.Tensor, fill: object, generator: torch.Generator
) -> None:
    """Write one parameter; a fill that refuses it (a complex dtype, shared memory) is re-raised naming it."""
    try:
        write_(param, fill, generator)
    except (TypeError, ValueError) as err:
        index = plan.entries.get(name)
        full = entries[index].name if index is not None else name
        raise type(err)(f"initialize: parameter {full} ({type(plan.module).__name__}): {err}") from err


def _run_hook(plan: ModulePlan, params: dict, entries: list[Entry], scheme: Scheme, generator: torch.Generator) -> None:
    """The module's ``detinit_init_(scheme, generator)``: its ``{param: reason}``, or ``None`` to take the
    rules the resolver found."""
    reasons = getattr(plan.module, hooks.INIT_HOOK)(scheme, generator)
    if reasons is not None and not (isinstance(reasons, Mapping) and all(isinstance(k, str) for k in reasons)):
        raise ValueError(
            f"{type(plan.module).__name__}.{hooks.INIT_HOOK}() returned {reasons!r}; it must return None (use the "
            "standard rules) or a dict {parameter name: reason} of the parameters it initialised"
        )
    own = {**plan.params, **plan.entries}
    strangers = sorted(set(reasons or ()) - set(own))
    if strangers:
        raise ValueError(
            f"{type(plan.module).__name__}.{hooks.INIT_HOOK}() returned reasons for {', '.join(strangers)}, which "
            f"{'is' if len(strangers) == 1 else 'are'} not among the module's own parameters "
            f"({', '.join(own) or 'none'}); it may name only the parameters defined on the module itself"
        )
    for name, index in plan.entries.items():
        entry = entries[index]
        if entry.rule == FROZEN:
            continue
        if reasons is None and name in plan.rules:  # the hook declined: the standard rules
            rule = plan.rules[name]
            _write(plan, entries, name, params[name], rule.fill, generator)
            entries[index] = entry._replace(rule=rule.rule, why=rule.reason, evidence=rule.evidence, source="", note="")
        elif reasons is not None and name in reasons:
            entries[index] = entry._replace(rule="hook", why=str(reasons[name]), evidence="", source="", note="")
        else:
            why = f"{type(plan.module).__name__}.detinit_init_() did not initialise it"
            entries[index] = entry._replace(rule=UNKNOWN, why=why, evidence="", source="", note="")

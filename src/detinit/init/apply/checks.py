"""What :func:`detinit.initialize` refuses before it writes anything: a scheme that needs what the model does
not have, a ``device=`` that cannot be honoured, a meta parameter no rule fills; and when it traces."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ... import hooks
from ...devices import parse_device
from ...values import SEEDS, is_seed
from ..roles.example_inputs import Example, example_for
from ..roles.vocabulary import RoleSource
from ..schemes.base import Scheme
from .plan import Entry, ModulePlan
from .report import FROZEN, UNKNOWN


def check_arguments(roles: object, strict: object, generator: object, seed: object) -> None:
    """The arguments of :func:`~detinit.initialize` other than the model, the scheme options, ``trace`` and
    ``device`` (checked where they are used), before any work: each error names the argument, the value and
    what is allowed."""
    if roles is not None and not (
        isinstance(roles, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in roles.items())
    ):
        raise ValueError(
            f"initialize: roles={roles!r} is not supported; roles must be a mapping of module names to role names, "
            "e.g. {'fc': 'classifier'}"
        )
    if not isinstance(strict, bool):
        raise ValueError(f"initialize: strict must be True or False, got {strict!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"initialize: generator must be a torch.Generator or None, got {type(generator).__name__}")
    if not is_seed(seed):
        raise ValueError(
            f"initialize: seed={seed!r} is not supported; seed must be {SEEDS} (torch's CPU generator keeps the "
            "low 32 bits: seed 2**32 would draw what seed 0 draws)"
        )
    if generator is not None and seed != 0:
        raise ValueError(
            f"initialize: generator= and seed={seed} given together; the generator draws and the seed would be "
            "ignored: give one of them"
        )


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


def check_has_parameters(model: nn.Module) -> None:
    """A model with no parameters has nothing to initialise: calling ``initialize`` on it is a mistake (an
    activation or a container passed for the model), not a no-op to report as done."""
    if next(model.parameters(), None) is None:
        raise ValueError(
            f"initialize: {type(model).__name__} has no parameters to initialise; pass the model that holds the "
            "layers (initialize(model, ...), not one of its parameter-free parts)"
        )


BRANCH_ENDS = frozenset({"branch_last", "attn_out", "branch_last_norm", "layer_scale"})


def check_options_apply(
    model: nn.Module, options: Mapping[str, object], plans: list[ModulePlan], entries: list[Entry]
) -> None:
    """A scheme option given with an effect (``end_gain=30``, ``norm="paper"``, ``zero_init_last=True``, ...) that
    no planned parameter of this model would feel is refused, naming what the model lacks: the option would be
    ignored, and a run that says it used it would not have. Checked after the plan, before anything is written."""
    carriers = [entries[p.entries[n]].role for p in plans for n, rule in p.rules.items() if rule.end and n in p.entries]
    roles = {e.role.partition(":")[0] for e in entries}
    targets = {  # option -> (whether the given value acts at all, whether this model has what it acts on, what)
        "end_gain": (
            lambda v: v != 1,
            any(r != "classifier_norm" for r in carriers),
            "a norm or layer scale that starts a residual branch at 0 (under variant='paper' a branch's zero is "
            "on its last layer, which a gain does not compute)",
        ),
        "output_gain": (
            lambda v: v != 1,
            "classifier_norm" in carriers,
            "the norm before an output layer tied to the token embedding",
        ),
        "branch_end": (lambda v: v != 0, bool(roles & BRANCH_ENDS), "the last layer or scale of a residual branch"),
        "zero_init_last": (
            lambda v: v is True,
            bool(roles & BRANCH_ENDS),
            "the last layer or scale of a residual branch",
        ),
        "depth_scale": (
            lambda v: v is True,
            any("depth scale" in e.why for e in entries),
            "a layer of a residual branch of two or more layers before its last (Fixup's depth scale scales those)",
        ),
        "open_blocks": (
            lambda v: v == "entries",
            any("open_blocks=" in e.why for e in entries),
            "in a residual block whose branch ends on a norm (the first such block and those changing the width "
            "start on)",
        ),
        "branch_mixing": (
            lambda v: v is True,
            any("(branch_mixing)" in e.why for e in entries),
            "a square layer of a residual branch that ends on a norm (outside an entry block)",
        ),
        "norm": (
            lambda v: v != "orthonormal",
            any("hadamard" in e.rule for e in entries),
            "a Hadamard block (an expanding layer or a token table wider than its vocabulary); norm= scales those",
        ),
    }
    for option, (acts, found, what) in targets.items():
        if option in options and acts(options[option]) and not found:
            raise ValueError(
                f"scheme option {option}={options[option]!r} does nothing on {type(model).__name__}: no parameter is "
                f"{what}; drop the option"
            )


def example_to_trace(
    model: nn.Module, modules: list[nn.Module], example_inputs: object | None, trace: bool | None
) -> Example:
    """The example input to trace with (``inputs=None`` for no tracing: see :func:`initialize`'s ``trace``) and
    what it assumed, or why a model its library describes could not be given one; ``modules`` are the model's."""
    if trace not in (None, True, False):
        raise ValueError(f"initialize: trace={trace!r} is not supported; trace must be None (auto), True or False")
    if trace is False and example_inputs is not None:
        raise ValueError("initialize: example_inputs= given with trace=False would not be run; drop one of them")
    if trace is False:
        return Example(None)
    if example_inputs is not None:
        return Example(example_inputs)
    declares = any(hooks.callable_hook(m, hooks.ROLES_HOOK) is not None for m in modules)
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


def refuse_meta_without_device(model: nn.Module) -> None:
    """A meta-device parameter has no storage to fill: without ``device=`` it would stay on the meta device."""
    refuse_meta_parameters(
        model, "initialize", "pass device= (e.g. device='cpu') to materialise and initialise them there"
    )


def refuse_meta_parameters(model: nn.Module, fn: str, remedy: str) -> None:
    """A ``ValueError`` naming ``fn``, the first of ``model``'s meta-device parameters (which hold no values) and
    ``remedy``, if it has any."""
    meta = [name for name, p in model.named_parameters() if p.is_meta]
    if meta:
        more = f" and {len(meta) - 3} more" if len(meta) > 3 else ""
        raise ValueError(
            f"{fn}: {', '.join(meta[:3])}{more} of {type(model).__name__} are on the meta device, which holds "
            f"no values; {remedy}"
        )


def unknown_note(model: nn.Module, unknown: list[Entry]) -> str | None:
    """What the report says of parameters no rule fills: kept as they are. Non-finite values among them
    (uninitialised memory after ``to_empty()``, a broken checkpoint) are refused: keeping them is never right."""
    if not unknown:
        return None
    broken = []
    for entry in unknown:
        param = model.get_parameter(entry.name)
        if not param.is_meta and param.dtype.is_floating_point and not bool(torch.isfinite(param).all()):
            broken.append(entry.name)
    if broken:
        raise ValueError(
            f"initialize: no rule fills {', '.join(broken)}, and they hold NaN or infinite values (uninitialised "
            "memory after to_empty()?): give their modules roles (roles=), a detinit_init_ hook, or call their "
            "reset_parameters() before initialize"
        )
    names = ", ".join(f"{e.name} ({e.module_type})" for e in unknown[:4])
    more = f" and {len(unknown) - 4} more" if len(unknown) > 4 else ""
    kept = f"{len(unknown)} parameters, kept as they were" if len(unknown) > 1 else "1 parameter, kept as it was"
    return (
        f"no rule fills {kept}: {names}{more}; after to_empty() "
        "that is uninitialised memory. Give them roles (roles=) or a detinit_init_ hook; strict=True refuses them"
    )

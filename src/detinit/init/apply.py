"""Apply a scheme to any ``nn.Module``: :func:`initialize`.

Rules, per module owning parameters directly:

1. a module with a ``detinit_init_(scheme, generator)`` method initialises its
   own direct parameters (scalar gates, layers with their own recipe) and
   returns ``{param_name: reason}``, or ``None`` to let the rules below apply;
2. norm layers (BatchNorm, InstanceNorm, GroupNorm, LayerNorm, RMSNorm):
   weight 1, bias 0;
3. Linear / ConvNd / ConvTransposeNd / Embedding: the scheme's
   :class:`~detinit.init.schemes.WeightRule` for the module's role; bias 0;
4. anything else: reported as unknown and left unchanged (``strict=True``
   raises instead, before any parameter is written).

Parameters with ``requires_grad=False`` are left unchanged and reported as
``frozen``; a parameter shared by several modules is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

from .report import FROZEN, UNKNOWN, InitReport, ParamRecord
from .roles import collect_roles, layer_infos
from .schemes import LayerInfo, Scheme, get_scheme

NORM_TYPES = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*d, SyncBatchNorm, InstanceNorm*d
    nn.GroupNorm,
    nn.LayerNorm,
    nn.RMSNorm,
)

Action = Callable[[torch.Generator], object]


@dataclass
class _ModulePlan:
    """What will happen to one module's direct parameters."""

    name: str
    module: nn.Module
    hooked: bool
    rules: dict[str, tuple[str, str, Action]] = field(default_factory=dict)  # param -> standard (rule, reason, action)
    records: dict[str, int] = field(default_factory=dict)  # param name -> index in the report


def _standard_rules(module: nn.Module, layer: LayerInfo, scheme: Scheme) -> dict[str, tuple[str, str, Action]]:
    """``{param_name: (rule, reason, action)}`` for the direct parameters of one module."""
    params = dict(module.named_parameters(recurse=False))
    if isinstance(module, NORM_TYPES):
        rules: dict[str, tuple[str, str, Action]] = {}
        if "weight" in params:
            rules["weight"] = ("ones", "norm scale starts at 1", lambda g: params["weight"].fill_(1.0))
        if "bias" in params:
            rules["bias"] = ("zeros", "norm shift starts at 0", lambda g: params["bias"].zero_())
        return rules
    weight_rule = scheme.weight_rule(module, layer) if "weight" in params else None
    if weight_rule is None:
        return {}
    rules = {"weight": (weight_rule.rule, weight_rule.reason, lambda g: weight_rule.fill(params["weight"], g))}
    if "bias" in params:
        rules["bias"] = ("zeros", "bias starts at 0", lambda g: params["bias"].zero_())
    return rules


@torch.no_grad()
def initialize(
    model: nn.Module,
    scheme: str | Scheme = "zero",
    *,
    roles: Mapping[str, str] | None = None,
    strict: bool = False,
    generator: torch.Generator | None = None,
    seed: int = 0,
    **options: object,
) -> InitReport:
    """Initialise every parameter of ``model`` in place with ``scheme``.

    Args:
        model: any module.
        scheme: a name from :func:`detinit.init.list_schemes` (``"zero"``,
            ``"partial_identity"``, ``"constnet"``, ``"kaiming"``, ``"xavier"``,
            ``"orthogonal"``, ``"fixup"``, ``"skipinit"``, ``"rezero"``) or a
            :class:`~detinit.init.schemes.Scheme`.
        roles: extra or overriding roles, ``{"fc": "classifier"}``.
        strict: raise ``ValueError`` if any parameter has no rule (nothing is
            written then).
        generator: random draws of random schemes (and ``constnet`` with
            ``c < 1`` or ``s > 0``) come from it, in module order; default a CPU
            generator seeded with ``seed``. The global RNG is never used.
        seed: seed of the default generator.
        **options: scheme options, e.g. ``norm="paper"`` for ``"zero"``.

    Returns:
        An :class:`~detinit.init.report.InitReport`: print it for a table.

    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> report = initialize(model, "zero", roles={"2": "classifier"})
    >>> [r.rule for r in report.records]
    ['hadamard', 'zeros', 'zeros', 'zeros']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"initialize: model must be an nn.Module, got {type(model).__name__}")
    scheme_obj = get_scheme(scheme, **options)
    if scheme_obj.requires_gates and not any(getattr(m, "is_residual_gate", False) for m in model.modules()):
        raise ValueError(
            f"scheme {scheme_obj.name!r} gates every residual branch with a scalar that starts at 0, but "
            f"{type(model).__name__} has no residual gates (detinit.nn.ScalarGate); build the model with "
            "gates (e.g. create_model(..., norm='none') or gate=True)"
        )
    role_sources = collect_roles(model, roles)
    infos = layer_infos(role_sources)
    seed_used = seed if generator is None and scheme_obj.uses_generator else None
    report = InitReport(scheme_obj.name, scheme_obj.options(), seed_used)

    plans: list[_ModulePlan] = []
    seen: set[int] = set()
    for mname, module in model.named_modules():
        direct = dict(module.named_parameters(recurse=False))
        if not direct:
            continue
        layer = infos.get(mname, LayerInfo())
        source = role_sources.get(mname)
        suffix = f" [role {layer.role} from {source.source}]" if source else ""
        plan = _ModulePlan(mname, module, callable(getattr(module, "detinit_init_", None)))
        rules = _standard_rules(module, layer, scheme_obj)
        for pname, param in direct.items():
            full = f"{mname}.{pname}" if mname else pname
            if id(param) in seen:
                continue  # shared parameter: initialised where first seen
            seen.add(id(param))
            if isinstance(param, UninitializedParameter):
                raise ValueError(
                    f"initialize: {full} of {type(module).__name__} is a lazy, uninitialised "
                    "parameter; run one forward pass before initialising"
                )
            if not param.requires_grad:
                rule, reason = FROZEN, "requires_grad=False: left unchanged"
            elif plan.hooked:
                rule, reason = "hook", f"{type(module).__name__}.detinit_init_()"
                if pname in rules:
                    plan.rules[pname] = rules[pname]
            elif pname in rules:
                plan.rules[pname] = rules[pname]
                rule, reason, _ = rules[pname]
            else:
                rule, reason = UNKNOWN, f"no rule for {type(module).__name__}.{pname}: left unchanged"
            plan.records[pname] = len(report.records)
            report.records.append(
                ParamRecord(full, type(module).__name__, tuple(param.shape), layer.role, rule, reason + suffix)
            )
        plans.append(plan)
    if strict and report.unknown:
        raise ValueError(
            "initialize(strict=True): no rule for "
            + ", ".join(f"{r.name} ({r.module_type})" for r in report.unknown)
            + f"; scheme {scheme_obj.name!r} knows Linear, ConvNd, ConvTransposeNd"
            + (", Embedding" if scheme_obj.uses_generator else "")
            + " and norm layers; give the module a detinit_init_ hook or initialise it yourself"
        )

    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    for plan in plans:
        _execute(plan, scheme_obj, gen, report)
    return report


def _execute(plan: _ModulePlan, scheme: Scheme, gen: torch.Generator, report: InitReport) -> None:
    """Run one module's hook (or its standard actions) and finish its report records."""
    if not plan.hooked:
        for _, _, action in plan.rules.values():
            action(gen)
        return
    reasons = plan.module.detinit_init_(scheme.name, gen)
    for pname, index in plan.records.items():
        record = report.records[index]
        if record.rule == FROZEN:
            continue
        if reasons is None and pname in plan.rules:  # the hook declined: standard rules
            rule, reason, action = plan.rules[pname]
            action(gen)
            report.records[index] = replace(record, rule=rule, reason=reason)
        elif reasons is not None and pname in reasons:
            report.records[index] = replace(record, rule="hook", reason=str(reasons[pname]))
        else:
            report.records[index] = replace(
                record, rule=UNKNOWN, reason=f"{type(plan.module).__name__}.detinit_init_() did not initialise it"
            )

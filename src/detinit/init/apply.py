"""Apply a scheme to any ``nn.Module``: :func:`initialize`.

Rules, per module owning parameters directly:

1. a module with a ``detinit_init_(scheme, generator)`` method initialises its
   own direct parameters (scalar gates, fixed transforms...) and returns
   ``{param_name: reason}``;
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

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

from .report import FROZEN, UNKNOWN, InitReport, ParamRecord
from .roles import collect_roles
from .schemes import Scheme, get_scheme

NORM_TYPES = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*d, SyncBatchNorm, InstanceNorm*d
    nn.GroupNorm,
    nn.LayerNorm,
    nn.RMSNorm,
)

Action = Callable[[torch.Generator], object]


def _bias_rule(param: torch.Tensor) -> tuple[str, str, Action]:
    return "zeros", "bias starts at 0", lambda g: param.zero_()


def _plan_module(
    module: nn.Module, role: str, scheme: Scheme, params: dict[str, nn.Parameter]
) -> dict[str, tuple[str, str, Action]]:
    """``{param_name: (rule, reason, action)}`` for the direct parameters of one module."""
    plan: dict[str, tuple[str, str, Action]] = {}
    if isinstance(module, NORM_TYPES):
        for pname, param in params.items():
            if pname == "weight":
                plan[pname] = ("ones", "norm scale starts at 1", lambda g, p=param: p.fill_(1.0))
            elif pname == "bias":
                plan[pname] = _bias_rule(param)
        return plan
    weight_rule = scheme.weight_rule(module, role) if "weight" in params else None
    if weight_rule is None:
        return plan
    weight = params["weight"]
    plan["weight"] = (weight_rule.rule, weight_rule.reason, lambda g: weight_rule.fill(weight, g))
    if "bias" in params:
        plan["bias"] = _bias_rule(params["bias"])
    return plan


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
            ``"orthogonal"``) or a :class:`~detinit.init.schemes.Scheme`.
        roles: extra or overriding roles, ``{"fc": "classifier"}``.
        strict: raise ``ValueError`` if any parameter has no rule (nothing is
            written then).
        generator: random draws of random schemes (and ``constnet`` with
            ``c < 1``) come from it; default a CPU generator seeded with ``seed``.
            The global RNG is never used.
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
    role_of = collect_roles(model, roles)
    uses_random = scheme_obj.uses_generator
    report = InitReport(scheme_obj.name, scheme_obj.options(), seed if generator is None and uses_random else None)

    records: dict[int, ParamRecord] = {}  # id(param) -> record, in first-seen order
    actions: list[Action] = []
    hooks: list[tuple[str, nn.Module]] = []
    for mname, module in model.named_modules():
        direct = dict(module.named_parameters(recurse=False))
        if not direct:
            continue
        role, role_source = role_of.get(mname, ("default", ""))
        hook = getattr(module, "detinit_init_", None)
        plan = {} if callable(hook) else _plan_module(module, role, scheme_obj, direct)
        for pname, param in direct.items():
            full = f"{mname}.{pname}" if mname else pname
            if id(param) in records:
                continue  # shared parameter: initialised where first seen
            if isinstance(param, UninitializedParameter):
                raise ValueError(f"initialize: {full} of {type(module).__name__} is a lazy, uninitialised "
                                 "parameter; run one forward pass before initialising")
            if callable(hook):
                rule, reason = "hook", f"{type(module).__name__}.detinit_init_()"
            elif not param.requires_grad:
                rule, reason = FROZEN, "requires_grad=False: left unchanged"
            elif pname in plan:
                rule, reason, action = plan[pname]
                actions.append(action)
            else:
                rule, reason = UNKNOWN, f"no rule for {type(module).__name__}.{pname}: left unchanged"
            if role_source:
                reason += f" [role {role} from {role_source}]"
            records[id(param)] = ParamRecord(full, type(module).__name__, tuple(param.shape), role, rule, reason)
        if callable(hook):
            hooks.append((mname, module))
    report.records = list(records.values())
    if strict and report.unknown:
        raise ValueError(
            "initialize(strict=True): no rule for " + ", ".join(f"{r.name} ({r.module_type})" for r in report.unknown)
            + f"; scheme {scheme_obj.name!r} knows Linear, ConvNd, ConvTransposeNd"
            + (", Embedding" if uses_random else "")
            + " and norm layers; give the module a detinit_init_ hook or initialise it yourself"
        )

    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    for action in actions:
        action(gen)
    _run_hooks(hooks, scheme_obj, gen, report)
    return report


def _run_hooks(hooks: list[tuple[str, nn.Module]], scheme: Scheme, gen: torch.Generator, report: InitReport) -> None:
    """Call ``detinit_init_`` hooks and put their reasons into the report."""
    by_name = {r.name: i for i, r in enumerate(report.records)}
    for mname, module in hooks:
        reasons = module.detinit_init_(scheme.name, gen)
        for pname, _ in module.named_parameters(recurse=False):
            full = f"{mname}.{pname}" if mname else pname
            if full not in by_name:
                continue
            record = report.records[by_name[full]]
            reason = reasons.get(pname) if isinstance(reasons, dict) else None
            if reason is None:
                rule, reason = UNKNOWN, f"{type(module).__name__}.detinit_init_() did not initialise it"
            else:
                rule = "hook"
            report.records[by_name[full]] = ParamRecord(
                record.name, record.module_type, record.shape, record.role, rule, str(reason)
            )

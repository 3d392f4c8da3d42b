"""Apply a scheme to any ``nn.Module``: :func:`initialize`.

Rules, per module owning parameters directly:

1. a module with a ``detinit_init_(scheme, generator)`` method (``scheme`` the
   :class:`~detinit.init.schemes.Scheme` object) initialises its own direct parameters (scalar gates, layers with their own recipe) and
   returns ``{param_name: reason}``, or ``None`` to let the rules below apply;
2. norm layers (BatchNorm, InstanceNorm, GroupNorm, LayerNorm, RMSNorm):
   weight 1, bias 0; a norm in the role ``"branch_last_norm"`` (after the last
   layer of a residual branch) weight 0 under schemes that start branches at 0
   (:meth:`~detinit.init.schemes.Scheme.zero_on_norm`);
3. Linear / ConvNd / ConvTransposeNd / Embedding: the scheme's
   :class:`~detinit.init.schemes.WeightRule` for the module's role; bias 0.
   A Linear in a fused role (``"attn_qkv"``, ``"attn_kv"``) is split along
   its output rows and each block gets the rule of its own role;
4. ``nn.MultiheadAttention``: ``in_proj_weight`` is the fused ``"attn_qkv"``
   (or ``q_proj_weight`` / ``k_proj_weight`` / ``v_proj_weight`` when the key
   and value widths differ), biases and ``bias_k`` / ``bias_v`` 0; its
   ``out_proj`` is an ``"attn_out"`` Linear;
5. anything else: reported as unknown and left unchanged (``strict=True``
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

from .. import hooks
from .declared_roles import collect_roles
from .layers import NORM_TYPES
from .report import FROZEN, UNKNOWN, InitReport, ParamRecord
from .roles import LayerInfo, default_layer_info, fused_parts, layer_infos
from .schemes import Scheme, WeightRule, get_scheme

Action = Callable[[torch.Generator], object]


@dataclass
class _ModulePlan:
    """What will happen to one module's direct parameters."""

    name: str
    module: nn.Module
    hooked: bool
    rules: dict[str, tuple[str, str, Action]] = field(default_factory=dict)  # param -> standard (rule, reason, action)
    records: dict[str, int] = field(default_factory=dict)  # param name -> index in the report


MHA_PROJECTIONS = {"q_proj_weight": "attn_query", "k_proj_weight": "attn_key", "v_proj_weight": "attn_value"}


def split_rule(
    scheme: Scheme, layer: LayerInfo, in_features: int, parts: list[tuple[str, int, int]]
) -> WeightRule | None:
    """One rule for a weight whose output rows are blocks ``(role, start, stop)`` of separate projections.

    Each block gets the scheme's rule for a ``Linear(in_features, stop - start)``
    in its own role (so random schemes use per-block fans, and ZerO gives each
    block its own identity); ``None`` if the scheme has no rule for one of them.
    """
    blocks = []
    for role, start, stop in parts:
        stand_in = nn.Linear(in_features, stop - start, bias=False, device="meta")
        rule = scheme.weight_rule(stand_in, replace(layer, role=role))
        if rule is None:
            return None
        blocks.append((role, start, stop, rule))
    names = list(dict.fromkeys(rule.rule for *_, rule in blocks))
    reason = "; ".join(f"rows {a}:{b} {role.removeprefix('attn_')}: {rule.reason}" for role, a, b, rule in blocks)

    def fill(weight: torch.Tensor, generator: torch.Generator) -> None:
        for _, start, stop, rule in blocks:
            rule.fill(weight[start:stop], generator)

    return WeightRule("+".join(names), reason, fill)


def _weight_rule(module: nn.Module, layer: LayerInfo, scheme: Scheme) -> WeightRule | None:
    weight = getattr(module, "weight", None)
    is_matrix = isinstance(weight, torch.Tensor) and not isinstance(weight, UninitializedParameter) and weight.dim() > 1
    parts = fused_parts(layer.role, weight.shape[0], weight.shape[1]) if is_matrix else None
    if parts is None:
        return scheme.weight_rule(module, layer)
    if not isinstance(module, nn.Linear):
        raise ValueError(
            f"role {layer.role!r} splits an nn.Linear's output rows into projections; "
            f"{type(module).__name__} is not supported"
        )
    return split_rule(scheme, layer, module.in_features, parts)


def _attention_rules(
    module: nn.MultiheadAttention, layer: LayerInfo, scheme: Scheme
) -> dict[str, tuple[str, str, Action]]:
    """Rules for the direct parameters of ``nn.MultiheadAttention`` (its ``out_proj`` is a sub-module)."""
    params = dict(module.named_parameters(recurse=False))
    rules: dict[str, tuple[str, str, Action]] = {}
    for name, param in params.items():
        if name == "in_proj_weight":
            rule = split_rule(scheme, layer, param.shape[1], fused_parts("attn_qkv", param.shape[0]) or [])
        elif name in MHA_PROJECTIONS:
            rule = split_rule(scheme, layer, param.shape[1], [(MHA_PROJECTIONS[name], 0, param.shape[0])])
        else:  # in_proj_bias, bias_k, bias_v
            why = "bias starts at 0" if name == "in_proj_bias" else "extra key/value token starts at 0"
            rules[name] = ("zeros", why, lambda g, p=param: p.zero_())
            continue
        if rule is not None:
            rules[name] = (rule.rule, rule.reason, lambda g, p=param, r=rule: r.fill(p, g))
    return rules


def _standard_rules(module: nn.Module, layer: LayerInfo, scheme: Scheme) -> dict[str, tuple[str, str, Action]]:
    """``{param_name: (rule, reason, action)}`` for the direct parameters of one module."""
    if isinstance(module, nn.MultiheadAttention):
        return _attention_rules(module, layer, scheme)
    params = dict(module.named_parameters(recurse=False))
    if layer.role == "branch_last_norm" and not isinstance(module, NORM_TYPES):
        raise ValueError(
            f"role 'branch_last_norm' is for the normalisation layer after a branch's last layer; "
            f"{type(module).__name__} is not one (BatchNorm, InstanceNorm, GroupNorm, LayerNorm, RMSNorm)"
        )
    if isinstance(module, NORM_TYPES):
        rules: dict[str, tuple[str, str, Action]] = {}
        if "weight" in params and scheme.zero_on_norm(layer):
            why = (
                f"norm after the last layer of a residual branch: scale starts at 0, so the branch outputs 0 "
                f"({scheme.name}; the layer before it keeps its own rule)"
            )
            rules["weight"] = ("zeros", why, lambda g: params["weight"].zero_())
        elif "weight" in params:
            rules["weight"] = ("ones", "norm scale starts at 1", lambda g: params["weight"].fill_(1.0))
        if "bias" in params:
            rules["bias"] = ("zeros", "norm shift starts at 0", lambda g: params["bias"].zero_())
        return rules
    weight_rule = _weight_rule(module, layer, scheme) if "weight" in params else None
    if weight_rule is None:
        return {}
    rules = {"weight": (weight_rule.rule, weight_rule.reason, lambda g: weight_rule.fill(params["weight"], g))}
    padding = getattr(module, "padding_idx", None) if isinstance(module, nn.Embedding) else None
    if padding is not None:  # torch keeps the padding token's row at 0 (its gradient is always 0)

        def fill_then_pad(g: torch.Generator) -> None:
            weight_rule.fill(params["weight"], g)
            params["weight"][padding].zero_()

        why = f"{weight_rule.reason}; the padding row padding_idx={padding} stays 0"
        rules["weight"] = (weight_rule.rule, why, fill_then_pad)
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
    if scheme_obj.requires_gates and not any(hooks.is_residual_gate(m) for m in model.modules()):
        raise ValueError(
            f"scheme {scheme_obj.name!r} gates every residual branch with a scalar that starts at 0, but "
            f"{type(model).__name__} has no residual gates (detinit.nn.ScalarGate); build the model with "
            "gates (e.g. create_model(..., norm='none') or gate=True)"
        )
    role_sources = collect_roles(model, roles)
    infos = layer_infos(role_sources)
    default_info = default_layer_info(role_sources)
    seed_used = seed if generator is None and scheme_obj.uses_generator else None
    report = InitReport(scheme_obj.name, scheme_obj.options(), seed_used)

    plans: list[_ModulePlan] = []
    seen: set[int] = set()
    for mname, module in model.named_modules():
        direct = dict(module.named_parameters(recurse=False))
        if not direct:
            continue
        layer = infos.get(mname, default_info)
        source = role_sources.get(mname)
        suffix = f" [role {layer.role} from {source.source}]" if source else ""
        plan = _ModulePlan(mname, module, callable(getattr(module, hooks.INIT_HOOK, None)))
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
            + f"; scheme {scheme_obj.name!r} knows Linear, ConvNd, ConvTransposeNd, Embedding, "
            + "MultiheadAttention and norm layers; give the module a detinit_init_ hook or initialise it yourself"
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
    reasons = getattr(plan.module, hooks.INIT_HOOK)(scheme, gen)
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

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
5. RNN / LSTM / GRU layers and cells: a rule per gate block
   (:mod:`detinit.init.recurrent`);
6. modules of other classes, from one traced forward pass
   (:mod:`detinit.init.traced_roles`): a weight used as a matrix (Hugging
   Face's ``Conv1D`` stores it ``(in, out)``) gets the rule of an
   ``nn.Linear`` of that shape, filled through the matching view; a norm of
   an unknown class the norm rule; position tables, cls tokens and layer
   scales :meth:`~detinit.init.schemes.Scheme.parameter_rule`;
7. anything else: reported as unknown and left unchanged (``strict=True``
   raises instead, before any parameter is written).

Parameters with ``requires_grad=False`` are left unchanged and reported as
``frozen``. A parameter shared by several modules (tied weights) is written
once, and every module using it must agree on its role: the one accepted
disagreement is an output layer tied to the token embedding, whose zero
(under schemes that start the output at 0) goes on the norm before it
(``"classifier_norm"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from .. import hooks
from .declared_roles import collect_roles
from .example_inputs import infer_example_inputs
from .layers import MATRIX_LAYER_TYPES, NORM_TYPES
from .readout import escape_constant_readouts_
from .recurrent import RECURRENT_TYPES, recurrent_rules
from .report import FROZEN, UNKNOWN, InitReport, ParamRecord
from .roles import NORM_ROLES, LayerInfo, RoleSource, default_layer_info, fused_parts, layer_infos
from .row_fills import MINUS_ONES, ONES, ZEROS, RowFill, transposed_rows_of, with_zero_row
from .schemes import Scheme, WeightRule, get_scheme, row_blocks_rule, rule_key
from .sharded import materialize_, parse_device, write_
from .traced_roles import TracedParam, TracedRoles, trace_roles

Action = Callable[[torch.Tensor, torch.Generator], object]  # fills the tensor it is given


@dataclass
class _ModulePlan:
    """What will happen to one module's direct parameters."""

    name: str
    module: nn.Module
    hooked: bool
    rules: dict[str, tuple[str, str, Action]] = field(default_factory=dict)  # param -> standard (rule, reason, action)
    records: dict[str, int] = field(default_factory=dict)  # param name -> index in the report


def _direct_parameters(module: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters ``module`` holds itself, by name, read straight from it: :func:`initialize` asks every
    module, and ``named_parameters(recurse=False)``'s generator costs more than this. A parameter registered
    under two names appears twice; :func:`initialize` records and writes it once (it tracks ids)."""
    return {name: param for name, param in module._parameters.items() if param is not None}


_MISSING = object()  # a key not in a cache (a cached rule may be None)
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
    reason = "; ".join(f"rows {a}:{b} {role.removeprefix('attn_')}: {rule.reason}" for role, a, b, rule in blocks)
    return row_blocks_rule([(start, stop, rule) for _, start, stop, rule in blocks], reason)


def _weight_rule(
    module: nn.Module, layer: LayerInfo, scheme: Scheme, weight: torch.Tensor | None = None
) -> WeightRule | None:
    """The scheme's rule for ``module.weight`` (``weight`` where the caller has it: a module attribute lookup
    goes through ``nn.Module.__getattr__``), split into blocks where its role fuses projections."""
    if not isinstance(module, MATRIX_LAYER_TYPES + (nn.Embedding,)):
        return None  # other classes get rules from how the traced forward pass used their parameters
    weight = getattr(module, "weight", None) if weight is None else weight
    is_matrix = isinstance(weight, torch.Tensor) and not is_lazy(weight) and weight.dim() > 1
    parts = fused_parts(layer.role, weight.shape[0], weight.shape[1]) if is_matrix else None
    if parts is None:
        return scheme.weight_rule(module, layer)
    if not isinstance(module, nn.Linear):
        raise ValueError(
            f"role {layer.role!r} splits an nn.Linear's output rows into projections; "
            f"{type(module).__name__} is not supported"
        )
    return split_rule(scheme, layer, module.in_features, parts)


def _cached_weight_rule(
    module: nn.Module,
    layer: LayerInfo,
    scheme: Scheme,
    weight: torch.Tensor,
    cache: dict[tuple, WeightRule | None],
) -> WeightRule | None:
    """:func:`_weight_rule`, built once per :func:`~detinit.init.schemes.rule_key` in ``cache`` (one call of
    :func:`initialize`): the blocks of a deep model repeat a few layer geometries, and a rule with its fill,
    row form and reason costs more to build than a small tensor costs to fill."""
    if is_lazy(weight) or (key := rule_key(scheme, module, layer, weight.shape)) is None:
        return _weight_rule(module, layer, scheme, weight)
    rule = cache.get(key, _MISSING)
    if rule is _MISSING:
        rule = cache[key] = _weight_rule(module, layer, scheme, weight)
    return rule  # type: ignore[return-value]


def _attention_rules(
    params: Mapping[str, nn.Parameter], layer: LayerInfo, scheme: Scheme
) -> dict[str, tuple[str, str, Action]]:
    """Rules for the direct parameters ``params`` of ``nn.MultiheadAttention`` (its ``out_proj`` is a
    sub-module)."""
    rules: dict[str, tuple[str, str, Action]] = {}
    for name, param in params.items():
        if name == "in_proj_weight":
            rule = split_rule(scheme, layer, param.shape[1], fused_parts("attn_qkv", param.shape[0]) or [])
        elif name in MHA_PROJECTIONS:
            rule = split_rule(scheme, layer, param.shape[1], [(MHA_PROJECTIONS[name], 0, param.shape[0])])
        else:  # in_proj_bias, bias_k, bias_v
            why = "bias starts at 0" if name == "in_proj_bias" else "extra key/value token starts at 0"
            rules[name] = ("zeros", why, ZEROS)
            continue
        if rule is not None:
            rules[name] = (rule.rule, rule.reason, rule.fill)
    return rules


def _norm_rules(
    params: Mapping[str, nn.Parameter], layer: LayerInfo, scheme: Scheme, kinds: Mapping[str, str]
) -> dict[str, tuple[str, str, Action]]:
    """A norm's scale 1 and shift 0; the scale 0 where the scheme puts a zero on this norm.

    ``kinds`` says which parameter is which for norms of unknown classes
    (``"scale"``, ``"shift"``, ``"offset_scale"`` for a ``(1 + w)`` scale);
    otherwise torch's names: ``weight`` scales, ``bias`` shifts.
    """
    zero = scheme.zero_on_norm(layer)
    if layer.role == "classifier_norm":
        why_zero = f"norm before an output layer tied to the token embedding: scale starts at 0, so the output is 0 ({scheme.name})"
    else:
        why_zero = (
            f"norm after the last layer of a residual branch: scale starts at 0, so the branch outputs 0 "
            f"({scheme.name}; the layer before it keeps its own rule)"
        )
    rules: dict[str, tuple[str, str, Action]] = {}
    for name in params:
        kind = kinds.get(name) or {"weight": "scale", "bias": "shift"}.get(name)
        if kind == "scale":
            rules[name] = ("zeros", why_zero, ZEROS) if zero else ("ones", "norm scale starts at 1", ONES)
        elif kind == "offset_scale":
            rules[name] = (
                ("minus_ones", why_zero + "; the scale is 1 + w", MINUS_ONES)
                if zero
                else ("zeros", "norm scale 1 + w starts at 1", ZEROS)
            )
        elif kind == "shift":
            rules[name] = ("zeros", "norm shift starts at 0", ZEROS)
    return rules


def _standard_rules(
    module: nn.Module,
    layer: LayerInfo,
    scheme: Scheme,
    norm_kinds: Mapping[str, str] | None,
    *,
    params: Mapping[str, nn.Parameter],
    cache: dict[tuple, WeightRule | None],
) -> dict[str, tuple[str, str, Action]]:
    """``{param_name: (rule, reason, action)}`` for the direct parameters ``params`` of one module.

    ``norm_kinds`` is given for norms of classes torch does not define, found by tracing; ``cache`` keeps
    weight rules across the modules of one model (:func:`_cached_weight_rule`).
    """
    if isinstance(module, nn.MultiheadAttention):
        return _attention_rules(params, layer, scheme)
    is_norm = isinstance(module, NORM_TYPES) or norm_kinds is not None
    if layer.role in NORM_ROLES and not is_norm and layer.role != "norm":
        raise ValueError(
            f"role {layer.role!r} is for a normalisation layer; {type(module).__name__} is not one (BatchNorm, "
            "InstanceNorm, GroupNorm, LayerNorm, RMSNorm, or a module whose output does not change when its input "
            "is scaled)"
        )
    if is_norm or layer.role in NORM_ROLES:
        return _norm_rules(params, layer, scheme, norm_kinds or {})
    if isinstance(module, RECURRENT_TYPES):
        return recurrent_rules(module, layer, scheme)
    weight = params.get("weight")
    weight_rule = None if weight is None else _cached_weight_rule(module, layer, scheme, weight, cache)
    if weight_rule is None:
        return {}
    rules: dict[str, tuple[str, str, Action]] = {"weight": (weight_rule.rule, weight_rule.reason, weight_rule.fill)}
    padding = getattr(module, "padding_idx", None) if isinstance(module, nn.Embedding) else None
    if padding is not None:  # torch keeps the padding token's row at 0 (its gradient is always 0)
        why = f"{weight_rule.reason}; the padding row padding_idx={padding} stays 0"
        rules["weight"] = (weight_rule.rule, why, with_zero_row(weight_rule.fill, padding))
    if "bias" in params:
        rules["bias"] = ("zeros", "bias starts at 0", ZEROS)
    return rules


def _stored_fill(rule: WeightRule, stored: str) -> Action:
    """Fill a weight as ``rule`` fills an ``nn.Linear``'s ``(out, in)`` weight; one stored ``(in, out)`` gets
    the transpose of that, with the same random draws in the same order.

    A deterministic rule writes the stored layout straight, as all the rows of the transpose
    (``transposed_rows``, :mod:`detinit.init.row_fills`; a shard's rows are a block of them); a random one
    fills an ``(out, in)`` temporary and copies its transpose (a strided copy: 4x a memset on GPT-2's weights).
    """
    if stored == "out_in":
        return rule.fill
    transposed = transposed_rows_of(rule.fill)
    if transposed is not None:
        return RowFill(lambda t, g: transposed(t, 0, len(t), g), transposed)

    def fill(t: torch.Tensor, g: torch.Generator) -> None:
        linear = torch.empty(t.shape[::-1], dtype=t.dtype, device=t.device)
        rule.fill(linear, g)
        t.copy_(linear.t())

    return fill


def _traced_rules(
    params: Mapping[str, nn.Parameter], prefix: str, layer: LayerInfo, scheme: Scheme, traced: TracedRoles
) -> dict[str, tuple[str, str, Action, str]]:
    """Rules for parameters of a module of an unknown class, from how the traced forward pass used them.

    Returns ``{param_name: (rule, reason, action, role)}``; the role is the module's for layer weights and
    the parameter's own (``position``, ``token``, ``layer_scale``) otherwise.
    """
    rules: dict[str, tuple[str, str, Action, str]] = {}
    for name, param in params.items():
        use: TracedParam | None = traced.params.get(f"{prefix}.{name}" if prefix else name)
        if use is None:
            continue
        why = f" [traced: {use.evidence}]"
        if use.kind == "matrix":
            stand_in = nn.Linear(use.in_features, use.out_features, bias=False, device="meta")
            rule = _weight_rule(stand_in, layer, scheme)
            if rule is None:
                continue
            rules[name] = (rule.rule, rule.reason + why, _stored_fill(rule, use.stored), layer.role)
        elif use.kind == "table":
            stand_in = nn.Embedding(*param.shape, device="meta")
            rule = scheme.weight_rule(stand_in, layer)
            if rule is not None:
                rules[name] = (rule.rule, rule.reason + why, rule.fill, layer.role)
        elif use.kind == "bias":
            rules[name] = ("zeros", "bias starts at 0" + why, ZEROS, layer.role)
        elif use.kind in ("position", "token", "layer_scale"):
            rule = scheme.parameter_rule(use.kind, param)
            rules[name] = (rule.rule, rule.reason + why, rule.fill, use.kind)
    return rules


def _should_trace(
    model: nn.Module, modules: list[nn.Module], example_inputs: object | None, trace: bool | None
) -> object | None:
    """The example input to trace with, or ``None`` for no tracing (see :func:`initialize`'s ``trace``);
    ``modules`` are the model's."""
    if trace not in (None, True, False):
        raise ValueError(f"initialize: trace={trace!r} is not supported; trace must be None (auto), True or False")
    if trace is False:
        return None
    if example_inputs is not None:
        return example_inputs
    declares = any(callable(hooks.find_hook(m, hooks.ROLES_HOOK)) for m in modules)
    if trace is None and declares:
        return None
    inferred = infer_example_inputs(model)
    if inferred is None and trace:
        raise ValueError(
            f"initialize(trace=True): no example input for {type(model).__name__}; pass example_inputs= (a tensor, "
            "a tuple of positional arguments or a dict of keyword arguments)"
        )
    return inferred


def _check_scheme_applies(scheme: Scheme, model: nn.Module, roles: Mapping[str, RoleSource]) -> None:
    """Refuse an option or scheme that would do nothing on this model (instead of silently doing nothing)."""
    found = {r.role.partition(":")[0] for r in roles.values()}
    if getattr(scheme, "attention", "identity") == "kv_zero" and not (
        found & {"attn_query", "attn_key", "attn_value", "attn_qkv", "attn_kv"}
        or any(isinstance(m, nn.MultiheadAttention) for m in model.modules())
    ):
        raise ValueError(
            f"scheme option attention='kv_zero' does nothing on {type(model).__name__}: no attention layer was "
            "found (declared, traced or given in roles=); drop the option, or pass example_inputs= so that "
            "attention can be traced"
        )
    if scheme.name == "fixup" and not found & {"branch_last", "attn_out"}:
        raise ValueError(
            f"scheme 'fixup' on {type(model).__name__}, which has no residual branch (declared, traced or given "
            "in roles=), would equal 'kaiming' with a zero classifier; use 'kaiming', or pass example_inputs= so "
            "that residual branches can be traced"
        )


@torch.no_grad()
def initialize(
    model: nn.Module,
    scheme: str | Scheme = "zero",
    *,
    roles: Mapping[str, str] | None = None,
    strict: bool = False,
    generator: torch.Generator | None = None,
    seed: int = 0,
    example_inputs: object | None = None,
    trace: bool | None = None,
    device: torch.device | str | None = None,
    **options: object,
) -> InitReport:
    """Initialise every parameter of ``model`` in place with ``scheme``.

    Args:
        model: any module.
        scheme: a name from :func:`detinit.init.list_schemes` (``"zero"``,
            ``"partial_identity"``, ``"constnet"``, ``"kaiming"``, ``"xavier"``,
            ``"orthogonal"``, ``"fixup"``, ``"skipinit"``, ``"rezero"``) or a
            :class:`~detinit.init.schemes.Scheme`.
        roles: extra or overriding roles, ``{"fc": "classifier"}``. A residual role given here
            (``"branch"``, ``"branch_last"``, ...) belongs to the block traced or declared for its
            module, else to its parent module, which is how Fixup counts each block's layers.
        strict: raise ``ValueError`` if any parameter has no rule (nothing is
            written then).
        generator: random draws of random schemes (and ``constnet`` with
            ``c < 1`` or ``s > 0``) come from it, in module order; default a CPU
            generator seeded with ``seed``. The global RNG is never used.
        seed: seed of the default generator.
        example_inputs: an input to run the model on once to find the roles of its layers from the
            computation (:mod:`detinit.init.traced_roles`): a tensor, a tuple of positional arguments or a
            dict of keyword arguments. The run is in eval mode and changes nothing.
        trace: ``None`` (default) traces when ``example_inputs`` is given, or when the model declares no
            roles (no ``detinit_roles``) and its library describes its input (Hugging Face, timm:
            :func:`~detinit.init.example_inputs.infer_example_inputs`); ``True`` always traces (an error
            without an input); ``False`` never does. Declared roles and ``roles=`` win over traced ones.
        device: for a model built on the meta device (``with torch.device("meta"): model = ...``): the
            device to materialise it on (:func:`~detinit.init.sharded.materialize_`). Every parameter is
            then filled there, with no second copy, bitwise as if the model had been built there; norm
            running statistics are reset and constant buffers recomputed. A meta parameter no rule
            covers (or a frozen one) is refused, since it would be left as uninitialised memory.
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
    named = list(model.named_modules())  # walked once (a walk costs about 1 us a module)
    if scheme_obj.requires_gates and not any(hooks.is_residual_gate(m) for _, m in named):
        raise ValueError(
            f"scheme {scheme_obj.name!r} gates every residual branch with a scalar that starts at 0, but "
            f"{type(model).__name__} has no residual gates (detinit.nn.ScalarGate); build the model with "
            "gates (e.g. create_model(..., norm='none') or gate=True)"
        )
    if device is not None:
        _check_materialisable(model, device, example_inputs, trace)
        trace = False  # a meta-device model cannot run
    example = _should_trace(model, [m for _, m in named], example_inputs, trace)
    traced = trace_roles(model, example) if example is not None else TracedRoles()
    role_sources = collect_roles(model, roles, traced.modules, named=named)
    _check_scheme_applies(scheme_obj, model, role_sources)
    infos = layer_infos(role_sources)
    default_info = default_layer_info(role_sources)
    seed_used = seed if generator is None and scheme_obj.uses_generator else None
    report = InitReport(scheme_obj.name, scheme_obj.options(), seed_used)

    plans: list[_ModulePlan] = []
    seen: dict[int, int] = {}  # id(param) -> its record
    rule_cache: dict[tuple, WeightRule | None] = {}  # rule_key -> weight rule, built once per layer geometry
    for mname, module in named:
        direct = _direct_parameters(module)
        if not direct:
            continue
        layer = infos.get(mname, default_info)
        source = role_sources.get(mname)
        suffix = f" [role {layer.role} from {source.source}]" if source else ""
        plan = _ModulePlan(mname, module, callable(hooks.find_hook(module, hooks.INIT_HOOK)))
        norm_kinds = None
        if mname in traced.norms:
            norm_kinds = {p: traced.params[f"{mname}.{p}" if mname else p].kind for p in direct}
        rules = _standard_rules(module, layer, scheme_obj, norm_kinds, params=direct, cache=rule_cache)
        if norm_kinds is not None:  # say how the norm was found
            evidence = traced.norms[mname]
            rules = {p: (rule, f"{reason} [traced norm: {evidence}]", act) for p, (rule, reason, act) in rules.items()}
        param_roles: dict[str, str] = {}
        traced_rules = _traced_rules(direct, mname, layer, scheme_obj, traced) if traced.params else {}
        for pname, (rule, reason, action, role) in traced_rules.items():
            if pname not in rules:
                rules[pname] = (rule, reason, action)
                param_roles[pname] = role
        for pname, param in direct.items():
            full = f"{mname}.{pname}" if mname else pname
            if id(param) in seen:  # shared parameter: initialised where first seen, if the roles agree
                _check_tied(report, seen[id(param)], full, type(module).__name__, layer.role, role_sources, scheme_obj)
                continue
            seen[id(param)] = len(report.records)
            if is_lazy(param):  # isinstance(param, UninitializedParameter), without Parameter's slow metaclass check
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
            role = param_roles.get(pname, layer.role)
            report.records.append(
                ParamRecord(full, type(module).__name__, tuple(param.shape), role, rule, reason + suffix)
            )
        plans.append(plan)
    if strict and report.unknown:
        raise ValueError(
            "initialize(strict=True): no rule for "
            + ", ".join(f"{r.name} ({r.module_type})" for r in report.unknown)
            + f"; scheme {scheme_obj.name!r} knows Linear, ConvNd, ConvTransposeNd, Embedding, "
            + "MultiheadAttention, RNN / LSTM / GRU, norm layers and what tracing finds (example_inputs=); give the module a detinit_init_ hook or initialise it yourself"
        )

    if device is not None:
        _refuse_unfilled_meta(model, report)
        materialize_(model, device)
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    for plan in plans:
        _execute(plan, scheme_obj, gen, report)
    if example is not None and scheme_obj.escapes_constant_readout:
        _escape_constant_readouts(model, example, report)
    return report


def _escape_constant_readouts(model: nn.Module, example: object, report: InitReport) -> None:
    """Zero output layers whose input is the same for every example get rows ``e_j +- e_j+1`` orthogonal to it
    (:mod:`detinit.init.readout`); their report records say so."""
    zero_outputs = {r.name.removesuffix(".weight"): i for i, r in enumerate(report.records)
                    if r.role == "classifier" and r.rule == "zeros" and r.name.endswith(".weight")}  # fmt: skip
    for name, reason in escape_constant_readouts_(model, example, zero_outputs).items():
        index = zero_outputs[name.removesuffix(".weight")]
        record = report.records[index]
        source = record.reason[record.reason.find(" [role ") :] if " [role " in record.reason else ""
        report.records[index] = replace(record, rule="orthogonal_pairs", reason=reason + source)


def _check_materialisable(model: nn.Module, device: object, example_inputs: object | None, trace: bool | None) -> None:
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


def _refuse_unfilled_meta(model: nn.Module, report: InitReport) -> None:
    """Every meta parameter must get a rule: anything else would be left as uninitialised memory."""
    meta = {name for name, p in model.named_parameters() if p.is_meta}
    unfilled = [f"{r.name} ({r.rule})" for r in report.records if r.name in meta and r.rule in (UNKNOWN, FROZEN)]
    if unfilled:
        raise ValueError(
            "initialize(device=...): no rule fills " + ", ".join(unfilled) + "; on the meta device they hold no "
            "values to keep. Give them roles (roles=), a detinit_init_ hook, or requires_grad=True"
        )


def _check_tied(
    report: InitReport,
    first: int,
    name: str,
    module_type: str,
    role: str,
    roles: Mapping[str, RoleSource],
    scheme: Scheme,
) -> None:
    """A tied weight is initialised once: refuse it when the modules sharing it want different rules."""
    record = report.records[first]
    if record.role == role:
        return
    table_and_output = {record.role, role} == {"default", "classifier"} and "Embedding" in (
        record.module_type,
        module_type,
    )
    if table_and_output:
        norms = [n for n, r in roles.items() if r.role == "classifier_norm"]
        if not scheme.zeroes_classifier or norms:
            where = f"; the output's zero is on {norms[0]}'s scale" if norms and scheme.zeroes_classifier else ""
            report.records[first] = replace(
                record, reason=f"{record.reason}; also the output layer {name} (tied){where}"
            )
            return
        raise ValueError(
            f"{name} ({module_type}, role 'classifier') is tied to {record.name} ({record.module_type}, the token "
            f"embedding); scheme {scheme.name!r} starts the output layer at 0, which would zero every token. No norm "
            "was found before the output layer to carry that zero: untie the weights, give the norm before the "
            "output layer the role 'classifier_norm', or pass example_inputs= so that it can be traced"
        )
    raise ValueError(
        f"{name} is tied to {record.name}: the modules sharing it have different roles ({module_type} "
        f"{role!r}, {record.module_type} {record.role!r}), and a tied weight gets one rule; give both the same "
        "role in roles=, or untie the weights"
    )


def _execute(plan: _ModulePlan, scheme: Scheme, gen: torch.Generator, report: InitReport) -> None:
    """Run one module's hook (or its standard actions) and finish its report records."""
    params = _direct_parameters(plan.module)  # read now: materialize_ replaces a meta model's parameters
    if not plan.hooked:
        for pname, (_, _, action) in plan.rules.items():
            write_(params[pname], action, gen)
        return
    reasons = getattr(plan.module, hooks.INIT_HOOK)(scheme, gen)
    for pname, index in plan.records.items():
        record = report.records[index]
        if record.rule == FROZEN:
            continue
        if reasons is None and pname in plan.rules:  # the hook declined: standard rules
            rule, reason, action = plan.rules[pname]
            write_(params[pname], action, gen)
            report.records[index] = replace(record, rule=rule, reason=reason)
        elif reasons is not None and pname in reasons:
            report.records[index] = replace(record, rule="hook", reason=str(reasons[pname]))
        else:
            report.records[index] = replace(
                record, rule=UNKNOWN, reason=f"{type(plan.module).__name__}.detinit_init_() did not initialise it"
            )

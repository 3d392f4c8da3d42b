"""The one place where a parameter's rule is decided: :func:`resolve`.

Every parameter is classified once (:func:`classify`) by its module and, for classes detinit does not
know, by how the traced forward pass used it; the resolver then asks the scheme only what is the
scheme's to say (a matrix, a table, a named kind, a gate block: :mod:`detinit.init.schemes.base`) and
decides everything every scheme shares here:

* a bias starts at 0 (a layer's, attention's, a recurrent layer's; the LSTM forget gate's block 1);
* a norm's scale starts at 1 and its shift at 0; the scale starts at 0 where the scheme puts a branch's
  zero (or the output's, before a tied output layer) on the norm (:func:`zero_on_norm`), and the layer
  before it then gets an ordinary branch layer's rule;
* a fused projection (``attn_qkv``, ``attn_kv``, ``nn.MultiheadAttention.in_proj_weight``) is split
  into row blocks that each get the rule of their own role, and a recurrent weight into gate blocks;
* an embedding's padding row stays 0; a weight stored ``(in, out)`` gets the transpose of the rule
  of its ``(out, in)`` Linear.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch
from torch import nn

from ..roles.layers import Matrix, Table
from ..roles.recurrent import RECURRENT_ROLES, cell_kind, gate_blocks
from ..roles.traced.result import TracedParam
from ..roles.vocabulary import RESIDUAL_LAST_ROLES, LayerInfo, fused_parts
from ..schemes.base import Policy, Scheme
from ..schemes.rule import Fill, ParamRule, row_blocks_rule, zeros
from ..tensor.row_fills import (
    MINUS_ONES,
    ONES,
    ZEROS,
    RowFill,
    constant_fill,
    row_blocks_fill,
    transposed_rows_of,
    with_zero_row,
)
from .plan import Site

BIAS = "bias starts at 0"
# the rules that do not depend on the scheme or the layer, built once (ParamRule is frozen)
BIAS_ZERO = zeros(BIAS)
EXTRA_TOKEN_ZERO = zeros("extra key/value token starts at 0")
NORM_SCALE_ONE = ParamRule("ones", "norm scale starts at 1", ONES)
NORM_OFFSET_SCALE_ONE = zeros("norm scale 1 + w starts at 1")
NORM_SHIFT_ZERO = zeros("norm shift starts at 0")
OPEN_END_SCALE_ONE = ParamRule(
    "ones", "norm ending an entry block's branch: scale starts at 1, the branch on (open_blocks='entries')", ONES
)
TORCH_NORM_KINDS = {"weight": "scale", "bias": "shift"}  # a torch norm's parameters
MHA_PROJECTIONS = {"q_proj_weight": "attn_query", "k_proj_weight": "attn_key", "v_proj_weight": "attn_value"}
RuleCache = dict[object, "ParamRule | None"]  # by geometry (a tuple) and by layer (its id)
_MISSING = object()  # a key not in the cache (a cached rule may be None)


def resolve(site: Site, scheme: Scheme, cache: RuleCache) -> ParamRule | None:
    """The rule for one parameter, or ``None``: no rule (reported as unknown, left unchanged).

    A module of a class detinit knows gets its standard rule; a parameter that has none falls back on its
    traced use. ``cache`` keeps layer-weight rules across one :func:`detinit.initialize` call.
    """
    rule = _standard_rule(site, scheme, cache)
    if rule is None and site.traced is not None:
        rule = _traced_rule(site, scheme)
    return rule


def resolve_module(
    module: nn.Module,
    module_kind: str,
    params: dict[str, nn.Parameter],
    layer: LayerInfo,
    scheme: Scheme,
    cache: RuleCache,
    uses: Mapping[str, TracedParam],
    prefix: str,
    norm_kinds: Mapping[str, str] | None = None,
    norm_evidence: str = "",
) -> dict[str, ParamRule]:
    """The rules of one module's direct parameters ``params`` (:func:`resolve` for each; one without a rule is
    left out). ``uses`` is what tracing found, by full parameter name (``prefix + name``).

    A Linear / conv / Embedding holding only its ``weight`` and ``bias``, and a norm's scale and shift, are
    most of a deep model's parameters and are answered without building a :class:`Site` for each: the same
    rules, decided by the same functions.
    """
    if module_kind == "layer" and "weight" in params and len(params) <= 1 + ("bias" in params):
        weight = _layer_weight_rule(module, layer, scheme, params["weight"], cache)
        if weight is not None:
            rules = {"weight": _with_padding_row(module, weight)}
            if "bias" in params:
                rules["bias"] = BIAS_ZERO
            return rules
    rules = {}
    for name, param in params.items():
        use = uses.get(prefix + name) if uses else None
        rule = _norm_rule(name, layer, scheme, norm_kinds, norm_evidence, use) if module_kind == "norm" else None
        if rule is None:
            rule = resolve(
                Site(module, module_kind, name, param, layer, params, norm_kinds, norm_evidence, use), scheme, cache
            )
        if rule is not None:
            rules[name] = rule
    return rules


def zero_on_norm(policy: Policy, layer: LayerInfo) -> bool:
    """Whether a branch end's zero goes on the norm after its last layer (``branch_last_norm``, or a layer
    ``norm_follows``; not in an entry block the scheme opens, ``layer.opens``, whose norm keeps its scale 1), or the
    output's zero on the norm before a classifier tied to the token embedding (``classifier_norm``)."""
    if layer.role == "classifier_norm":
        return policy.zeroes_classifier
    ends = layer.norm_follows or layer.role == "branch_last_norm"
    return policy.zeroes_branch_ends and policy.norm_aware and ends and not layer.opens  # an entry block: no zero


def _standard_rule(site: Site, scheme: Scheme, cache: RuleCache) -> ParamRule | None:
    kind = site.module_kind
    if kind == "layer":
        return _layer_rule(site, scheme, cache)
    if kind == "norm":
        return _norm_rule(site.param_name, site.layer, scheme, site.norm_kinds, site.norm_evidence, site.traced)
    if kind == "attention":
        return _attention_rule(site, scheme)
    if kind == "recurrent":
        return _recurrent_rule(site, scheme)
    if kind == "activation":
        return _activation_rule(site)
    return None  # a module of another class: what the trace found


def _activation_rule(site: Site) -> ParamRule:
    """A parametric activation's parameter (``PReLU.weight``, the slope of ``max(0, x) + a min(0, x)``) under
    every scheme: the constant its module was built with (``PReLU(init=0.25)``). It shapes the activation, it
    maps no features: zeroing it would make the activation a ReLU, drawing it would make ZerO random."""
    value = float(getattr(site.module, "init", 0.25))
    why = f"{type(site.module).__name__}'s slope, the constant it was built with: part of the activation"
    return ParamRule(f"constant({value:g})", why, constant_fill(value))


def _layer_rule(site: Site, scheme: Scheme, cache: RuleCache) -> ParamRule | None:
    """A Linear / conv / Embedding: the scheme's rule for the weight (none: the layer has none), its bias 0."""
    module, layer, name = site.module, site.layer, site.param_name
    weight = site.params.get("weight")
    weight_rule = None if weight is None else _layer_weight_rule(module, layer, scheme, weight, cache)
    if weight_rule is None:
        return None
    if name == "weight":
        return _with_padding_row(module, weight_rule)
    return BIAS_ZERO if name == "bias" else None


def _with_padding_row(module: nn.Module, weight_rule: ParamRule) -> ParamRule:
    """An Embedding's padding row stays 0, as torch keeps it (its gradient is always 0)."""
    padding = getattr(module, "padding_idx", None) if isinstance(module, nn.Embedding) else None
    if padding is None:
        return weight_rule
    why = f"{weight_rule.reason}; the padding row padding_idx={padding} stays 0"
    return replace(weight_rule, reason=why, fill=with_zero_row(weight_rule.fill, padding))


def _layer_weight_rule(
    module: nn.Module, layer: LayerInfo, scheme: Scheme, weight: torch.Tensor, cache: RuleCache
) -> ParamRule | None:
    """The rule of a Linear / conv / Embedding ``module``'s weight, built once per geometry in ``cache``
    where the scheme allows it (``geometry_keyed``: a deep model repeats a few layer geometries, and a rule
    costs more to build than a small tensor costs to fill), else once per layer."""
    rule = cache.get(id(module), _MISSING)  # asked before for this layer's weight, now for its bias
    if rule is _MISSING:
        if scheme.geometry_keyed:
            key = (type(module), layer, weight.shape, _geometry_key(module))
            rule = cache.get(key, _MISSING)
            if rule is _MISSING:
                rule = cache[key] = _weight_rule(module, layer, scheme, weight)
        else:
            rule = _weight_rule(module, layer, scheme, weight)
        cache[id(module)] = rule
    return rule  # type: ignore[return-value]


def _geometry_key(module: nn.Module) -> tuple:
    """The attributes :func:`_geometry` reads, as a plain tuple (cheaper to build and hash than the dataclass,
    and built for every layer, while the geometry is built once per key)."""
    if isinstance(module, nn.Embedding):
        return module.num_embeddings, module.embedding_dim
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    return module.in_channels, module.out_channels, module.groups, tuple(module.kernel_size)


def _geometry(module: nn.Module) -> Matrix | Table:
    if isinstance(module, nn.Embedding):
        return Table(module.num_embeddings, module.embedding_dim)
    return Matrix.of(module)


def _weight_rule(module: nn.Module, layer: LayerInfo, scheme: Scheme, weight: torch.Tensor) -> ParamRule | None:
    """The scheme's rule for a known layer's weight; a Linear's is split into row blocks where its role fuses
    projections, and a fused role on any other layer is refused."""
    if isinstance(module, nn.Linear):
        return _linear_rule(scheme, layer, weight.shape[1], weight.shape[0])
    if weight.dim() > 1 and fused_parts(layer.role, weight.shape[0], weight.shape[1]) is not None:
        raise ValueError(
            f"role {layer.role!r} splits an nn.Linear's output rows into projections; "
            f"{type(module).__name__} is not supported"
        )
    return _scheme_rule(scheme, _geometry(module), layer)


def _linear_rule(scheme: Scheme, layer: LayerInfo, in_features: int, out_features: int) -> ParamRule | None:
    """The rule of a Linear ``(in_features -> out_features)`` weight (or a traced matrix of that shape), split
    into row blocks where its role fuses projections."""
    parts = fused_parts(layer.role, out_features, in_features)
    if parts is None:
        return _scheme_rule(scheme, Matrix.linear(in_features, out_features), layer)
    return split_rule(scheme, layer, in_features, parts)


def _scheme_rule(scheme: Scheme, geometry: Matrix | Table, layer: LayerInfo) -> ParamRule | None:
    """Ask the scheme for a matrix's or a table's rule. A branch's last layer whose zero goes on the norm
    after it is asked for as an ordinary branch layer, and the reason says why."""
    note = ""
    if layer.role in RESIDUAL_LAST_ROLES and zero_on_norm(scheme.policy, layer):
        role = "branch" if layer.role == "branch_last" else "default"
        value = _end_value(scheme.policy, layer)
        layer, note = replace(layer, role=role), f" (a norm or layer scale follows: it starts at {value:g} instead)"
    if isinstance(geometry, Table):
        rule = scheme.table_rule(geometry, layer)
    else:
        rule = scheme.matrix_rule(geometry, layer)
    return replace(rule, reason=rule.reason + note) if rule is not None and note else rule


def split_rule(
    scheme: Scheme, layer: LayerInfo, in_features: int, parts: list[tuple[str, int, int]]
) -> ParamRule | None:
    """One rule for a weight whose output rows are blocks ``(role, start, stop)`` of separate projections:
    each block gets the scheme's rule for a Linear ``(in_features -> stop - start)`` in its own role (per-block
    fans, ZerO's identity per block); ``None`` if the scheme has no rule for one of them."""
    blocks = []
    for role, start, stop in parts:
        rule = _scheme_rule(scheme, Matrix.linear(in_features, stop - start), replace(layer, role=role))
        if rule is None:
            return None
        blocks.append((role, start, stop, rule))
    reason = "; ".join(f"rows {a}:{b} {role.removeprefix('attn_')}: {rule.reason}" for role, a, b, rule in blocks)
    return row_blocks_rule([(start, stop, rule) for _, start, stop, rule in blocks], reason)


def _attention_rule(site: Site, scheme: Scheme) -> ParamRule | None:
    """``nn.MultiheadAttention``'s direct parameters (its ``out_proj`` is a Linear of its own)."""
    name, shape = site.param_name, site.param.shape
    if name == "in_proj_weight":
        return split_rule(scheme, site.layer, shape[1], fused_parts("attn_qkv", shape[0]) or [])
    if name in MHA_PROJECTIONS:
        return split_rule(scheme, site.layer, shape[1], [(MHA_PROJECTIONS[name], 0, shape[0])])
    if name == "in_proj_bias":
        return BIAS_ZERO
    if name in ("bias_k", "bias_v"):
        return EXTRA_TOKEN_ZERO
    return None


def _norm_rule(
    name: str,
    layer: LayerInfo,
    scheme: Scheme,
    norm_kinds: Mapping[str, str] | None,
    evidence: str,
    use: TracedParam | None = None,
) -> ParamRule | None:
    """A norm's scale 1 and shift 0; the scale 0 where the scheme puts a zero on this norm. Which parameter is
    which: ``norm_kinds``, the traced kinds for norms of other classes (``offset_scale`` multiplies as
    ``c + w``, ``c`` the traced ``use.offset``: ``w`` starts at ``1 - c``, or ``-c`` for a zero; ``evidence``
    says how the norm was found), else torch's names (``weight`` scales, ``bias`` shifts)."""
    kind = (norm_kinds or TORCH_NORM_KINDS).get(name) or TORCH_NORM_KINDS.get(name)
    if kind == "shift":
        rule = NORM_SHIFT_ZERO
    elif kind == "scale":
        rule = _end_on_norm(scheme, layer) if zero_on_norm(scheme.policy, layer) else _scale_one(layer)
    elif kind == "offset_scale":
        rule = _offset_scale_rule(scheme, layer, 1.0 if use is None or use.offset is None else use.offset)
    else:
        return None
    return replace(rule, evidence=f"traced norm: {evidence}") if norm_kinds is not None else rule


def _scale_one(layer: LayerInfo) -> ParamRule:
    """A norm's scale at 1; said so where it ends an entry block's branch that the scheme starts on."""
    return OPEN_END_SCALE_ONE if layer.opens and layer.role == "branch_last_norm" else NORM_SCALE_ONE


def _offset_scale_rule(scheme: Scheme, layer: LayerInfo, offset: float) -> ParamRule:
    """A norm scale held as ``offset + w``: ``w = 1 - offset`` for a scale of 1, ``w = -offset`` for a zero."""
    zero = zero_on_norm(scheme.policy, layer)
    end = _end_value(scheme.policy, layer)
    if offset == 1.0 and end == 0.0:  # Gemma's 1 + w
        return (
            ParamRule("minus_ones", _why_zero_on_norm(scheme, layer) + "; the scale is 1 + w", MINUS_ONES, end=True)
            if zero
            else NORM_OFFSET_SCALE_ONE
        )
    value = end - offset if zero else 1.0 - offset
    why = _why_zero_on_norm(scheme, layer) if zero else _scale_one(layer).reason
    why = f"{why}; the scale is {offset:g} + w (the constant read from the traced call)"
    return ParamRule(f"constant({value:g})", why, constant_fill(value), end=zero)


def _end_value(policy: Policy, layer: LayerInfo) -> float:
    """Where a zero placed on a norm starts: 0, or for a branch end the policy's ``branch_end_value``."""
    return 0.0 if layer.role == "classifier_norm" else policy.branch_end_value


def _end_on_norm(scheme: Scheme, layer: LayerInfo) -> ParamRule:
    """The scale of a norm that carries a branch's (or the output's) start: 0, or IDInit's epsilon."""
    value = _end_value(scheme.policy, layer)
    why = _why_zero_on_norm(scheme, layer)
    if value == 0.0:
        return replace(zeros(why), end=True)
    return ParamRule(f"constant({value:g})", why, constant_fill(value), end=True)


def _why_zero_on_norm(scheme: Scheme, layer: LayerInfo) -> str:
    if layer.role == "classifier_norm":
        return (
            f"norm before an output layer tied to the token embedding: scale starts at 0, so the output is 0 "
            f"({scheme.name})"
        )
    value = _end_value(scheme.policy, layer)
    start = "0, so the branch outputs 0" if value == 0.0 else f"{value:g}, so the branch outputs ~0"
    return (
        f"norm after the last layer of a residual branch: scale starts at {start} "
        f"({scheme.name}; the layer before it keeps its own rule)"
    )


def _recurrent_rule(site: Site, scheme: Scheme) -> ParamRule | None:
    """A recurrent weight: the scheme's rule per gate block, in row order (so random draws come in a fixed
    order), none if one block has none; a bias 0, the LSTM forget gate's block of ``bias_ih`` 1."""
    module, layer, name = site.module, site.layer, site.param_name
    if layer.role not in RECURRENT_ROLES:
        raise ValueError(
            f"role {layer.role!r} on {type(module).__name__} is not supported; a recurrent layer takes the roles "
            f"{', '.join(RECURRENT_ROLES)}"
        )
    if name.startswith("bias"):
        return _recurrent_bias_rule(module, name, site.param.shape[0])
    blocks = [(block, scheme.recurrent_rule(block, layer)) for block in gate_blocks(module, name)]
    if any(rule is None for _, rule in blocks):
        return None
    gates_by_reason: dict[str, list[str]] = {}
    for block, rule in blocks:
        gates_by_reason.setdefault(rule.reason, []).append(block.gate)
    if len(blocks) == 1:
        reason = blocks[0][1].reason
    else:
        reason = "; ".join(f"{', '.join(gates)} gate: {why}" for why, gates in gates_by_reason.items())
    return row_blocks_rule([(block.start, block.stop, rule) for block, rule in blocks], reason)


def _recurrent_bias_rule(module: nn.Module, name: str, rows: int) -> ParamRule:
    lstm = cell_kind(module) == "lstm"
    if not (lstm and name.startswith("bias_ih")):
        return zeros(BIAS + (" (the LSTM forget gate's 1 is on bias_ih)" if lstm else ""))
    size = rows // 4
    fill = row_blocks_fill([(0, size, ZEROS), (size, 2 * size, ONES), (2 * size, 4 * size, ZEROS)])
    why = "0, forget gate 1 (Gers et al. 2000, Jozefowicz et al. 2015): the cell keeps sigmoid(1) = 0.73 of its memory"
    return ParamRule("forget_gate_one", why, fill)


def _traced_rule(site: Site, scheme: Scheme) -> ParamRule | None:
    """A parameter of a module of another class, from how the traced forward pass used it: a matrix gets the
    rule of a Linear of its shape (split where its role fuses projections), a table an embedding's, a bias 0,
    a position table, token or layer scale the scheme's rule for that kind (their role is their own), a scale
    of a residual sum's skip 1."""
    use, layer = site.traced, site.layer
    assert use is not None
    evidence = f"traced: {use.evidence}"
    if use.kind == "matrix":
        layer = replace(layer, role=use.role) if use.role else layer
        rule = _linear_rule(scheme, layer, use.in_features, use.out_features)
        if rule is None:
            return None
        fill = _stored_fill(rule, use.stored)
        if use.stacked:
            fill, rule = _stacked_fill(fill), replace(rule, reason=f"each of {use.stacked} stacked: {rule.reason}")
        if use.folded:
            rows, cols = (use.in_features, use.out_features)[:: 1 if use.stored == "in_out" else -1]
            fill = _folded_fill(fill, rows, cols)
        return replace(rule, fill=fill, evidence=evidence, role=use.role or rule.role)
    if use.kind == "table":
        rule = _scheme_rule(scheme, Table(*site.param.shape), layer)
        return None if rule is None else replace(rule, evidence=evidence)
    if use.kind == "bias":
        return replace(BIAS_ZERO, evidence=evidence)
    if use.kind == "skip_scale":
        return ParamRule(
            "ones", "scales a residual sum's skip: 1, the block the identity plus its branch", ONES, evidence=evidence
        )
    if use.kind in ("position", "token", "layer_scale"):
        rule = replace(scheme.parameter_rule(use.kind, site.param), role=use.kind, evidence=evidence)
        return rule if not use.offset else _less_offset(rule, use.offset)
    return None


def _less_offset(rule: ParamRule, offset: float) -> ParamRule:
    """``rule`` for a parameter used as ``offset + w``: ``w`` is the rule's value less ``offset``, so that what
    multiplies is what the rule gives (a layer scale at 0 held as ``1 + w`` starts at ``w = -1``)."""

    def shifted(t: torch.Tensor, g: torch.Generator) -> None:
        rule.fill(t, g)
        t.sub_(offset)

    why = f"{rule.reason}; it is used as {offset:g} + w, so w starts {offset:g} lower"
    return replace(rule, rule=f"{rule.rule}-{offset:g}", reason=why, fill=shifted)


def _folded_fill(fill: Fill, rows: int, cols: int) -> Fill:
    """Fill a weight held over several dims (an einsum's ``(d_model, heads, head_dim)``) as its ``rows x cols``
    matrix view, which ``fill`` fills as a 2-D weight."""

    def folded(t: torch.Tensor, g: torch.Generator) -> None:
        fill(t.view(rows, cols), g)

    return folded


def _stacked_fill(fill: Fill) -> Fill:
    """Fill each matrix ``w[e]`` of a stack (a mixture of experts' weights) as ``fill`` fills one, in order."""

    def each(t: torch.Tensor, g: torch.Generator) -> None:
        for matrix in t:
            fill(matrix, g)

    return each


def _stored_fill(rule: ParamRule, stored: str) -> Fill:
    """Fill a weight as ``rule`` fills a Linear's ``(out, in)`` weight; one stored ``(in, out)`` gets the
    transpose of that, with the same random draws in the same order.

    A deterministic rule writes the stored layout straight, as all the rows of the transpose
    (``transposed_rows``, :mod:`detinit.init.tensor.row_fills`; a shard's rows are a block of them); a random
    one fills an ``(out, in)`` temporary and copies its transpose.
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

"""The role vocabulary: what a layer is for, which is all a scheme needs to know about it.

Roles are structural facts that blocks declare about their layers
(:mod:`detinit.init.roles.declared` finds the declarations):

* ``"default"``: an ordinary layer on the main path (stems, projection shortcuts);
* ``"branch"``: a layer inside a residual branch that is not its last
  (scaled by :math:`L^{-1/(2m-2)}` under Fixup);
* ``"branch_last"``: the last layer of a residual branch (its output is added
  to a skip path) -- zero under ZerO / ConstNet / Fixup, as timm's ``zero_init_last``;
* ``"pre_hadamard"``: a projection whose output goes through a fixed Hadamard
  transform (ZerO's shortcuts): ZerO gives it the partial identity, since
  :math:`H I^*` already is the Hadamard block;
* ``"classifier"``: the output layer -- zero under ZerO, ConstNet and Fixup;
* ``"branch_last_norm"``: a normalisation layer between a branch's last layer and
  the add (``conv2 -> bn2 -> + skip``). Schemes that zero branch ends put the
  zero on this norm's scale instead, and the layer before it gets the rule of an
  ordinary branch layer (timm's ``zero_init_last``, torchvision's
  ``zero_init_residual``). Zeroing the layer itself would be undone by the norm:
  BatchNorm of an all-zero input outputs 0 but multiplies the gradient by
  :math:`1/\\sqrt{\\epsilon}` and normalises the layer's first tiny update to a
  unit-variance feature.

Transformer roles (:mod:`detinit.models.transformer`, ``nn.MultiheadAttention`` and
``nn.TransformerEncoderLayer`` / ``DecoderLayer`` get them automatically):

* ``"attn_query"``, ``"attn_key"``, ``"attn_value"``: the input projections of attention;
* ``"attn_out"``: the output projection, the last layer of the attention branch;
* ``"attn_qkv"``, ``"attn_kv"``: fused projections, split along the output
  rows into 3 (or 2) equal blocks that get the rules of the separate roles;
  ``"attn_qkv:512,128,128"`` gives the block sizes (grouped-query attention);
* ``"position"``: a learned positional embedding (``nn.Embedding``).

An ``nn.Embedding`` in any other role is a token embedding.

Roles for models detinit does not know (found by :mod:`detinit.init.roles.traced`, or given):

* ``"norm"``: a normalisation layer of a class detinit does not know
  (``LlamaRMSNorm``, ``T5LayerNorm``): scale 1, shift 0;
* ``"classifier_norm"``: the norm before an output layer whose weight is tied
  to the token embedding: schemes that start the output at 0 zero this norm's
  scale instead of the shared weight;
* ``"layer_scale"``: a module holding a vector that scales a residual branch
  elementwise (CaiT / ConvNeXt ``gamma``): schemes that start branches at 0
  zero it, and the branch's last layer gets an ordinary branch layer's rule.

This module defines the vocabulary (:data:`ROLES`, :func:`check_role`,
:func:`fused_parts`) and :class:`LayerInfo`, what a scheme is told about a layer
(its role, plus the counts Fixup and T-Fixup scale by), computed from the
declared roles by :func:`layer_infos`.

>>> check_role("attn_qkv:8,2,2", "example")
'attn_qkv:8,2,2'
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

ROLES = (
    "default",
    "branch",
    "branch_last",
    "pre_hadamard",
    "classifier",
    "branch_last_norm",
    "attn_query",
    "attn_key",
    "attn_value",
    "attn_out",
    "attn_qkv",
    "attn_kv",
    "position",
    "norm",
    "classifier_norm",
    "layer_scale",
)
NORM_ROLES = ("norm", "branch_last_norm", "classifier_norm")
BRANCH_END_SCALES = ("branch_last_norm", "layer_scale")  # carry a branch's zero instead of its last layer
FUSED_ROLES = {"attn_qkv": ("attn_query", "attn_key", "attn_value"), "attn_kv": ("attn_key", "attn_value")}
RESIDUAL_LAST_ROLES = ("branch_last", "attn_out")  # layers whose output is added to a skip path
ATTENTION_ROLES = frozenset({"attn_query", "attn_key", "attn_value", "attn_qkv", "attn_kv"})


def check_role(role: object, where: str) -> str:
    """``role`` if it is a role (or a fused role with block sizes), else a ``ValueError`` naming ``where``."""
    if isinstance(role, str):
        base, _, sizes = role.partition(":")
        if role in ROLES or (base in FUSED_ROLES and sizes):
            if sizes:
                parts = sizes.split(",")
                if len(parts) != len(FUSED_ROLES[base]) or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
                    raise ValueError(
                        f"{where}: fused role {role!r} needs {len(FUSED_ROLES[base])} positive block sizes, "
                        f"e.g. {base}:{','.join(['64'] * len(FUSED_ROLES[base]))}"
                    )
            return role
    raise ValueError(
        f"{where}: role {role!r} is not supported; roles are {', '.join(ROLES)} "
        "(fused roles may give block sizes, e.g. 'attn_qkv:512,128,128')"
    )


def fused_parts(role: str, rows: int, in_features: int | None = None) -> list[tuple[str, int, int]] | None:
    """``[(role, start, stop), ...]`` row blocks of a fused role, ``None`` for a plain role.

    A self-attention ``"attn_qkv"`` without block sizes must map ``d`` inputs
    to ``3 d`` rows (when ``in_features`` is given): any other shape is
    grouped-query or multi-query attention, whose blocks are not equal, and an
    equal split would initialise them silently wrong.

    >>> fused_parts("attn_qkv", 12)
    [('attn_query', 0, 4), ('attn_key', 4, 8), ('attn_value', 8, 12)]
    >>> fused_parts("attn_qkv:8,2,2", 12)
    [('attn_query', 0, 8), ('attn_key', 8, 10), ('attn_value', 10, 12)]
    """
    base, _, sizes = role.partition(":")
    if base not in FUSED_ROLES:
        return None
    names = FUSED_ROLES[base]
    if not sizes and base == "attn_qkv" and in_features is not None and rows != 3 * in_features:
        raise ValueError(
            f"fused role 'attn_qkv' on a layer mapping {in_features} inputs to {rows} rows: equal blocks need "
            f"{3 * in_features} rows; give the query, key and value sizes, e.g. 'attn_qkv:{in_features},n,n' "
            "for grouped-query attention"
        )
    if sizes:
        counts = [int(p) for p in sizes.split(",")]
    elif rows % len(names) == 0:
        counts = [rows // len(names)] * len(names)
    else:
        counts = []
    if sum(counts) != rows:
        raise ValueError(
            f"fused role {role!r}: a weight with {rows} output rows cannot be split into "
            f"{'blocks of ' + sizes if sizes else f'{len(names)} equal blocks'}; give the block sizes, "
            f"e.g. '{base}:{','.join(['n'] * len(names))}'"
        )
    parts, start = [], 0
    for name, count in zip(names, counts):
        parts.append((name, start, start + count))
        start += count
    return parts


@dataclass(frozen=True)
class RoleSource:
    """A declared role, who declared it, and the block it belongs to."""

    role: str
    source: str
    block: str | None = None


@dataclass(frozen=True)
class LayerInfo:
    """What a scheme knows about a layer: its role and, for Fixup, the branch counts."""

    role: str = "default"
    num_branches: int = 0  # residual branches in the whole model (L)
    branch_depth: int = 0  # layers in this layer's residual branch (m)
    num_attention: int = 0  # attention layers (attn_out roles) in the whole model (T-Fixup's N)
    norm_follows: bool = False  # a branch_last / attn_out layer followed by a branch_last_norm or layer_scale
    opens: bool = False  # in an entry block whose branch starts on (ZerO's open_blocks, roles/entries.py)
    mixes: bool = False  # in a norm-ended branch whose square layers mix channels (ZerO's branch_mixing)


def default_layer_info(roles: Mapping[str, RoleSource]) -> LayerInfo:
    """The :class:`LayerInfo` of a module without a declared role: ``"default"`` with the model-wide counts."""
    return LayerInfo(
        "default",
        num_branches=sum(r.role in RESIDUAL_LAST_ROLES for r in roles.values()),
        num_attention=sum(r.role == "attn_out" for r in roles.values()),
    )


def layer_infos(
    roles: Mapping[str, RoleSource], opened: Collection[str] = (), mixed: Collection[str] = ()
) -> dict[str, LayerInfo]:
    """Per-module :class:`LayerInfo`: role plus the residual-branch counts Fixup needs.

    ``num_branches`` is the number of ``branch_last`` and ``attn_out`` layers in
    the model (each residual branch ends in exactly one); ``num_attention`` the
    number of ``attn_out`` layers; ``branch_depth`` of a branch layer is the
    number of ``branch`` / ``branch_last`` layers its block declared; ``opens``: the layer's block is one of
    ``opened`` (entry blocks whose branch starts on, :mod:`detinit.init.roles.entries`); ``mixes``: one of
    ``mixed`` (blocks whose square branch layers mix their channels).
    """
    default = default_layer_info(roles)
    depth: dict[str | None, int] = {}
    last: dict[str | None, list[str]] = {}
    normed: set[str | None] = set()
    for name, r in roles.items():
        if r.block is not None and r.role in ("branch", "branch_last"):
            depth[r.block] = depth.get(r.block, 0) + 1
        if r.role in RESIDUAL_LAST_ROLES:
            last.setdefault(r.block, []).append(name)
        if r.role in BRANCH_END_SCALES:
            normed.add(r.block)
    for block in normed:
        if len(last.get(block, [])) > 1:
            raise ValueError(
                f"block {block!r} declares a 'branch_last_norm' or 'layer_scale' but {len(last.get(block, []))} 'branch_last' layers "
                f"({', '.join(last.get(block, []))}); the norm must follow one branch's last layer, or end a branch "
                "whose layers are all 'branch' (a sum of experts before a norm)"
            )
    return {
        name: LayerInfo(
            r.role,
            default.num_branches,
            depth.get(r.block, 0) if r.block is not None else 0,
            default.num_attention,
            norm_follows=r.role in RESIDUAL_LAST_ROLES and r.block in normed,
            opens=r.block is not None and r.block in opened,
            mixes=r.block is not None and r.block in mixed,
        )
        for name, r in roles.items()
    }

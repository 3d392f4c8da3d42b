"""Structural roles of layers, declared by the blocks that own them.

A module can declare the roles of its sub-modules with a duck-typed hook
(as timm's ``zero_init_last()``)::

    class Block(nn.Module):
        def detinit_roles(self) -> dict[str, str]:
            return {"conv1": "branch", "conv2": "branch_last"}   # names relative to the block

A model following timm's convention (``get_classifier()``) has its classifier
found that way. torch's own Transformer layers have known structure and get
their roles without a hook: ``nn.MultiheadAttention.out_proj`` is
``"attn_out"`` (its fused ``in_proj_weight`` is split by
:mod:`detinit.init.apply`), ``linear1`` / ``linear2`` of
``nn.TransformerEncoderLayer`` and ``nn.TransformerDecoderLayer`` are
``"branch"`` / ``"branch_last"``. A user can override or add roles with ``roles={"fc": "classifier"}``
(names as in ``model.named_modules()``). Nothing is guessed from names.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from .schemes import RESIDUAL_LAST_ROLES, LayerInfo, check_role


@dataclass(frozen=True)
class RoleSource:
    """A declared role, who declared it, and the block it belongs to."""

    role: str
    source: str
    block: str | None = None


def _torch_roles(module: nn.Module) -> dict[str, str]:
    """Roles inside torch's Transformer layers, known from their documented structure."""
    if isinstance(module, nn.MultiheadAttention):
        return {"out_proj": "attn_out"}
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        return {"linear1": "branch", "linear2": "branch_last"}
    return {}


def collect_roles(model: nn.Module, overrides: Mapping[str, str] | None = None) -> dict[str, RoleSource]:
    """Map module names to :class:`RoleSource`; modules not listed are ``"default"``.

    Sources, later ones winning: torch's Transformer layers, ``get_classifier()``,
    ``detinit_roles()`` hooks (outer blocks first), then ``overrides``.
    """
    names = {id(m): name for name, m in model.named_modules()}
    roles: dict[str, RoleSource] = {}
    for block_name, block in model.named_modules():
        for child, role in _torch_roles(block).items():
            full = f"{block_name}.{child}" if block_name else child
            roles[full] = RoleSource(role, f"{type(block).__name__} structure", block_name)
    get_classifier = getattr(model, "get_classifier", None)
    if callable(get_classifier):
        classifier = get_classifier()
        if isinstance(classifier, nn.Module) and id(classifier) in names:
            roles[names[id(classifier)]] = RoleSource("classifier", "model.get_classifier()")
    for block_name, block in model.named_modules():
        hook = getattr(block, "detinit_roles", None)
        if not callable(hook):
            continue
        for child, role in hook().items():
            full = f"{block_name}.{child}" if block_name else child
            where = f"{type(block).__name__}.detinit_roles() of {block_name or 'the model'}"
            if full not in names.values():
                raise ValueError(f"{where} names {child!r}, which is not a sub-module")
            roles[full] = RoleSource(check_role(role, where), f"{type(block).__name__}.detinit_roles()", block_name)
    for name, role in (overrides or {}).items():
        if name not in names.values():
            close = difflib.get_close_matches(name, [n for n in names.values() if n], n=3)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise ValueError(f"roles: {name!r} is not a module of the model{hint}")
        roles[name] = RoleSource(check_role(role, f"roles[{name!r}]"), "roles= argument")
    return roles


def default_layer_info(roles: Mapping[str, RoleSource]) -> LayerInfo:
    """The :class:`LayerInfo` of a module without a declared role: ``"default"`` with the model-wide counts."""
    return LayerInfo(
        "default",
        num_branches=sum(r.role in RESIDUAL_LAST_ROLES for r in roles.values()),
        num_attention=sum(r.role == "attn_out" for r in roles.values()),
    )


def layer_infos(roles: Mapping[str, RoleSource]) -> dict[str, LayerInfo]:
    """Per-module :class:`LayerInfo`: role plus the residual-branch counts Fixup needs.

    ``num_branches`` is the number of ``branch_last`` and ``attn_out`` layers in
    the model (each residual branch ends in exactly one); ``num_attention`` the
    number of ``attn_out`` layers; ``branch_depth`` of a branch layer is the
    number of ``branch`` / ``branch_last`` layers its block declared.
    """
    default = default_layer_info(roles)
    depth: dict[str | None, int] = {}
    last: dict[str | None, list[str]] = {}
    normed: set[str | None] = set()
    for name, r in roles.items():
        if r.block is not None and r.role in ("branch", "branch_last"):
            depth[r.block] = depth.get(r.block, 0) + 1
        if r.role == "branch_last":
            last.setdefault(r.block, []).append(name)
        if r.role == "branch_last_norm":
            normed.add(r.block)
    for block in normed:
        if len(last.get(block, [])) != 1:
            raise ValueError(
                f"block {block!r} declares a 'branch_last_norm' but {len(last.get(block, []))} 'branch_last' layers "
                f"({', '.join(last.get(block, [])) or 'none'}); the norm must follow exactly one branch's last layer"
            )
    return {
        name: LayerInfo(
            r.role,
            default.num_branches,
            depth.get(r.block, 0) if r.block is not None else 0,
            default.num_attention,
            norm_follows=r.role == "branch_last" and r.block in normed,
        )
        for name, r in roles.items()
    }

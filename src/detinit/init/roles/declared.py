"""Roles declared by the blocks that own the layers: :func:`collect_roles`.

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

from torch import nn

from ... import hooks
from .traced import TracedRole
from .vocabulary import RoleSource, check_role


def _torch_roles(module: nn.Module) -> dict[str, str]:
    """Roles inside torch's Transformer layers, known from their documented structure."""
    if isinstance(module, nn.MultiheadAttention):
        return {"out_proj": "attn_out"}
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        return {"linear1": "branch", "linear2": "branch_last"}
    return {}


def collect_roles(
    model: nn.Module,
    overrides: Mapping[str, str] | None = None,
    traced: Mapping[str, TracedRole] | None = None,
    *,
    named: list[tuple[str, nn.Module]] | None = None,
) -> dict[str, RoleSource]:
    """Map module names to :class:`RoleSource`; modules not listed are ``"default"``.

    Sources, later ones winning: roles traced from the computation
    (:func:`detinit.init.roles.traced.trace_roles`), torch's Transformer layers,
    ``get_classifier()``, ``detinit_roles()`` hooks (outer blocks first), then ``overrides``. ``named`` is
    ``list(model.named_modules())`` where the caller has it.
    """
    named = list(model.named_modules()) if named is None else named  # walked once: three passes below
    names = {id(m): name for name, m in named}
    known = set(names.values())
    roles: dict[str, RoleSource] = {
        name: RoleSource(r.role, f"traced: {r.evidence}", r.block) for name, r in (traced or {}).items()
    }
    for block_name, block in named:
        for child, role in _torch_roles(block).items():
            full = f"{block_name}.{child}" if block_name else child
            roles[full] = RoleSource(role, f"{type(block).__name__} structure", block_name)
    get_classifier = getattr(model, hooks.CLASSIFIER_HOOK, None)
    if callable(get_classifier):
        classifier = get_classifier()
        if isinstance(classifier, nn.Module) and id(classifier) in names:
            roles[names[id(classifier)]] = RoleSource("classifier", "model.get_classifier()")
    for block_name, block in named:
        declared = hooks.declared_roles(block)
        if declared is None:
            continue
        for child, role in declared.items():
            full = f"{block_name}.{child}" if block_name else child
            where = f"{type(block).__name__}.detinit_roles() of {block_name or 'the model'}"
            if full not in known:
                raise ValueError(f"{where} names {child!r}, which is not a sub-module")
            roles[full] = RoleSource(check_role(role, where), f"{type(block).__name__}.detinit_roles()", block_name)
    for name, role in (overrides or {}).items():
        if name not in known:
            close = difflib.get_close_matches(name, [n for n in names.values() if n], n=3)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise ValueError(f"roles: {name!r} is not a module of the model{hint}")
        roles[name] = RoleSource(check_role(role, f"roles[{name!r}]"), "roles= argument", _given_block(name, roles))
    return roles


def _given_block(name: str, roles: Mapping[str, RoleSource]) -> str:
    """The block of a role given in ``roles=``: the one traced or declared for the module, else its parent
    module (``"layer1.0"`` for ``"layer1.0.conv2"``), so that Fixup can count each block's branch layers."""
    known = roles.get(name)
    if known is not None and known.block is not None:
        return known.block
    return name.rpartition(".")[0]

"""Structural roles of layers, declared by the blocks that own them.

A module can declare the roles of its sub-modules with a duck-typed hook
(as timm's ``zero_init_last()``)::

    class Block(nn.Module):
        def detinit_roles(self) -> dict[str, str]:
            return {"conv1": "branch", "conv2": "branch_last"}   # names relative to the block

A model following timm's convention (``get_classifier()``) has its classifier
found that way. A user can override or add roles with ``roles={"fc": "classifier"}``
(names as in ``model.named_modules()``). Nothing is guessed from names.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from .schemes import ROLES, LayerInfo


@dataclass(frozen=True)
class RoleSource:
    """A declared role, who declared it, and the block it belongs to."""

    role: str
    source: str
    block: str | None = None


def _check_role(role: object, where: str) -> str:
    if role not in ROLES:
        raise ValueError(f"{where}: role {role!r} is not supported; roles are {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def collect_roles(model: nn.Module, overrides: Mapping[str, str] | None = None) -> dict[str, RoleSource]:
    """Map module names to :class:`RoleSource`; modules not listed are ``"default"``.

    Sources, later ones winning: ``get_classifier()``, ``detinit_roles()``
    hooks (outer blocks first), then ``overrides``.
    """
    names = {id(m): name for name, m in model.named_modules()}
    roles: dict[str, RoleSource] = {}
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
            roles[full] = RoleSource(_check_role(role, where), f"{type(block).__name__}.detinit_roles()", block_name)
    for name, role in (overrides or {}).items():
        if name not in names.values():
            close = difflib.get_close_matches(name, [n for n in names.values() if n], n=3)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise ValueError(f"roles: {name!r} is not a module of the model{hint}")
        roles[name] = RoleSource(_check_role(role, f"roles[{name!r}]"), "roles= argument")
    return roles


def layer_infos(roles: Mapping[str, RoleSource]) -> dict[str, LayerInfo]:
    """Per-module :class:`LayerInfo`: role plus the residual-branch counts Fixup needs.

    ``num_branches`` is the number of ``branch_last`` layers in the model (each
    residual branch ends in exactly one); ``branch_depth`` of a branch layer is
    the number of ``branch`` / ``branch_last`` layers its block declared.
    """
    num_branches = sum(r.role == "branch_last" for r in roles.values())
    depth: dict[str | None, int] = {}
    for r in roles.values():
        if r.block is not None and r.role in ("branch", "branch_last"):
            depth[r.block] = depth.get(r.block, 0) + 1
    return {
        name: LayerInfo(r.role, num_branches, depth.get(r.block, 0) if r.block is not None else 0)
        for name, r in roles.items()
    }

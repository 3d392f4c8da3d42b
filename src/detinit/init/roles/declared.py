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
    get_classifier = hooks.callable_hook(model, hooks.CLASSIFIER_HOOK)
    if get_classifier is not None:
        for classifier in _classifiers(model, get_classifier(), names):
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
        _check_role_target(name, model.get_submodule(name))
        roles[name] = RoleSource(check_role(role, f"roles[{name!r}]"), "roles= argument", _given_block(name, roles))
    return roles


def _classifiers(model: nn.Module, found: object, names: Mapping[int, str]) -> list[nn.Module]:
    """The module(s) ``model.get_classifier()`` returned (timm: one head; a distilled model: a tuple; ``None``:
    no classifier), each a sub-module of ``model``; anything else is an error naming what came back."""
    if found is None:
        return []
    heads = list(found) if isinstance(found, (tuple, list)) else [found]
    for head in heads:
        if not isinstance(head, nn.Module):
            raise ValueError(
                f"{type(model).__name__}.get_classifier() returned {found!r}; it must return the classifier "
                "module (a tuple of them, or None for none)"
            )
        if id(head) not in names:
            raise ValueError(
                f"{type(model).__name__}.get_classifier() returned a {type(head).__name__} that is not a "
                "sub-module of the model, so its role cannot be honoured; return the model's own head"
            )
    return [head for head in heads if id(head) != id(model)]


def _check_role_target(name: str, module: nn.Module) -> None:
    """A role given in ``roles=`` applies to the parameters a module holds itself: the model itself, or a
    module that holds none (a container, an activation), is refused."""
    if not name:
        raise ValueError("roles: '' is the model itself; give roles to its layers, e.g. {'fc': 'classifier'}")
    holds = any(p is not None for p in module._parameters.values()) or hasattr(module, "parametrizations")
    if not holds:
        children = [child for child, _ in module.named_children()][:3]
        hint = f"; its sub-modules: {', '.join(f'{name}.{c}' for c in children)}" if children else ""
        raise ValueError(
            f"roles: {name!r} is a {type(module).__name__}, which holds no parameters of its own, so a role "
            f"there does nothing; give it to the layer that holds the weights{hint}"
        )


def _given_block(name: str, roles: Mapping[str, RoleSource]) -> str:
    """The block of a role given in ``roles=``: the one traced or declared for the module, else its parent
    module (``"layer1.0"`` for ``"layer1.0.conv2"``), so that Fixup can count each block's branch layers."""
    known = roles.get(name)
    if known is not None and known.block is not None:
        return known.block
    return name.rpartition(".")[0]

"""The blocks of a residual network whose branch ends on a norm, and the entry blocks among them: where its
features are made rather than passed on.

ZerO starts every residual block as the identity, so at step 0 a network's features are the stem's, expanded by
the fixed shortcuts of the blocks that change the width: on a BatchNorm ResNet-20 the 64 channels of stage 3 are
a Hadamard expansion of stage 1's 16, about 10 effective channels where Kaiming's random branches give 19-38, and
after 256 SGD steps ZerO is still building the diversity that random branches start with (``docs/results.md``,
section 14). Two options of ZerO act on the blocks found here (by default where the branch ends on a BatchNorm):
``branch_mixing`` gives their square branch layers Hadamard mixing on every tap instead of the identity (the
zero stays on the norm), and ``open_blocks="entries"`` starts the branch of the entry blocks on (their norm's
scale at 1), leaving every other block the identity. The entry blocks:

* the model's first block whose branch ends on a norm (role ``branch_last_norm``): it makes the features of the
  first stage, which every later identity block passes on;
* each such block whose branch changes the width (its first branch layer reads a different number of channels
  than its last norm has): a block with a projection shortcut, which is not the identity under any start.

On a ResNet these are the first block of every stage. Found from the roles and the layers' shapes alone, in the
modules' order, so any model whose blocks declare (or whose trace finds) their branch layers and end norm gets them.

>>> from detinit import create_model
>>> from detinit.init.roles.declared import collect_roles
>>> model = create_model("resnet20", init=None)
>>> ended, entries = normed_blocks(list(model.named_modules()), collect_roles(model, None, {}))
>>> len(ended), list(entries.values())
(9, ['stages.0.0', 'stages.1.0', 'stages.2.0'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .layers import CONV_TRANSPOSE_TYPES, CONV_TYPES
from .traced.residuals import traced_block_module
from .vocabulary import RoleSource

BRANCH_LAYER_ROLES = ("branch", "branch_last")


def normed_blocks(
    named: Sequence[tuple[str, nn.Module]], roles: Mapping[str, RoleSource], *, batch_norm_only: bool = False
) -> tuple[dict[str, str], dict[str, str]]:
    """``(ended, entries)``: the blocks whose branch ends on a norm (role ``branch_last_norm``; ``batch_norm_only``:
    on a BatchNorm, ZerO's default, where it was measured) and the entry blocks among them (see the module
    docstring), each in the order of ``named`` (the model's ``named_modules()``), as block label in ``roles``
    (:func:`~detinit.init.roles.declared.collect_roles`; a declared block's name, a traced one's evidence) -> its
    module (a declared block's own; a traced block's, the module whose forward adds its sum)."""
    first_layer: dict[str, nn.Module] = {}  # block -> its first branch layer, in module order
    members: dict[str, list[str]] = {}  # block -> its modules' names
    end_norms: list[tuple[str, nn.Module]] = []  # (block, its end norm), in module order
    for name, module in named:
        source = roles.get(name)
        if source is None or source.block is None:
            continue
        members.setdefault(source.block, []).append(name)
        if source.role in BRANCH_LAYER_ROLES:
            first_layer.setdefault(source.block, module)
        elif source.role == "branch_last_norm" and (not batch_norm_only or isinstance(module, _BatchNorm)):
            end_norms.append((source.block, module))
    modules = {name for name, _ in named}
    ended: dict[str, str] = {}
    entries: dict[str, str] = {}
    for block, norm in end_norms:
        if block in ended:
            continue
        traced = traced_block_module(block)
        ended[block] = traced if traced is not None else block if block in modules else _holder(members[block])
        if len(ended) == 1 or _changes_width(first_layer.get(block), norm):
            entries[block] = ended[block]
    return ended, entries


def _holder(names: Sequence[str]) -> str:
    """The deepest module whose name is a prefix of every name in ``names`` (``""``: the model itself): the block
    of a label that names no module."""
    parts = [name.split(".") for name in names]
    common = []
    for level in zip(*parts):
        if len(set(level)) > 1:
            break
        common.append(level[0])
    if len(common) == min(len(p) for p in parts):  # one of them is the holder's own child: keep its parent
        common = common[:-1]
    return ".".join(common)


def _changes_width(layer: nn.Module | None, norm: nn.Module) -> bool:
    """Whether a branch whose first layer is ``layer`` ends (at ``norm``) with another number of channels than it
    reads; ``False`` where either width is unknown (a layer that is no Linear or convolution, a norm without a
    scale)."""
    scale = getattr(norm, "weight", None)
    if layer is None or scale is None:
        return False
    if isinstance(layer, nn.Linear):
        width_in = layer.in_features
    elif isinstance(layer, CONV_TYPES + CONV_TRANSPOSE_TYPES):
        width_in = layer.in_channels
    else:
        return False
    return width_in != scale.numel()

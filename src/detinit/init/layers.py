"""Layer geometry: which modules are matrix layers and norms, and the shape of their matrix.

Schemes, diagnostics and the trainer share these facts: a ``Linear`` maps
``Q = in_features`` to ``P = out_features``; a convolution with ``groups = G``
holds ``G`` independent ``P x Q`` matrices (``P = out_channels / G``,
``Q = in_channels / G``) per kernel tap; a transposed convolution stores its
weight as ``(in, out / G, *kernel)``, the other way round.

>>> from torch import nn
>>> layer_shape(nn.Conv2d(8, 16, 3, groups=2)), layer_geometry(nn.ConvTranspose1d(4, 4, 3))
((8, 4), (1, True))
"""

from __future__ import annotations

from torch import nn

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONV_TRANSPOSE_TYPES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
MATRIX_LAYER_TYPES = (nn.Linear,) + CONV_TYPES + CONV_TRANSPOSE_TYPES
NORM_TYPES = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*d, SyncBatchNorm, InstanceNorm*d
    nn.GroupNorm,
    nn.LayerNorm,
    nn.RMSNorm,
)


def layer_geometry(module: nn.Module) -> tuple[int, bool]:
    """``(groups, transposed)`` of a Linear / conv layer."""
    if isinstance(module, CONV_TYPES + CONV_TRANSPOSE_TYPES):
        return module.groups, isinstance(module, CONV_TRANSPOSE_TYPES)
    return 1, False


def layer_shape(module: nn.Module) -> tuple[int, int]:
    """``(P, Q)``: outputs and inputs per group of a Linear / conv layer."""
    if isinstance(module, nn.Linear):
        return module.out_features, module.in_features
    return module.out_channels // module.groups, module.in_channels // module.groups

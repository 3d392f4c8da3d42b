"""Layer geometry: which modules are matrix layers and norms, and the matrix a scheme fills (:class:`Matrix`).

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

import math
import re
from typing import NamedTuple

from torch import nn

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONV_TRANSPOSE_TYPES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
MATRIX_LAYER_TYPES = (nn.Linear,) + CONV_TYPES + CONV_TRANSPOSE_TYPES
WEIGHT_LAYER_TYPES = MATRIX_LAYER_TYPES + (nn.Embedding,)  # a weight a scheme fills as a matrix or a table
NORM_TYPES = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*d, SyncBatchNorm, InstanceNorm*d
    nn.GroupNorm,
    nn.LayerNorm,
    nn.RMSNorm,
)


NORM_CLASS_NAME = re.compile(r"(norm(\d+d)?|rmsnorm\w*|layernorm\w*)$", re.IGNORECASE)


def is_norm_module(module: nn.Module) -> bool:
    """A normalisation layer by type (torch's norms) or by class name (Hugging Face's ``LlamaRMSNorm``,
    ``T5LayerNorm``, timm's ``LayerNorm2d``): what ZerO's ``depth_scale`` looks for before a model is traced.

    >>> is_norm_module(nn.BatchNorm2d(4)), is_norm_module(nn.Linear(2, 2))
    (True, False)
    """
    return isinstance(module, NORM_TYPES) or bool(NORM_CLASS_NAME.search(type(module).__name__))


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


class Matrix(NamedTuple):
    """What a scheme sees of a layer's weight: the kind of layer and its ``P x Q`` matrix per group and tap
    (a tuple: one is built for each layer geometry, cheaply).

    ``kind`` is ``"linear"``, ``"conv"`` or ``"conv_transpose"``; ``out_features`` (``P``) and
    ``in_features`` (``Q``) count one group's outputs and inputs. A fused projection's block, a traced
    ``x @ W`` or a recurrent gate block is a ``"linear"`` matrix of its own shape.

    >>> Matrix.of(nn.Conv2d(8, 16, 3, groups=2))
    Matrix(kind='conv', out_features=8, in_features=4, groups=2, kernel_size=(3, 3))
    >>> Matrix.linear(4, 8).taps, Matrix.of(nn.ConvTranspose1d(4, 4, 3)).transposed
    (1, True)
    """

    kind: str
    out_features: int
    in_features: int
    groups: int = 1
    kernel_size: tuple[int, ...] = ()

    @classmethod
    def linear(cls, in_features: int, out_features: int) -> Matrix:
        """The matrix of an ``nn.Linear(in_features, out_features)``."""
        return cls("linear", out_features, in_features)

    @classmethod
    def of(cls, module: nn.Module) -> Matrix:
        """The matrix of a Linear, ConvNd or ConvTransposeNd layer."""
        if isinstance(module, nn.Linear):
            return cls.linear(module.in_features, module.out_features)
        kind = "conv_transpose" if isinstance(module, CONV_TRANSPOSE_TYPES) else "conv"
        p, q = layer_shape(module)
        return cls(kind, p, q, module.groups, tuple(module.kernel_size))

    @property
    def transposed(self) -> bool:
        """Stored ``(in, out / groups, *kernel)``, as a ConvTranspose."""
        return self.kind == "conv_transpose"

    @property
    def taps(self) -> int:
        """Kernel taps of a convolution (1 for a Linear and a transposed convolution: ZerO treats each
        tap of the latter on its own)."""
        return math.prod(self.kernel_size) if self.kind == "conv" else 1


class Table(NamedTuple):
    """An embedding table ``(num_embeddings, embedding_dim)`` as a scheme sees it."""

    num_embeddings: int
    embedding_dim: int

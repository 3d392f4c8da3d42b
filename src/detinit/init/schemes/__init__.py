"""Initialisation schemes: what each does to a layer's matrix, an embedding table, and the other parameter
kinds, given the layer's role. One module per family; :mod:`.registry` names them.

The roles are in :mod:`detinit.init.roles.vocabulary`; where a parameter's rule is decided, from the scheme
and what every scheme shares, is :func:`detinit.init.apply.resolve.resolve`.
"""

from ..roles.vocabulary import LayerInfo
from .base import Policy, Scheme
from .constnet import ConstNetScheme
from .fixup import FixupScheme
from .idinit import IDInitScheme
from .random import GatedScheme, RandomScheme
from .registry import SCHEMES, get_scheme, list_schemes
from .rule import ParamRule, WeightRule, row_blocks_rule
from .transformer import GPT2Scheme, TFixupScheme
from .zero import ZerOScheme

__all__ = [
    "SCHEMES",
    "ConstNetScheme",
    "FixupScheme",
    "GPT2Scheme",
    "GatedScheme",
    "IDInitScheme",
    "LayerInfo",
    "ParamRule",
    "Policy",
    "RandomScheme",
    "Scheme",
    "TFixupScheme",
    "WeightRule",
    "ZerOScheme",
    "get_scheme",
    "list_schemes",
    "row_blocks_rule",
]

"""Deterministic and random initialisers.

Tensor level (in place, ``torch.nn.init`` conventions): :func:`zero_`,
:func:`partial_identity_`, :func:`identity_`, :func:`const_avg_`, :func:`idinit_`,
:func:`hadamard`, and the random baselines taking an explicit generator.
Model level: :func:`initialize` and :func:`check_zero_one`.
"""

from .apply import initialize
from .apply.check import check_zero_one
from .apply.report import InitReport
from .roles.vocabulary import ROLES
from .schemes import get_scheme, list_schemes
from .tensor.constnet import const_avg_
from .tensor.hadamard import fill_sylvester_, hadamard
from .tensor.idinit import idinit_
from .tensor.random import (
    fans,
    kaiming_normal_,
    kaiming_uniform_,
    normal_,
    orthogonal_,
    xavier_normal_,
    xavier_uniform_,
)
from .tensor.zero import hadamard_scale, identity_, partial_identity_, zero_, zero_singular_values

__all__ = [
    "ROLES",
    "InitReport",
    "check_zero_one",
    "const_avg_",
    "fans",
    "fill_sylvester_",
    "get_scheme",
    "hadamard",
    "hadamard_scale",
    "identity_",
    "idinit_",
    "initialize",
    "kaiming_normal_",
    "kaiming_uniform_",
    "list_schemes",
    "normal_",
    "orthogonal_",
    "partial_identity_",
    "xavier_normal_",
    "xavier_uniform_",
    "zero_",
    "zero_singular_values",
]

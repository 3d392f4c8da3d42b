"""Fixup (Zhang, Dauphin & Ma 2019): residual networks trained without normalisation by scaling each
branch's layers with the depth and starting its last layer at 0."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..roles.layers import Matrix, Table
from ..roles.vocabulary import RESIDUAL_LAST_ROLES, LayerInfo
from ..tensor import random as rnd
from .base import Policy, Scheme
from .random import torch_default_embedding
from .rule import ParamRule, zeros


def fixup_depth_scale(num_branches: int, branch_depth: int) -> float:
    r"""Fixup's scale :math:`L^{-1/(2m-2)}` of a branch's layers before its last, for :math:`L` residual branches
    of :math:`m \ge 2` layers: one SGD step then changes the network by O(1) however deep it is.

    >>> fixup_depth_scale(9, 2)
    0.3333333333333333
    """
    return num_branches ** (-1.0 / (2 * branch_depth - 2))


class FixupScheme(Scheme):
    r"""Fixup (Zhang, Dauphin & Ma 2019).

    Classifier and the last layer of every residual branch at 0; the other
    layers of a branch He-normal (fan_in) times :math:`L^{-1/(2m-2)}`, with
    ``L`` residual branches in the model and ``m`` layers in the branch;
    layers outside branches He-normal. The model's scalar multipliers start at
    1 and its scalar biases at 0 (:mod:`detinit.nn.gates`).
    """

    name = "fixup"
    policy = Policy(zeroes_branch_ends=True, zeroes_classifier=True, uses_generator=True)
    geometry_keyed = True

    def check_model(self, model_name: str, roles: frozenset[str], modules: Sequence[nn.Module]) -> None:
        if not roles & {"branch_last", "attn_out"}:
            raise ValueError(
                f"scheme 'fixup' on {model_name}, which has no residual branch (declared, traced or given "
                "in roles=), would equal 'kaiming' with a zero classifier; use 'kaiming', or pass example_inputs= "
                "so that residual branches can be traced"
            )

    def table_rule(self, table: Table, layer: LayerInfo) -> ParamRule | None:
        return torch_default_embedding()

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        if layer.role == "classifier":
            return zeros("classifier starts at 0 (Fixup)")
        if layer.role in RESIDUAL_LAST_ROLES:
            return zeros("last layer of a residual branch starts at 0 (Fixup)")
        groups, transposed = matrix.groups, matrix.transposed
        scale, why = 1.0, "He normal (fan_in)"
        if layer.role == "branch":
            big_l, m = layer.num_branches, layer.branch_depth
            if m < 2 or big_l < 1:
                raise ValueError(
                    f"fixup: a 'branch' layer needs a block with at least 2 branch layers and a model with "
                    f"residual branches; got m={m}, L={big_l}. A role given in roles= belongs to the block "
                    "traced or declared for it, else to its parent module: give each block's 'branch' and "
                    "'branch_last' layers, pass example_inputs= so that the blocks are traced, or declare them "
                    "with a block's detinit_roles()"
                )
            scale = fixup_depth_scale(big_l, m)
            why = f"He normal (fan_in) x L^(-1/(2m-2)) = {big_l}^(-1/{2 * m - 2}) = {scale:.4g}"
        return ParamRule(
            "fixup_scaled" if layer.role == "branch" else "kaiming_normal",
            why,
            lambda w, g: rnd.kaiming_normal_(w, generator=g, groups=groups, transposed=transposed).mul_(scale),
        )

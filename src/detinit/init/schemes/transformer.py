"""The Transformer baselines: GPT-2's N(0, 0.02) with branch ends scaled by depth, and T-Fixup's scaled
Xavier for Transformers without LayerNorm."""

from __future__ import annotations

from ..roles.layers import Matrix, Table
from ..roles.vocabulary import RESIDUAL_LAST_ROLES, LayerInfo
from ..tensor import random as rnd
from .base import Policy, Scheme
from .rule import ParamRule, check_choice, check_number


class GPT2Scheme(Scheme):
    r"""GPT-2's initialisation (Radford et al. 2019; nanoGPT), the standard for Transformers.

    Every Linear / conv weight and every embedding :math:`\mathcal N(0, \sigma^2)`,
    :math:`\sigma = 0.02`; the last layer of each residual branch
    (``attn_out``, ``branch_last``) :math:`\sigma / \sqrt{L}` with ``L`` residual
    branches in the model (:math:`2 \times` depth for a GPT), so the residual
    stream's variance does not grow with depth.
    """

    name = "gpt2"
    policy = Policy(uses_generator=True)
    geometry_keyed = True

    def __init__(self, std: float = 0.02) -> None:
        self.std = check_number("std", std, 0.0, open_low=True)

    def options(self) -> dict[str, object]:
        return {"std": self.std}

    def table_rule(self, table: Table, layer: LayerInfo) -> ParamRule | None:
        return self._normal(layer)

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        return self._normal(layer)

    def _normal(self, layer: LayerInfo) -> ParamRule:
        """N(0, std^2) for any weight, std / sqrt(L) on the last layer of a residual branch."""
        std, why = self.std, f"N(0, {self.std:g}^2)"
        if layer.role in RESIDUAL_LAST_ROLES and layer.num_branches > 0:
            std = self.std / layer.num_branches**0.5
            why = f"N(0, ({self.std:g}/sqrt(L={layer.num_branches}))^2): last layer of a residual branch"
        return ParamRule("normal", why, lambda w, g: rnd.normal_(w, generator=g, std=std))


class TFixupScheme(Scheme):
    r"""T-Fixup (Huang, Perez, Ba & Volkovs 2020): Transformers without LayerNorm or warm-up.

    Xavier-uniform weights (fused projections per block), token and position
    embeddings :math:`\mathcal N(0, d^{-1/2})`; then the value and output
    projections, the MLP layers and the embeddings are scaled by
    :math:`(9N)^{-1/4}` (``stack="decoder"``) or :math:`0.67\,N^{-1/4}`
    (``stack="encoder"``), ``N`` = number of attention layers. The query and
    key projections and the classifier keep plain Xavier.
    """

    name = "tfixup"
    policy = Policy(uses_generator=True)
    geometry_keyed = True
    STACKS = ("decoder", "encoder")
    SCALED_ROLES = ("attn_value", "attn_out", "branch", "branch_last")

    def __init__(self, stack: str = "decoder") -> None:
        self.stack = check_choice("stack", stack, self.STACKS)

    def options(self) -> dict[str, object]:
        return {"stack": self.stack}

    def _scale(self, layer: LayerInfo) -> tuple[float, str]:
        n = layer.num_attention
        if n < 1:
            raise ValueError(
                "tfixup: the model declares no attention layers (role 'attn_out'), so N is unknown; "
                "T-Fixup is defined for Transformers"
            )
        if self.stack == "decoder":
            return (9 * n) ** -0.25, f"(9N)^(-1/4) = (9*{n})^(-1/4)"
        return 0.67 * n**-0.25, f"0.67 N^(-1/4) = 0.67*{n}^(-1/4)"

    def table_rule(self, table: Table, layer: LayerInfo) -> ParamRule | None:
        scale, how = self._scale(layer)  # refuses models without attention layers
        std = table.embedding_dim**-0.5 * scale
        return ParamRule(
            "tfixup_scaled",
            f"N(0, d^(-1/2)) x {how} = std {std:.4g}",
            lambda w, g: rnd.normal_(w, generator=g, std=std),
        )

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        scale, how = self._scale(layer)  # refuses models without attention layers, whatever the layer
        groups, transposed = matrix.groups, matrix.transposed
        if layer.role not in self.SCALED_ROLES:
            scale, why = 1.0, "Xavier uniform"
        else:
            why = f"Xavier uniform x {how} = {scale:.4g}"
        return ParamRule(
            "tfixup_scaled" if scale != 1.0 else "xavier_uniform",
            why,
            lambda w, g: rnd.xavier_uniform_(w, generator=g, groups=groups, transposed=transposed).mul_(scale),
        )

r"""IDInit (Pan et al., "IDInit: A Universal and Stable Initialization Method for Neural Network Training",
ICLR 2025, arXiv 2503.04626): every layer the padded identity, the last layer of each residual branch the same
pattern at a tiny :math:`\varepsilon` instead of ZerO's exact 0. The fills are in :mod:`detinit.init.tensor.idinit`.

Where the paper is not precise detinit chooses, and says so in each rule's reason:

* ``IDIZ_eps`` puts :math:`+\varepsilon` at the padded identity's positions (the paper: "identity-like
  positions", sign pattern not given);
* the output layer (role ``classifier``) also gets ``IDIZ_eps``: logits start at :math:`\approx 0`, as the
  paper's branch ends, with a gradient on every weight (the paper establishes no classifier rule);
* token tables get ZerO's balanced Hadamard rows (:func:`~detinit.init.tensor.embedding.zero_embedding_`), learned
  positions 0 and tokens concatenated to the input Hadamard rows, as ``"zero"`` (the padded identity of a
  vocabulary wider than the model would give every token past the width the zero vector);
* a branch that ends in a norm (BatchNorm after its last conv) or a layer scale gets its ``IDIZ`` on that
  scale (:math:`\gamma = \varepsilon`) and ``IDI`` on the layer before it, as ZerO's zero goes on the norm: in
  training mode the norm would rescale :math:`\varepsilon` times the identity back to unit variance, and the block
  would not start near the identity. ``variant="paper"`` puts ``IDIZ`` on the layer itself, as the paper's recipe
  reads; on ResNet-20 with BatchNorm (Fashion-MNIST, 192 steps, 2 seeds) it reached 29.6 % against 62.8 %
  (docs/results.md section 13);
* the "loosened" identity (a ~1e-6 perturbation of repeated rows) is not applied: its distribution is not
  given, and the padded ``IDIZ`` of the layer after stacked copies already reads them unequally.
"""

from __future__ import annotations

import torch

from ..roles.layers import Matrix, Table
from ..roles.vocabulary import RESIDUAL_LAST_ROLES, LayerInfo
from ..tensor.idinit import idinit_
from .base import Policy, Scheme
from .rule import ParamRule, check_choice, check_number
from .zero import ZerOScheme


class IDInitScheme(Scheme):
    r"""IDInit: ``IDI_tau`` (padded identity, patch-maintain on convolutions) everywhere, ``IDIZ_eps`` on the
    last layer of every residual branch and on the output layer.

    Options: ``tau`` (1), ``eps`` (1e-6), ``variant`` (``"detinit"``: ``IDIZ`` on the norm or layer scale after a
    branch's last layer where there is one; ``"paper"``: on that layer). Deterministic: no random draw, two calls
    give the same weights bitwise. Biases start at 0 and norms at 1, as every scheme's.

    >>> from detinit.init.roles.layers import Matrix
    >>> IDInitScheme().matrix_rule(Matrix.linear(4, 8), LayerInfo("branch_last")).rule
    'idiz'
    """

    name = "idinit"
    geometry_keyed = True

    VARIANTS = ("detinit", "paper")

    def __init__(self, tau: float = 1.0, eps: float = 1e-6, variant: str = "detinit") -> None:
        self.tau = check_number("tau", tau, 0.0, open_low=True)
        self.eps = check_number("eps", eps, 0.0)
        self.variant = check_choice("variant", variant, self.VARIANTS)
        self._tables = ZerOScheme()  # token tables and tokens as "zero" (the paper gives no rule for them)
        # a branch ending in a norm (BatchNorm after the last conv) or a layer scale: IDIZ goes on that scale, as
        # ZerO's zero does; on the conv, a norm in training mode would scale eps x identity back to unit variance
        self.policy = Policy(
            zeroes_branch_ends=True,
            norm_aware=variant == "detinit",
            branch_end_value=self.eps,
            deterministic_recurrence=True,
        )

    def options(self) -> dict[str, object]:
        return {"tau": self.tau, "eps": self.eps, "variant": self.variant}

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        groups, transposed = matrix.groups, matrix.transposed
        p, q = matrix.out_features, matrix.in_features
        where = f"{p}x{q}" + (f" per group (groups={groups})" if groups > 1 else "")
        if matrix.taps > 1:
            where += " on the patch (centre tap first)" if not transposed else " on the centre tap"
        if layer.role in RESIDUAL_LAST_ROLES or layer.role == "classifier":
            what = "last layer of a residual branch" if layer.role != "classifier" else "output layer"
            eps = self.eps
            return ParamRule(
                "idiz",
                f"{what}: IDIZ_eps, the padded identity x {eps:g} ({where}): output ~0, every weight has a gradient",
                lambda w, g: idinit_(w, eps, groups=groups, transposed=transposed),
            )
        tau = self.tau
        width = q if transposed else q * matrix.taps  # the columns the padded identity runs over
        shape = "identity" if p == width else ("[I 0]" if p < width else "stacked identities [I; I; ...]")
        shape += ": the identity on the centre tap" if p == q and width > q else ""
        return ParamRule(
            "idi",
            f"IDI_tau, padded identity theta[m, j] = {tau:g} if m = j mod in ({where}: {shape})",
            lambda w, g: idinit_(w, tau, groups=groups, transposed=transposed),
        )

    def table_rule(self, table: Table, layer: LayerInfo) -> ParamRule | None:
        return self._tables.table_rule(table, layer)

    def parameter_rule(self, kind: str, param: torch.Tensor) -> ParamRule:
        if kind == "layer_scale":
            eps = self.eps
            why = f"layer scale of a residual branch: eps = {eps:g} (IDIZ)"
            return ParamRule("idiz", why, lambda w, g: w.fill_(eps))
        if kind in ("position", "token"):
            return self._tables.parameter_rule(kind, param)
        return super().parameter_rule(kind, param)

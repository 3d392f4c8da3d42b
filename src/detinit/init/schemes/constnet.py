"""ConstNet (Blumenfeld, Gilboa & Soudry 2020): every layer averages its inputs, so all features start
identical; zeros at branch ends and at the output. The fills are in :mod:`detinit.init.tensor.constnet`.
"""

from __future__ import annotations

import torch

from ..roles.layers import Matrix
from ..roles.vocabulary import LayerInfo
from ..tensor import random as rnd
from ..tensor.constnet import const_avg_, const_avg_rows_
from .base import Policy, Scheme
from .rule import Fill, ParamRule, check_number, index_fill, zeros


class ConstNetScheme(Scheme):
    """ConstNet: channel averaging (:func:`const_avg_`) everywhere, zeros for branch-last and classifier.

    ``s > 0`` is the paper's partially random ConstNet: branch-last (residual)
    convs are drawn as ``s x He`` (normal, fan_out as in the official code)
    instead of 0. ``c < 1`` mixes noise into the averaging layers.
    """

    name = "constnet"
    geometry_keyed = True

    def __init__(self, c: float = 1.0, gain: float = 1.0, s: float = 0.0) -> None:
        c, gain, s = check_number("c", c, 0.0, 1.0), check_number("gain", gain, 0.0), check_number("s", s, 0.0)
        self.c, self.gain, self.s = c, gain, s
        self.policy = Policy(
            zeroes_branch_ends=s == 0,
            zeroes_classifier=True,
            deterministic_recurrence=True,
            uses_generator=c < 1.0 or s > 0,
        )

    def options(self) -> dict[str, object]:
        return {"c": self.c, "gain": self.gain, "s": self.s}

    def parameter_rule(self, role: str, param: torch.Tensor) -> ParamRule:
        if role in ("position", "token"):
            return zeros(f"{role} starts at 0 (ConstNet: every feature starts identical)")
        return super().parameter_rule(role, param)

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        if layer.role == "classifier":
            return zeros("classifier starts at 0 (ConstNet): first loss is ln(num_classes)")
        if layer.role == "branch_last" and self.s > 0:
            groups, transposed = matrix.groups, matrix.transposed
            s = self.s
            return ParamRule(
                "scaled_kaiming",
                f"residual conv = {s:g} x He (fan_out): partially random ConstNet",
                lambda w, g: rnd.kaiming_normal_(
                    w, generator=g, mode="fan_out", groups=groups, transposed=transposed
                ).mul_(s),
            )
        if layer.role == "branch_last":
            return zeros("residual conv starts at 0 (ConstNet): every block is the identity")
        groups, transposed = matrix.groups, matrix.transposed
        c, gain = self.c, self.gain
        reason = "every output = mean of the inputs" + ("" if c == 1 else f" x {c} + noise (1-c)")

        def averaging(w: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            return const_avg_(w, c, gain=gain, generator=g, groups=groups, transposed=transposed)

        fill: Fill = averaging
        if c == 1:  # no noise: a function of the index
            fill = index_fill(averaging, const_avg_rows_, matrix, groups=groups, transposed=transposed)
        return ParamRule("const_avg", reason, fill)

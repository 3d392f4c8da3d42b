"""The random baselines: Kaiming, Xavier and orthogonal on every layer, optionally with timm's
``zero_init_last``; SkipInit and ReZero, which add a scalar gate at 0 on every residual branch.
The fills are in :mod:`detinit.init.tensor.random`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..roles.layers import Matrix, Table
from ..roles.vocabulary import RESIDUAL_LAST_ROLES, LayerInfo
from ..tensor import random as rnd
from .base import Policy, Scheme
from .rule import ParamRule, check_bool, check_choice, zeros


def torch_default_embedding() -> ParamRule:
    """N(0, 1), as ``nn.Embedding`` draws its table."""
    return ParamRule("normal", "embedding: N(0, 1) as torch's default", lambda w, g: rnd.normal_(w, generator=g))


class RandomScheme(Scheme):
    """Kaiming, Xavier or orthogonal on every layer (Embedding: N(0, 1)).

    ``zero_init_last=True`` sets branch-last layers to 0 (timm's
    ``zero_init_last``, Goyal et al. 2017).
    """

    KINDS = ("kaiming", "xavier", "orthogonal")
    geometry_keyed = True
    gated = False  # SkipInit / ReZero: every residual branch gated by a scalar that starts at 0

    def __init__(
        self,
        kind: str,
        mode: str = "fan_in",
        distribution: str = "normal",
        zero_init_last: bool = False,
    ) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"random scheme {kind!r} is not supported; choose one of {self.KINDS}")
        check_choice("mode", mode, rnd.FAN_MODES)
        if distribution not in ("normal", "uniform"):
            raise ValueError(f"scheme option distribution={distribution!r}; choose 'normal' or 'uniform'")
        self.name = self.kind = kind
        self.mode, self.distribution = mode, distribution
        self.zero_init_last = check_bool("zero_init_last", zero_init_last)
        self.policy = Policy(
            zeroes_branch_ends=zero_init_last,
            uses_generator=True,
            requires_gates=self.gated,
            residual_gate_value=0.0 if self.gated else 1.0,
        )

    def options(self) -> dict[str, object]:
        opts: dict[str, object] = {"zero_init_last": self.zero_init_last}
        if self.kind != "orthogonal":
            opts["distribution"] = self.distribution
        if self.kind == "kaiming":
            opts["mode"] = self.mode
        return opts

    def ignored_options(self, given: Mapping[str, object]) -> dict[str, str]:
        reasons = {"mode": f"does nothing under {self.name}: it has no fan mode"}
        if self.kind == "orthogonal":
            reasons["distribution"] = "does nothing under orthogonal: it draws from one distribution"
        return {key: why for key, why in reasons.items() if key in given} if self.kind != "kaiming" else {}

    def table_rule(self, table: Table, layer: LayerInfo) -> ParamRule | None:
        return torch_default_embedding()

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        role = layer.role
        if role in RESIDUAL_LAST_ROLES and self.zero_init_last:
            return zeros("zero_init_last: last layer of a residual branch starts at 0")
        groups, transposed = matrix.groups, matrix.transposed
        geometry = {"groups": groups, "transposed": transposed}
        if self.kind == "orthogonal":
            return ParamRule(
                "orthogonal", "orthogonal rows/columns, gain 1", lambda w, g: rnd.orthogonal_(w, generator=g)
            )
        if self.kind == "xavier":
            fn = rnd.xavier_normal_ if self.distribution == "normal" else rnd.xavier_uniform_
            return ParamRule(
                f"xavier_{self.distribution}",
                "Glorot: var = 2/(fan_in+fan_out)",
                lambda w, g: fn(w, generator=g, **geometry),
            )
        fn = rnd.kaiming_normal_ if self.distribution == "normal" else rnd.kaiming_uniform_
        nonlinearity = "linear" if role == "classifier" else "relu"
        return ParamRule(
            f"kaiming_{self.distribution}",
            f"He: var = gain^2/{self.mode} ({nonlinearity} gain)",
            lambda w, g: fn(w, generator=g, mode=self.mode, nonlinearity=nonlinearity, **geometry),
        )


class GatedScheme(RandomScheme):
    """SkipInit (Kaiming weights) and ReZero (Xavier weights): every residual branch gated by alpha = 0.

    The gates are :class:`detinit.nn.ScalarGate` modules of the model, which
    set themselves to 0 under these schemes; a model without them is refused.
    """

    gated = True
    geometry_keyed = True

    def __init__(self, name: str, **options: object) -> None:
        super().__init__("kaiming" if name == "skipinit" else "xavier", **options)  # type: ignore[arg-type]
        self.name = name

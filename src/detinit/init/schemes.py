"""Initialisation schemes: what each scheme does to a layer's weight, given its role.

A scheme answers one question, :meth:`Scheme.weight_rule`: for this layer
(``nn.Linear``, ``nn.ConvNd``, ``nn.ConvTransposeNd``, ``nn.Embedding``) in
this role, which function fills the weight and how to describe it. Norm
layers and biases are handled the same way by every scheme (see
:mod:`detinit.init.apply`).

Roles are structural facts that blocks declare about their layers
(:mod:`detinit.init.roles`):

* ``"default"``: an ordinary layer on the main path (stems, projection shortcuts);
* ``"branch"``: a layer inside a residual branch that is not its last
  (scaled by :math:`L^{-1/(2m-2)}` under Fixup);
* ``"branch_last"``: the last layer of a residual branch (its output is added
  to a skip path) -- zero under ZerO / ConstNet / Fixup, as timm's ``zero_init_last``;
* ``"pre_hadamard"``: a projection whose output goes through a fixed Hadamard
  transform (ZerO's shortcuts): ZerO gives it the partial identity, since
  :math:`H I^*` already is the Hadamard block;
* ``"classifier"``: the output layer -- zero under ZerO, ConstNet and Fixup.

Scheme names are stable strings for configs and the CLI; :func:`get_scheme`
builds one by name with its options.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from . import random as rnd
from .constnet import const_avg_
from .zero import NORMS, hadamard_scale, partial_identity_, zero_

ROLES = ("default", "branch", "branch_last", "pre_hadamard", "classifier")

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONV_TRANSPOSE_TYPES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
MATRIX_LAYER_TYPES = (nn.Linear,) + CONV_TYPES + CONV_TRANSPOSE_TYPES

Fill = Callable[[torch.Tensor, torch.Generator], object]


@dataclass(frozen=True)
class LayerInfo:
    """What a scheme knows about a layer: its role and, for Fixup, the branch counts."""

    role: str = "default"
    num_branches: int = 0  # residual branches in the whole model (L)
    branch_depth: int = 0  # layers in this layer's residual branch (m)


@dataclass(frozen=True)
class WeightRule:
    """How one weight is filled: a short rule name, the reason, and the function."""

    rule: str
    reason: str
    fill: Fill


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


def _zeros(reason: str) -> WeightRule:
    return WeightRule("zeros", reason, lambda w, g: w.zero_())


class Scheme:
    """Base class: a named scheme that picks a :class:`WeightRule` per layer."""

    name: str = ""
    uses_generator: bool = False  # draws random numbers (then a seed is recorded)

    requires_gates: bool = False  # only meaningful on models with ScalarGate branches

    def weight_rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        """The rule for ``module.weight``; ``None`` if the layer type is unknown."""
        raise NotImplementedError

    def options(self) -> dict[str, object]:
        """The scheme's options, for reports and run records."""
        return {}


class ZerOScheme(Scheme):
    """ZerO (Algorithms 1-2): identity / partial identity / Hadamard, zeros for branch-last and classifier.

    With ``hadamard=False`` it is the ``partial_identity`` ablation: expanding
    layers get :math:`[I; 0]` instead of a Hadamard block.
    """

    def __init__(self, norm: str = "orthonormal", hadamard: bool = True) -> None:
        if norm not in NORMS:
            raise ValueError(f"scheme option norm={norm!r} is not supported; choose one of {NORMS}")
        self.norm = norm
        self.hadamard = hadamard
        self.name = "zero" if hadamard else "partial_identity"

    def options(self) -> dict[str, object]:
        return {"norm": self.norm} if self.hadamard else {}

    def weight_rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        if not isinstance(module, MATRIX_LAYER_TYPES):
            return None
        if layer.role == "classifier":
            return _zeros("classifier starts at 0 (ZerO): the output is 0 at init")
        if layer.role == "branch_last":
            return _zeros("last layer of a residual branch starts at 0: the block is the identity")
        groups, transposed = layer_geometry(module)
        p, q = layer_shape(module)
        where = f"{p}x{q}" + (f" per group (groups={groups})" if groups > 1 else "")
        if not self.hadamard or p <= q or layer.role == "pre_hadamard":
            kind = "identity" if p == q else "partial_identity"
            why = "identity" if p == q else "partial identity I*"
            if layer.role == "pre_hadamard" and p > q:
                why += " (a fixed Hadamard transform follows: together they give the Hadamard block)"
            return WeightRule(
                kind,
                f"{where}: {why} on the centre tap",
                lambda w, g: partial_identity_(w, groups=groups, transposed=transposed),
            )
        c = hadamard_scale(p, self.norm)
        return WeightRule(
            "hadamard",
            f"{where}: expanding, top-left block of Hadamard H_{(p - 1).bit_length()} x {c:.4g} ({self.norm})",
            lambda w, g: zero_(w, norm=self.norm, groups=groups, transposed=transposed),
        )


class ConstNetScheme(Scheme):
    """ConstNet: channel averaging (:func:`const_avg_`) everywhere, zeros for branch-last and classifier.

    ``s > 0`` is the paper's partially random ConstNet: branch-last (residual)
    convs are drawn as ``s x He`` (normal, fan_out as in the official code)
    instead of 0. ``c < 1`` mixes noise into the averaging layers.
    """

    name = "constnet"

    def __init__(self, c: float = 1.0, gain: float = 1.0, s: float = 0.0) -> None:
        if not 0.0 <= c <= 1.0:
            raise ValueError(f"scheme option c={c!r} is not supported; c must lie in [0, 1]")
        if s < 0:
            raise ValueError(f"scheme option s={s!r} is not supported; s must be >= 0")
        self.c, self.gain, self.s = c, gain, s
        self.uses_generator = c < 1.0 or s > 0

    def options(self) -> dict[str, object]:
        return {"c": self.c, "gain": self.gain, "s": self.s}

    def weight_rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        if not isinstance(module, MATRIX_LAYER_TYPES):
            return None
        if layer.role == "classifier":
            return _zeros("classifier starts at 0 (ConstNet): first loss is ln(num_classes)")
        if layer.role == "branch_last" and self.s > 0:
            groups, transposed = layer_geometry(module)
            s = self.s
            return WeightRule(
                "scaled_kaiming",
                f"residual conv = {s:g} x He (fan_out): partially random ConstNet",
                lambda w, g: rnd.kaiming_normal_(
                    w, generator=g, mode="fan_out", groups=groups, transposed=transposed
                ).mul_(s),
            )
        if layer.role == "branch_last":
            return _zeros("residual conv starts at 0 (ConstNet): every block is the identity")
        groups, transposed = layer_geometry(module)
        c, gain = self.c, self.gain
        reason = "every output = mean of the inputs" + ("" if c == 1 else f" x {c} + noise (1-c)")
        return WeightRule(
            "const_avg",
            reason,
            lambda w, g: const_avg_(w, c, gain=gain, generator=g, groups=groups, transposed=transposed),
        )


class RandomScheme(Scheme):
    """Kaiming, Xavier or orthogonal on every layer (Embedding: N(0, 1)).

    ``zero_init_last=True`` sets branch-last layers to 0 (timm's
    ``zero_init_last``, Goyal et al. 2017).
    """

    KINDS = ("kaiming", "xavier", "orthogonal")
    uses_generator = True

    def __init__(
        self,
        kind: str,
        mode: str = "fan_in",
        distribution: str = "normal",
        zero_init_last: bool = False,
    ) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"random scheme {kind!r} is not supported; choose one of {self.KINDS}")
        if mode not in rnd.FAN_MODES:
            raise ValueError(f"scheme option mode={mode!r} is not supported; choose one of {rnd.FAN_MODES}")
        if distribution not in ("normal", "uniform"):
            raise ValueError(f"scheme option distribution={distribution!r}; choose 'normal' or 'uniform'")
        self.name = self.kind = kind
        self.mode, self.distribution, self.zero_init_last = mode, distribution, zero_init_last

    def options(self) -> dict[str, object]:
        opts: dict[str, object] = {"zero_init_last": self.zero_init_last}
        if self.kind != "orthogonal":
            opts["distribution"] = self.distribution
        if self.kind == "kaiming":
            opts["mode"] = self.mode
        return opts

    def weight_rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        role = layer.role
        if isinstance(module, nn.Embedding):
            return WeightRule(
                "normal", "embedding: N(0, 1) as torch's default", lambda w, g: rnd.normal_(w, generator=g)
            )
        if not isinstance(module, MATRIX_LAYER_TYPES):
            return None
        if role == "branch_last" and self.zero_init_last:
            return _zeros("zero_init_last: last layer of a residual branch starts at 0")
        groups, transposed = layer_geometry(module)
        geometry = {"groups": groups, "transposed": transposed}
        if self.kind == "orthogonal":
            return WeightRule(
                "orthogonal", "orthogonal rows/columns, gain 1", lambda w, g: rnd.orthogonal_(w, generator=g)
            )
        if self.kind == "xavier":
            fn = rnd.xavier_normal_ if self.distribution == "normal" else rnd.xavier_uniform_
            return WeightRule(
                f"xavier_{self.distribution}",
                "Glorot: var = 2/(fan_in+fan_out)",
                lambda w, g: fn(w, generator=g, **geometry),
            )
        fn = rnd.kaiming_normal_ if self.distribution == "normal" else rnd.kaiming_uniform_
        nonlinearity = "linear" if role == "classifier" else "relu"
        return WeightRule(
            f"kaiming_{self.distribution}",
            f"He: var = gain^2/{self.mode} ({nonlinearity} gain)",
            lambda w, g: fn(w, generator=g, mode=self.mode, nonlinearity=nonlinearity, **geometry),
        )


class GatedScheme(RandomScheme):
    """SkipInit (Kaiming weights) and ReZero (Xavier weights): every residual branch gated by alpha = 0.

    The gates are :class:`detinit.nn.ScalarGate` modules of the model, which
    set themselves to 0 under these schemes; a model without them is refused.
    """

    requires_gates = True

    def __init__(self, name: str, **options: object) -> None:
        super().__init__("kaiming" if name == "skipinit" else "xavier", **options)  # type: ignore[arg-type]
        self.name = name


class FixupScheme(Scheme):
    r"""Fixup (Zhang, Dauphin & Ma 2019).

    Classifier and the last layer of every residual branch at 0; the other
    layers of a branch He-normal (fan_in) times :math:`L^{-1/(2m-2)}`, with
    ``L`` residual branches in the model and ``m`` layers in the branch;
    layers outside branches He-normal. The model's scalar multipliers start at
    1 and its scalar biases at 0 (:mod:`detinit.nn.gates`).
    """

    name = "fixup"
    uses_generator = True

    def weight_rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        if isinstance(module, nn.Embedding):
            return WeightRule(
                "normal", "embedding: N(0, 1) as torch's default", lambda w, g: rnd.normal_(w, generator=g)
            )
        if not isinstance(module, MATRIX_LAYER_TYPES):
            return None
        if layer.role == "classifier":
            return _zeros("classifier starts at 0 (Fixup)")
        if layer.role == "branch_last":
            return _zeros("last layer of a residual branch starts at 0 (Fixup)")
        groups, transposed = layer_geometry(module)
        scale, why = 1.0, "He normal (fan_in)"
        if layer.role == "branch":
            big_l, m = layer.num_branches, layer.branch_depth
            if m < 2 or big_l < 1:
                raise ValueError(
                    f"fixup: a 'branch' layer needs a block with at least 2 branch layers and a model with "
                    f"residual branches; got m={m}, L={big_l}"
                )
            scale = big_l ** (-1.0 / (2 * m - 2))
            why = f"He normal (fan_in) x L^(-1/(2m-2)) = {big_l}^(-1/{2 * m - 2}) = {scale:.4g}"
        return WeightRule(
            "fixup_scaled" if layer.role == "branch" else "kaiming_normal",
            why,
            lambda w, g: rnd.kaiming_normal_(w, generator=g, groups=groups, transposed=transposed).mul_(scale),
        )


SCHEMES: dict[str, Callable[..., Scheme]] = {
    "zero": lambda **kw: ZerOScheme(hadamard=True, **kw),
    "partial_identity": lambda **kw: ZerOScheme(hadamard=False, **kw),
    "constnet": ConstNetScheme,
    "kaiming": lambda **kw: RandomScheme("kaiming", **kw),
    "xavier": lambda **kw: RandomScheme("xavier", **kw),
    "orthogonal": lambda **kw: RandomScheme("orthogonal", **kw),
    "fixup": FixupScheme,
    "skipinit": lambda **kw: GatedScheme("skipinit", **kw),
    "rezero": lambda **kw: GatedScheme("rezero", **kw),
}


def list_schemes() -> list[str]:
    """Names accepted by :func:`get_scheme` and :func:`detinit.initialize`."""
    return sorted(SCHEMES)


def get_scheme(name: str | Scheme, **options: object) -> Scheme:
    """Build a scheme by name, e.g. ``get_scheme("zero", norm="paper")``.

    >>> get_scheme("kaiming", mode="fan_out").options()
    {'zero_init_last': False, 'distribution': 'normal', 'mode': 'fan_out'}
    """
    if isinstance(name, Scheme):
        if options:
            raise ValueError("options can only be given with a scheme name, not a Scheme instance")
        return name
    if name not in SCHEMES:
        close = difflib.get_close_matches(str(name), SCHEMES, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown scheme {name!r}; available: {', '.join(list_schemes())}.{hint}")
    try:
        return SCHEMES[name](**options)
    except TypeError as err:  # an option the scheme does not take
        raise ValueError(f"scheme {name!r} does not accept options {sorted(options)}: {err}") from None

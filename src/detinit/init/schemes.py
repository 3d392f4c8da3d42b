"""Initialisation schemes: what each scheme does to a layer's weight, given its role.

A scheme answers one question, :meth:`Scheme.weight_rule`: for this layer
(``nn.Linear``, ``nn.ConvNd``, ``nn.ConvTransposeNd``, ``nn.Embedding``) in
this role, which function fills the weight and how to describe it. Norm
layers and biases are handled the same way by every scheme (see
:mod:`detinit.init.apply`).

The roles and what each means are in :mod:`detinit.init.roles`; the shapes of
layers in :mod:`detinit.init.layers`.

Scheme names are stable strings for configs and the CLI; :func:`get_scheme`
builds one by name with its options.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..registry import Registry
from . import random as rnd
from .constnet import const_avg_, const_avg_rows_
from .layers import CONV_TYPES, MATRIX_LAYER_TYPES, layer_geometry, layer_shape
from .roles import RESIDUAL_LAST_ROLES, LayerInfo
from .row_fills import KEEP, ZEROS, RowFill, row_blocks_fill
from .zero import (
    HADAMARD_NORMS,
    embedding_collisions,
    embedding_rows,
    hadamard_scale,
    partial_identity_,
    zero_,
    zero_embedding_,
    zero_unfolded_,
)
from .zero_rows import partial_identity_rows_, zero_embedding_rows_, zero_rows_, zero_unfolded_rows_

if TYPE_CHECKING:
    from .recurrent import GateBlock

Fill = Callable[[torch.Tensor, torch.Generator], object]


@dataclass(frozen=True)
class WeightRule:
    """How one weight is filled: a short rule name, the reason, and the function (a
    :class:`~detinit.init.row_fills.RowFill` where it can fill a shard's rows alone)."""

    rule: str
    reason: str
    fill: Fill


def row_blocks_rule(blocks: list[tuple[int, int, WeightRule]], reason: str) -> WeightRule:
    """One rule for a weight whose output rows ``start:stop`` are blocks with rules of their own (fused
    projections, recurrent gates): each block is filled by its rule, in row order.

    >>> ones = WeightRule("ones", "", lambda w, g: w.fill_(1.0))
    >>> rule = row_blocks_rule([(0, 1, _zeros("")), (1, 3, ones)], "0 then 1")
    >>> rule.rule, rule.fill(torch.empty(3, 2), torch.Generator())[:, 0].tolist()
    ('zeros+ones', [0.0, 1.0, 1.0])
    """
    fill = row_blocks_fill([(start, stop, rule.fill) for start, stop, rule in blocks])
    return WeightRule("+".join(dict.fromkeys(rule.rule for *_, rule in blocks)), reason, fill)


def _check_bool(name: str, value: object) -> bool:
    """A scheme option that must be ``True`` or ``False`` (a string "false" would read as true)."""
    if not isinstance(value, bool):
        raise ValueError(f"scheme option {name}={value!r} is not supported; {name} must be true or false")
    return value


def _check_number(name: str, value: object, low: float, high: float = math.inf, *, open_low: bool = False) -> float:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``open_low``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (value > low if open_low else value >= low) or value > high:
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}{']' if math.isfinite(high) else ')'}"
        raise ValueError(f"scheme option {name}={value!r} is not supported; {name} must be a number in {interval}")
    return float(value)


def _zeros(reason: str) -> WeightRule:
    return WeightRule("zeros", reason, ZEROS)


def _index_fill(whole: Fill, rows: Callable[..., object], module: nn.Module, **options: object) -> RowFill:
    """``whole`` with its block form ``rows(out, start, total, **options)`` (a :class:`RowFill`); for an
    ``nn.Linear`` also the blocks of its transpose, which are ``rows`` of the ConvTranspose-like layout
    ``(in, out)`` (``transposed=True``)."""

    def blocks(out: torch.Tensor, start: int, total: int, generator: torch.Generator) -> object:
        return rows(out, start, total, **options)

    def transposed_blocks(out: torch.Tensor, start: int, total: int, generator: torch.Generator) -> object:
        return rows(out, start, total, **(options | {"transposed": True}))

    return RowFill(whole, blocks, transposed_blocks if isinstance(module, nn.Linear) else None)


class Scheme:
    """Base class: a named scheme that picks a :class:`WeightRule` per layer."""

    name: str = ""
    uses_generator: bool = False  # draws random numbers (then a seed is recorded)

    requires_gates: bool = False  # only meaningful on models with ScalarGate branches
    residual_gate_value: float = 1.0  # where a ScalarGate multiplier of a residual branch starts
    zeroes_branch_ends: bool = False  # starts every residual branch at 0 (ZerO, ConstNet, Fixup, zero_init_last)
    norm_aware: bool = True  # puts that zero on the norm after the branch's last layer, where there is one
    zeroes_classifier: bool = False  # starts the output layer at 0 (ZerO, ConstNet, Fixup)
    escapes_constant_readout: bool = False  # a zero output layer reading a constant feature: rows orthogonal to it
    deterministic_recurrence: bool = False  # recurrent gates: ZerO's zeros-and-identity, not random blocks

    def weight_rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        """The rule for ``module.weight``; ``None`` if the layer type is unknown.

        A ``branch_last`` layer whose zero goes on the norm after it (:meth:`zero_on_norm`) gets the
        rule of an ordinary ``branch`` layer, and the report says why.
        """
        note = ""
        if layer.role in RESIDUAL_LAST_ROLES and self.zero_on_norm(layer):
            role = "branch" if layer.role == "branch_last" else "default"
            layer, note = replace(layer, role=role), " (a norm or layer scale follows: it starts at 0 instead)"
        rule = self._rule(module, layer)
        return replace(rule, reason=rule.reason + note) if rule is not None and note else rule

    def _rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        """The scheme's own rule for a layer in ``layer.role``."""
        raise NotImplementedError

    def zero_on_norm(self, layer: LayerInfo) -> bool:
        """Whether this branch end's zero goes on the norm after the layer (``branch_last_norm``), or the
        output's zero on the norm before a classifier tied to the token embedding (``classifier_norm``)."""
        if layer.role == "classifier_norm":
            return self.zeroes_classifier
        return self.zeroes_branch_ends and self.norm_aware and (layer.norm_follows or layer.role == "branch_last_norm")

    def parameter_rule(self, role: str, param: torch.Tensor) -> WeightRule:
        """The rule for a parameter that is not a layer's weight: a learned ``"position"`` table added to
        the input, a ``"token"`` (cls, register) concatenated to it, or a ``"layer_scale"`` vector.

        Default (random schemes): tables and tokens N(0, 0.02^2) as ViT and timm;
        a layer scale 0 where the scheme starts branches at 0, else the model's own value (a
        hyper-parameter such as ConvNeXt's 1e-6, not a distribution).
        """
        if role == "layer_scale":
            if self.zeroes_branch_ends:
                return _zeros("layer scale of a residual branch starts at 0: the block is the identity")
            return WeightRule("kept", "layer scale: the model's own value (a hyper-parameter)", KEEP)
        return WeightRule(
            "normal", f"{role}: N(0, 0.02^2) as ViT / timm", lambda w, g: rnd.normal_(w, generator=g, std=0.02)
        )

    def recurrent_rule(self, block: GateBlock, layer: LayerInfo) -> WeightRule | None:
        """The rule for one gate block of a recurrent layer's weight (:mod:`detinit.init.recurrent`).

        Random schemes: input blocks the rule of an ``nn.Linear(cols, rows)``, recurrent blocks
        orthogonal. Deterministic schemes (``deterministic_recurrence``): the candidate's input block
        that Linear rule, the plain RNN's recurrence that rule too (ZerO: the identity, IRNN), the
        other blocks 0. A layer ending a residual branch or the output, where the scheme starts those
        at 0, gets a zero candidate input block, so its output stays 0.
        """
        ends_at_zero = (layer.role in RESIDUAL_LAST_ROLES and self.zeroes_branch_ends) or (
            layer.role == "classifier" and self.zeroes_classifier
        )
        if block.candidate and block.matrix == "input" and ends_at_zero:
            return _zeros(f"candidate input 0: the state and output start at 0 (role {layer.role})")
        stand_in = nn.Linear(block.cols, block.rows, bias=False, device="meta")
        linear = layer if layer.role == "default" else replace(layer, role="default")
        if block.matrix == "projection" or (
            block.matrix == "input" and (block.candidate or not self.deterministic_recurrence)
        ):
            return self.weight_rule(stand_in, linear)
        if not self.deterministic_recurrence:
            return WeightRule(
                "orthogonal",
                "recurrent block orthogonal (Saxe et al. 2014; Keras' recurrent default)",
                lambda w, g: rnd.orthogonal_(w, generator=g),
            )
        if block.cell == "rnn":
            rule = self.weight_rule(stand_in, linear)
            return rule and replace(rule, reason=f"recurrence (IRNN, Le et al. 2015): {rule.reason}")
        if block.matrix == "input":
            return _zeros("gate input weights 0: the gate starts constant at sigmoid(bias)")
        return _zeros("recurrent weights of a gated cell 0: its memory's identity path is the cell state")

    def options(self) -> dict[str, object]:
        """The scheme's options, for reports and run records."""
        return {}


class ZerOScheme(Scheme):
    r"""ZerO (Algorithms 1-2): identity / partial identity / Hadamard, zeros for branch-last and classifier.

    With ``hadamard=False`` it is the ``partial_identity`` ablation: expanding
    layers get :math:`[I; 0]` instead of a Hadamard block.

    **Variants.** ``variant="paper"`` applies Algorithms 1-2 literally: the
    top-left Hadamard block, the matrix on the centre tap, zeros on every
    branch-last layer. ``variant="detinit"`` (default) departs in three places,
    each measured in ``docs/results.md`` (section 7):

    * *the zero goes on the norm*: a branch-last layer followed by a norm before
      the add (role ``branch_last_norm``) gets its own matrix and the norm's
      scale starts at 0 (with BatchNorm the literal rule turns the first update
      of a zero conv into a unit-variance branch output);
    * *distinct Hadamard rows*: expanding layers use the columns
      ``1, 2, 4, ...`` of :math:`H_m` first (:func:`~detinit.init.zero.hadamard_columns`);
      the top-left block repeats rows with period :math:`2^{\lceil\log_2 Q\rceil}`,
      so a 16 -> 32 layer outputs each feature twice and consecutive expanding
      layers cancel (:math:`H H = nI`) into exactly zero channels;
    * *Algorithm 1 on the unfolded kernel* of expanding convolutions
      (:func:`~detinit.init.zero.zero_unfolded_`): a 1- or 3-channel stem no
      longer makes identical channels.

    On a BatchNorm ResNet-20 these remove every zero and copied channel at
    init (186 zero and 141 copies of 336 block-output channels on 1-channel
    input with the paper's rules). The networks that reproduce an official
    one (``zero_resnet*``, ``mnist_mlp``) default to ``variant="paper"``.

    **Transformers.** A pre-LN block :math:`x + \mathrm{Attn}(\mathrm{LN}(x))`,
    :math:`x + \mathrm{MLP}(\mathrm{LN}(x))` is the identity at init when each
    branch outputs 0. ``attention=`` picks how the attention branch gets there:

    * ``"identity"`` (default; the TMLR paper's rule for any network, "branch-last
      layers at 0, Algorithm 1 elsewhere"): :math:`W_Q = W_K = W_V = I`,
      :math:`W_O = 0`. Attention logits start as :math:`\mathrm{LN}(x)_h\,
      \mathrm{LN}(x)_h^\top/\sqrt{d_h}` per head: content-based, not uniform.
    * ``"kv_zero"`` (one public re-implementation for GPT): :math:`W_Q = I`,
      :math:`W_K = W_V = 0`, :math:`W_O = I`. Logits are 0, so attention starts
      uniform over the causal window, and the branch is 0 because ``V`` is.

    Zeroing *both* :math:`W_V` and :math:`W_O` would be a saddle the gradient
    never leaves (each one's gradient is proportional to the other), which is
    why neither variant does. The MLP's expanding layer gets the Hadamard
    block and its last layer 0; token embeddings get
    :func:`~detinit.init.zero.zero_embedding_` (balanced Hadamard rows;
    ``constant_token=True`` also uses the constant row 0, as Algorithm 1 on
    :math:`E^\top` would), learned positions 0.
    """

    ATTENTION = ("identity", "kv_zero")
    VARIANTS = ("detinit", "paper")
    zeroes_branch_ends = True
    zeroes_classifier = True
    deterministic_recurrence = True

    def __init__(
        self,
        norm: str = "orthonormal",
        hadamard: bool = True,
        attention: str = "identity",
        constant_token: bool = False,
        variant: str = "detinit",
    ) -> None:
        if norm not in HADAMARD_NORMS:
            raise ValueError(f"scheme option norm={norm!r} is not supported; choose one of {HADAMARD_NORMS}")
        if attention not in self.ATTENTION:
            raise ValueError(f"scheme option attention={attention!r} is not supported; choose one of {self.ATTENTION}")
        if variant not in self.VARIANTS:
            raise ValueError(f"scheme option variant={variant!r} is not supported; choose one of {self.VARIANTS}")
        self.norm = norm
        self.hadamard = _check_bool("hadamard", hadamard)
        self.attention = attention
        self.constant_token = _check_bool("constant_token", constant_token)
        self.variant = variant
        self.norm_aware = variant == "detinit"
        self.escapes_constant_readout = variant == "detinit"  # detinit.init.readout
        self.columns = "spanning" if variant == "detinit" else "first"
        self.name = "zero" if hadamard else "partial_identity"

    def options(self) -> dict[str, object]:
        opts: dict[str, object] = {"norm": self.norm} if self.hadamard else {}
        opts["variant"] = self.variant
        if self.attention != "identity":
            opts["attention"] = self.attention
        if self.constant_token:
            opts["constant_token"] = True
        return opts

    def _rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        role = layer.role
        if isinstance(module, nn.Embedding):
            return self._embedding_rule(module, role)
        if not isinstance(module, MATRIX_LAYER_TYPES):
            return None
        if role == "classifier":
            return _zeros("classifier starts at 0 (ZerO): the output is 0 at init")
        if role == "branch_last":
            return _zeros("last layer of a residual branch starts at 0: the block is the identity")
        if self.attention == "identity" and role == "attn_out":
            return _zeros("attention output starts at 0: the attention branch outputs 0")
        if self.attention == "kv_zero" and role in ("attn_key", "attn_value"):
            why = "keys 0: attention starts uniform" if role == "attn_key" else "values 0: the branch outputs 0"
            return _zeros(f"{why} (attention='kv_zero')")
        groups, transposed = layer_geometry(module)
        p, q = layer_shape(module)
        where = f"{p}x{q}" + (f" per group (groups={groups})" if groups > 1 else "")
        if not self.hadamard or p <= q or role == "pre_hadamard":
            kind = "identity" if p == q else "partial_identity"
            why = "identity" if p == q else "partial identity I*"
            if role == "pre_hadamard" and p > q:
                why += " (a fixed Hadamard transform follows: together they give the Hadamard block)"
            if not isinstance(module, nn.Linear):
                why += " on the centre tap"
            fill = _index_fill(
                lambda w, g: partial_identity_(w, groups=groups, transposed=transposed),
                partial_identity_rows_,
                module,
                groups=groups,
                transposed=transposed,
            )
            return WeightRule(kind, f"{where}: {why}", fill)
        return self._expanding_rule(module, p, q, where, groups, transposed)

    def _expanding_rule(
        self, module: nn.Module, p: int, q: int, where: str, groups: int, transposed: bool
    ) -> WeightRule:
        """``P > Q``: the Hadamard block (Algorithm 1 / 2), or Algorithm 1 on the unfolded kernel of a conv
        (variant ``detinit``), with the Hadamard columns the variant picks."""
        norm, columns = self.norm, self.columns
        taps = math.prod(module.kernel_size) if isinstance(module, CONV_TYPES) else 1
        if self.variant == "detinit" and taps > 1:
            patch = q * taps
            what = (
                f"shifted copies: output i = input channel i mod {q} at the (i div {q})-th nearest tap"
                if p <= patch
                else f"Hadamard block over the {patch} patch values ({columns} columns)"
            )
            return WeightRule(
                "unfolded_identity" if p <= patch else "unfolded_hadamard",
                f"{where} with {taps} taps: Algorithm 1 on the unfolded {p}x{patch} kernel, {what}",
                RowFill(
                    lambda w, g: zero_unfolded_(w, norm=norm, groups=groups, columns=columns),
                    lambda out, start, total, g: zero_unfolded_rows_(
                        out, start, total, norm=norm, groups=groups, columns=columns
                    ),
                ),
            )
        c = hadamard_scale(p, norm)
        block = "top-left block" if columns == "first" else "spanning columns (distinct rows)"
        return WeightRule(
            "hadamard",
            f"{where}: expanding, {block} of Hadamard H_{(p - 1).bit_length()} x {c:.4g} ({norm})",
            _index_fill(
                lambda w, g: zero_(w, norm=norm, groups=groups, transposed=transposed, columns=columns),
                zero_rows_,
                module,
                norm=norm,
                groups=groups,
                transposed=transposed,
                columns=columns,
            ),
        )

    def parameter_rule(self, role: str, param: torch.Tensor) -> WeightRule:
        """Position tables 0 (as learned positions); tokens (cls, register) distinct Hadamard rows, as token
        embeddings: a zero cls token would stay 0 through every identity block and its LayerNorm, so a
        classifier reading it would see 0 and get no gradient."""
        if role == "position":
            return _zeros("learned positions start at 0: tokens alone set the input; training adds positions")
        if role == "token":
            norm, width = self.norm, param.shape[-1]
            per_row = math.prod(param.shape[1:-1])  # tokens in one slice param[i] (a cls token (1, 1, d): 1)

            def fill(w: torch.Tensor, g: torch.Generator) -> None:
                zero_embedding_(w.view(-1, width), norm=norm)

            def rows(out: torch.Tensor, start: int, total: int, g: torch.Generator) -> None:
                zero_embedding_rows_(out.view(-1, width), start * per_row, total * per_row, norm=norm)

            why = "token concatenated to the input: distinct Hadamard rows, as tokens"
            return WeightRule("hadamard", why, RowFill(fill, rows) if param.dim() > 1 else fill)
        return super().parameter_rule(role, param)

    def _embedding_rule(self, module: nn.Embedding, role: str) -> WeightRule:
        vocab, dim = module.num_embeddings, module.embedding_dim
        if role == "position":
            return _zeros("learned positions start at 0: tokens alone set the input; training adds positions")
        norm, constant = self.norm, self.constant_token
        fill = RowFill(
            lambda w, g: zero_embedding_(w, norm=norm, constant_token=constant),
            lambda out, start, total, g: zero_embedding_rows_(out, start, total, norm=norm, constant_token=constant),
        )
        if vocab == dim:
            return WeightRule("identity", f"{vocab} tokens, width {dim}: token i -> e_i", fill)
        first, period = embedding_rows(dim, constant)
        shared = embedding_collisions(vocab, dim, constant)
        why = f"{vocab} tokens, width {dim}: token i -> Hadamard row {'i' if first == 0 else 'i + 1'}"
        if shared:
            why = why.replace("row i", f"row (i mod {period})").replace("row i + 1", f"row 1 + (i mod {period})")
            why += f" ({shared} tokens share a row until their own gradients separate them)"
        return WeightRule("hadamard", why, fill)


class ConstNetScheme(Scheme):
    """ConstNet: channel averaging (:func:`const_avg_`) everywhere, zeros for branch-last and classifier.

    ``s > 0`` is the paper's partially random ConstNet: branch-last (residual)
    convs are drawn as ``s x He`` (normal, fan_out as in the official code)
    instead of 0. ``c < 1`` mixes noise into the averaging layers.
    """

    name = "constnet"
    zeroes_classifier = True
    deterministic_recurrence = True

    def __init__(self, c: float = 1.0, gain: float = 1.0, s: float = 0.0) -> None:
        c, gain, s = _check_number("c", c, 0.0, 1.0), _check_number("gain", gain, 0.0), _check_number("s", s, 0.0)
        self.c, self.gain, self.s = c, gain, s
        self.uses_generator = c < 1.0 or s > 0
        self.zeroes_branch_ends = s == 0

    def options(self) -> dict[str, object]:
        return {"c": self.c, "gain": self.gain, "s": self.s}

    def parameter_rule(self, role: str, param: torch.Tensor) -> WeightRule:
        if role in ("position", "token"):
            return _zeros(f"{role} starts at 0 (ConstNet: every feature starts identical)")
        return super().parameter_rule(role, param)

    def _rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
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

        def averaging(w: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            return const_avg_(w, c, gain=gain, generator=g, groups=groups, transposed=transposed)

        fill: Fill = averaging
        if c == 1:  # no noise: a function of the index
            fill = _index_fill(averaging, const_avg_rows_, module, groups=groups, transposed=transposed)
        return WeightRule("const_avg", reason, fill)


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
        self.mode, self.distribution = mode, distribution
        self.zero_init_last = _check_bool("zero_init_last", zero_init_last)
        self.zeroes_branch_ends = zero_init_last

    def options(self) -> dict[str, object]:
        opts: dict[str, object] = {"zero_init_last": self.zero_init_last}
        if self.kind != "orthogonal":
            opts["distribution"] = self.distribution
        if self.kind == "kaiming":
            opts["mode"] = self.mode
        return opts

    def _rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        role = layer.role
        if isinstance(module, nn.Embedding):
            return WeightRule(
                "normal", "embedding: N(0, 1) as torch's default", lambda w, g: rnd.normal_(w, generator=g)
            )
        if not isinstance(module, MATRIX_LAYER_TYPES):
            return None
        if role in RESIDUAL_LAST_ROLES and self.zero_init_last:
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
    residual_gate_value = 0.0

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
    zeroes_branch_ends = True
    zeroes_classifier = True

    def _rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        if isinstance(module, nn.Embedding):
            return WeightRule(
                "normal", "embedding: N(0, 1) as torch's default", lambda w, g: rnd.normal_(w, generator=g)
            )
        if not isinstance(module, MATRIX_LAYER_TYPES):
            return None
        if layer.role == "classifier":
            return _zeros("classifier starts at 0 (Fixup)")
        if layer.role in RESIDUAL_LAST_ROLES:
            return _zeros("last layer of a residual branch starts at 0 (Fixup)")
        groups, transposed = layer_geometry(module)
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
            scale = big_l ** (-1.0 / (2 * m - 2))
            why = f"He normal (fan_in) x L^(-1/(2m-2)) = {big_l}^(-1/{2 * m - 2}) = {scale:.4g}"
        return WeightRule(
            "fixup_scaled" if layer.role == "branch" else "kaiming_normal",
            why,
            lambda w, g: rnd.kaiming_normal_(w, generator=g, groups=groups, transposed=transposed).mul_(scale),
        )


class GPT2Scheme(Scheme):
    r"""GPT-2's initialisation (Radford et al. 2019; nanoGPT), the standard for Transformers.

    Every Linear / conv weight and every embedding :math:`\mathcal N(0, \sigma^2)`,
    :math:`\sigma = 0.02`; the last layer of each residual branch
    (``attn_out``, ``branch_last``) :math:`\sigma / \sqrt{L}` with ``L`` residual
    branches in the model (:math:`2 \times` depth for a GPT), so the residual
    stream's variance does not grow with depth.
    """

    name = "gpt2"
    uses_generator = True

    def __init__(self, std: float = 0.02) -> None:
        self.std = _check_number("std", std, 0.0, open_low=True)

    def options(self) -> dict[str, object]:
        return {"std": self.std}

    def _rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        if not isinstance(module, MATRIX_LAYER_TYPES + (nn.Embedding,)):
            return None
        std, why = self.std, f"N(0, {self.std:g}^2)"
        if layer.role in RESIDUAL_LAST_ROLES and layer.num_branches > 0:
            std = self.std / layer.num_branches**0.5
            why = f"N(0, ({self.std:g}/sqrt(L={layer.num_branches}))^2): last layer of a residual branch"
        return WeightRule("normal", why, lambda w, g: rnd.normal_(w, generator=g, std=std))


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
    uses_generator = True
    STACKS = ("decoder", "encoder")
    SCALED_ROLES = ("attn_value", "attn_out", "branch", "branch_last")

    def __init__(self, stack: str = "decoder") -> None:
        if stack not in self.STACKS:
            raise ValueError(f"scheme option stack={stack!r} is not supported; choose one of {self.STACKS}")
        self.stack = stack

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

    def _rule(self, module: nn.Module, layer: LayerInfo) -> WeightRule | None:
        if not isinstance(module, MATRIX_LAYER_TYPES + (nn.Embedding,)):
            return None
        scale, how = self._scale(layer)  # refuses models without attention layers, whatever the layer
        if isinstance(module, nn.Embedding):
            std = module.embedding_dim**-0.5 * scale
            return WeightRule(
                "tfixup_scaled",
                f"N(0, d^(-1/2)) x {how} = std {std:.4g}",
                lambda w, g: rnd.normal_(w, generator=g, std=std),
            )
        groups, transposed = layer_geometry(module)
        if layer.role not in self.SCALED_ROLES:
            scale, why = 1.0, "Xavier uniform"
        else:
            why = f"Xavier uniform x {how} = {scale:.4g}"
        return WeightRule(
            "tfixup_scaled" if scale != 1.0 else "xavier_uniform",
            why,
            lambda w, g: rnd.xavier_uniform_(w, generator=g, groups=groups, transposed=transposed).mul_(scale),
        )


GEOMETRY_SCHEMES = (ZerOScheme, ConstNetScheme, RandomScheme, GatedScheme, FixupScheme, GPT2Scheme, TFixupScheme)


def rule_key(scheme: Scheme, module: nn.Module, layer: LayerInfo, weight_shape: torch.Size) -> tuple | None:
    """A key equal for two layers that ``scheme`` gives the same weight rule, or ``None`` where it cannot say.

    The built-in schemes (exactly the classes in ``GEOMETRY_SCHEMES``, not subclasses, which may read anything)
    decide from the layer's class, its :class:`LayerInfo` and its geometry: the weight's shape and the
    attributes their rules read (features, channels, groups, kernel, vocabulary). So
    :func:`detinit.initialize` builds one rule per distinct key: a model's repeated blocks share it.

    >>> a, b = nn.Linear(4, 8), nn.Linear(4, 8)
    >>> z = get_scheme("zero")
    >>> rule_key(z, a, LayerInfo(), a.weight.shape) == rule_key(z, b, LayerInfo(), b.weight.shape)
    True
    """
    if type(scheme) not in GEOMETRY_SCHEMES:
        return None
    if isinstance(module, nn.Linear):
        attributes: tuple = (module.in_features, module.out_features)
    elif isinstance(module, MATRIX_LAYER_TYPES):
        attributes = (module.in_channels, module.out_channels, module.groups, module.kernel_size)
    elif isinstance(module, nn.Embedding):
        attributes = (module.num_embeddings, module.embedding_dim)
    else:
        return None
    return type(module), layer, weight_shape, attributes


SCHEMES: Registry[Callable[..., Scheme]] = Registry("scheme")
SCHEMES.add("zero", lambda **kw: ZerOScheme(hadamard=True, **kw), "ZerO: identity, partial identity, Hadamard; zeros")
SCHEMES.add(
    "partial_identity", lambda **kw: ZerOScheme(hadamard=False, **kw), "ZerO without Hadamard: partial identity only"
)
SCHEMES.add("constnet", ConstNetScheme, "ConstNet: channel averaging (ConstAvg), zeros for branch ends")
SCHEMES.add("kaiming", lambda **kw: RandomScheme("kaiming", **kw), "He et al. 2015")
SCHEMES.add("xavier", lambda **kw: RandomScheme("xavier", **kw), "Glorot & Bengio 2010")
SCHEMES.add("orthogonal", lambda **kw: RandomScheme("orthogonal", **kw), "Saxe et al. 2014")
SCHEMES.add("fixup", FixupScheme, "Fixup (Zhang et al. 2019): scaled branches, zero branch ends")
SCHEMES.add("skipinit", lambda **kw: GatedScheme("skipinit", **kw), "SkipInit: Kaiming, residual gates at 0")
SCHEMES.add("rezero", lambda **kw: GatedScheme("rezero", **kw), "ReZero: Xavier, residual gates at 0")
SCHEMES.add("gpt2", GPT2Scheme, "GPT-2: N(0, 0.02), branch ends / sqrt(number of branches)")
SCHEMES.add("tfixup", TFixupScheme, "T-Fixup (Huang et al. 2020): Xavier, value / output / MLP scaled by depth")


def list_schemes() -> list[str]:
    """Names accepted by :func:`get_scheme` and :func:`detinit.initialize`."""
    return sorted(SCHEMES.names())


def get_scheme(name: str | Scheme, **options: object) -> Scheme:
    """Build a scheme by name, e.g. ``get_scheme("zero", norm="paper")``.

    >>> get_scheme("kaiming", mode="fan_out").options()
    {'zero_init_last': False, 'distribution': 'normal', 'mode': 'fan_out'}
    """
    if isinstance(name, Scheme):
        if options:
            raise ValueError("options can only be given with a scheme name, not a Scheme instance")
        return name
    build = SCHEMES.get(name)
    try:
        return build(**options)
    except TypeError as err:  # an option the scheme does not take
        raise ValueError(f"scheme {name!r} does not accept options {sorted(options)}: {err}") from None

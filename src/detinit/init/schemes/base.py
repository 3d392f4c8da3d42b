"""What a scheme is: a :class:`Policy` of switches and three questions the resolver asks it.

A scheme says what it does to a layer's matrix (:meth:`Scheme.matrix_rule`), to an embedding table
(:meth:`Scheme.table_rule`), to a parameter of a named kind that is not a layer's weight
(:meth:`Scheme.parameter_rule`: positions, tokens, layer scales) and to one gate block of a recurrent
layer (:meth:`Scheme.recurrent_rule`). Everything every scheme shares (biases at 0, norms at 1, where a
branch's zero goes, fused projections split into blocks) is decided once, by
:func:`detinit.init.apply.resolve.resolve`, from the :class:`Policy`.

Adding a scheme is one module with a :class:`Scheme` subclass and one line in
:mod:`detinit.init.schemes.registry`.

>>> from detinit.init.roles.layers import Matrix
>>> from detinit.init.roles.vocabulary import LayerInfo
>>> class Ones(Scheme):
...     name = "ones"
...     def matrix_rule(self, matrix, layer):
...         return ParamRule("ones", "every weight 1", lambda w, g: w.fill_(1.0))
>>> Ones().matrix_rule(Matrix.linear(4, 8), LayerInfo()).rule
'ones'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..roles.layers import Matrix, Table
from ..roles.recurrent import GateBlock
from ..roles.vocabulary import RESIDUAL_LAST_ROLES, LayerInfo
from ..tensor import random as rnd
from ..tensor.row_fills import KEEP
from .rule import ParamRule, zeros


@dataclass(frozen=True)
class Policy:
    """A scheme's switches: what the resolver and :func:`detinit.initialize` do for it beyond its rules.

    Attributes:
        zeroes_branch_ends: every residual branch starts at 0 (ZerO, ConstNet, Fixup, ``zero_init_last``), or at
            ``branch_end_value`` (IDInit's :math:`\varepsilon`).
        branch_end_value: the value a branch's end starts at where it is a norm's scale or a layer scale.
        norm_aware: that zero goes on the norm or layer scale after the branch's last layer, where there is
            one (``branch_last_norm``); the layer keeps an ordinary branch layer's rule.
        zeroes_classifier: the output layer starts at 0 (tied to the token embedding: the norm before it).
        escapes_constant_readout: a zero output layer that reads a feature constant over the batch gets
            rows orthogonal to it (:mod:`detinit.init.apply.readout`).
        settles_embedding_norm: a norm reading the token embedding is scaled so that its output is the
            post-norm fixed point (:mod:`detinit.init.apply.embedding_norm`).
        completes_scaled_sums: a zero layer that is the whole branch of a sum scaled by ``s`` is set to
            ``(1/s - 1) I``, so that the block is the identity (:mod:`detinit.init.apply.scaled_sums`).
        deterministic_recurrence: recurrent gates get zeros and the identity, not random blocks.
        requires_gates: only meaningful on models with :class:`detinit.nn.ScalarGate` branches.
        residual_gate_value: where a ScalarGate multiplier of a residual branch starts.
        end_gain: where > 1, the scales that start a branch at 0 (rules with ``end``) are computed through
            :class:`~detinit.init.apply.end_gain.EndGain`, slope ``end_gain`` at 0, boost up to ``end_reach``.
        output_gain: the same for the scale of the norm before a tied output layer (``classifier_norm``), with
            the reach ``end_reach * sqrt(width)``.
        end_reach: where the boost of both saturates (:mod:`detinit.init.apply.end_gain`).
        uses_generator: draws random numbers (the report then records the seed).
        opens_entry_blocks: the entry blocks of the blocks whose branch ends on a norm (``"batch_norm"``: on a
            BatchNorm; ``"any"``: on any norm; ``""``: none) -- a network's first, and each that changes the width --
            start with their branch on: their layers get ``LayerInfo.opens``, their end norm's scale 1 (ZerO's
            ``open_blocks``; :mod:`detinit.init.roles.entries`).
        mixes_normed_branches: the layers of those blocks (the same choices) get ``LayerInfo.mixes`` (ZerO's
            ``branch_mixing``).
    """

    zeroes_branch_ends: bool = False
    branch_end_value: float = 0.0
    norm_aware: bool = True
    zeroes_classifier: bool = False
    escapes_constant_readout: bool = False
    settles_embedding_norm: bool = False
    completes_scaled_sums: bool = False
    deterministic_recurrence: bool = False
    requires_gates: bool = False
    residual_gate_value: float = 1.0
    end_gain: float = 1.0
    output_gain: float = 1.0
    end_reach: float = 1.0
    uses_generator: bool = False
    opens_entry_blocks: str = ""
    mixes_normed_branches: str = ""


class Scheme:
    """Base class: a named scheme with a :class:`Policy` that picks a :class:`ParamRule` per parameter.

    ``geometry_keyed``: the scheme's rules depend on nothing but the layer's :class:`LayerInfo` and
    :class:`Matrix` (or :class:`Table`), so the resolver builds one rule per distinct pair and shares it
    between a model's repeated layers. A subclass that does not say so itself is never keyed: it may read
    anything.
    """

    name: str = ""
    policy: Policy = Policy()
    geometry_keyed: bool = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "geometry_keyed" not in cls.__dict__:
            cls.geometry_keyed = False
        old = sorted({"_rule", "weight_rule", "zero_on_norm"} & set(cls.__dict__))
        if old:  # detinit 0.1's interface: silently ignored, every weight would be left unknown
            raise TypeError(
                f"scheme class {cls.__name__} defines {', '.join(old)}, which detinit no longer calls; a scheme "
                "now defines matrix_rule(matrix, layer) and table_rule(table, layer) (detinit.init.roles.layers."
                "Matrix / Table describe the weight), and where a branch's zero goes is its policy's "
                "(zeroes_branch_ends, norm_aware)"
            )

    @property
    def residual_gate_value(self) -> float:
        """Where a residual branch's scalar gate starts (read by :class:`detinit.nn.ScalarGate`'s hook)."""
        return self.policy.residual_gate_value

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        """The rule for a layer's weight in ``layer.role``; ``None``: the scheme has none (left unknown)."""
        return None

    def table_rule(self, table: Table, layer: LayerInfo) -> ParamRule | None:
        """The rule for an embedding table in ``layer.role`` (``"position"`` or a token embedding)."""
        return None

    def parameter_rule(self, kind: str, param: torch.Tensor) -> ParamRule:
        """The rule for a parameter that is not a layer's weight: a learned ``"position"`` table added to
        the input, a ``"token"`` (cls, register) concatenated to it, or a ``"layer_scale"`` vector.

        Default (random schemes): tables and tokens N(0, 0.02^2) as ViT and timm; a layer scale 0 where the
        scheme starts branches at 0, else the model's own value (a hyper-parameter such as ConvNeXt's 1e-6).
        """
        if kind == "layer_scale":
            if self.policy.zeroes_branch_ends:
                return replace(
                    zeros("layer scale of a residual branch starts at 0: the block is the identity"), end=True
                )
            return ParamRule("kept", "layer scale: the model's own value (a hyper-parameter)", KEEP)
        return ParamRule(
            "normal", f"{kind}: N(0, 0.02^2) as ViT / timm", lambda w, g: rnd.normal_(w, generator=g, std=0.02)
        )

    def recurrent_rule(self, block: GateBlock, layer: LayerInfo) -> ParamRule | None:
        """The rule for one gate block of a recurrent layer's weight (:mod:`detinit.init.roles.recurrent`).

        Random schemes: input blocks the rule of a Linear ``(cols -> rows)``, recurrent blocks orthogonal.
        Deterministic schemes (``deterministic_recurrence``): the candidate's input block that Linear rule,
        the plain RNN's recurrence that rule too (ZerO: the identity, IRNN), the other blocks 0. A layer
        ending a residual branch or the output, where the scheme starts those at 0, gets a zero candidate
        input block, so its output stays 0.
        """
        policy = self.policy
        ends_at_zero = (layer.role in RESIDUAL_LAST_ROLES and policy.zeroes_branch_ends) or (
            layer.role == "classifier" and policy.zeroes_classifier
        )
        if block.candidate and block.matrix == "input" and ends_at_zero:
            return zeros(f"candidate input 0: the state and output start at 0 (role {layer.role})")
        matrix = Matrix.linear(block.cols, block.rows)
        linear = layer if layer.role == "default" else replace(layer, role="default")
        if block.matrix == "projection" or (
            block.matrix == "input" and (block.candidate or not policy.deterministic_recurrence)
        ):
            return self.matrix_rule(matrix, linear)
        if not policy.deterministic_recurrence:
            return ParamRule(
                "orthogonal",
                "recurrent block orthogonal (Saxe et al. 2014; Keras' recurrent default)",
                lambda w, g: rnd.orthogonal_(w, generator=g),
            )
        if block.cell == "rnn":
            rule = self.matrix_rule(matrix, linear)
            return rule and replace(rule, reason=f"recurrence (IRNN, Le et al. 2015): {rule.reason}")
        if block.matrix == "input":
            return zeros("gate input weights 0: the gate starts constant at sigmoid(bias)")
        return zeros("recurrent weights of a gated cell 0: its memory's identity path is the cell state")

    def check_model(self, model_name: str, roles: frozenset[str], modules: Sequence[nn.Module]) -> None:
        """Refuse a model on which the scheme (or one of its options) would do nothing: ``roles`` are the
        roles found on the model (declared, traced, given), ``modules`` its modules. Default: every model
        is accepted."""

    def options(self) -> dict[str, object]:
        """The scheme's options, for reports and run records."""
        return {}

    def finite_fallback(self, given: Mapping[str, object]) -> dict[str, object] | None:
        """Options to initialise with instead where this scheme, built from the options ``given``, turns a model's
        finite output into inf or NaN (:func:`detinit.initialize` keeps them only if the output is finite then);
        ``None`` (the default) for none. Never an option the user gave."""
        return None

    def ignored_options(self, given: Mapping[str, object]) -> dict[str, str]:
        """Of the options ``given`` to build this scheme, those it would ignore, each with why:
        :func:`~detinit.init.schemes.registry.get_scheme` refuses them (an option with no effect is a
        mistake the user should hear of). Default: none."""
        return {}

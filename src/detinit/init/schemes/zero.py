"""ZerO (Zhao, Schaefer & Anandkumar 2022) and its ablation without Hadamard blocks: identity, partial identity
and Hadamard matrices, zeros at every branch end and at the output. The fills are in
:mod:`detinit.init.tensor.zero`; this module decides which one each layer gets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch
from torch import nn

from ... import hooks
from ..roles.layers import Matrix, Table, is_norm_module
from ..roles.vocabulary import ATTENTION_ROLES, LayerInfo
from ..tensor.embedding import embedding_collisions, embedding_rows, zero_embedding_
from ..tensor.hadamard import hadamard_mixing_, hadamard_mixing_rows_, is_power_of_two
from ..tensor.row_fills import RowFill, followed_by
from ..tensor.zero import HADAMARD_NORMS, hadamard_scale, partial_identity_, zero_, zero_unfolded_
from ..tensor.zero_rows import partial_identity_rows_, zero_embedding_rows_, zero_rows_, zero_unfolded_rows_
from .base import Policy, Scheme
from .fixup import fixup_depth_scale
from .rule import ParamRule, check_bool, check_choice, check_number, index_fill, zeros


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
      ``1, 2, 4, ...`` of :math:`H_m` first (:func:`~detinit.init.tensor.zero.hadamard_columns`);
      the top-left block repeats rows with period :math:`2^{\lceil\log_2 Q\rceil}`,
      so a 16 -> 32 layer outputs each feature twice and consecutive expanding
      layers cancel (:math:`H H = nI`) into exactly zero channels;
    * *Algorithm 1 on the unfolded kernel* of expanding convolutions
      (:func:`~detinit.init.tensor.zero.zero_unfolded_`): a 1- or 3-channel stem no
      longer makes identical channels.

    The networks that reproduce an official one (``zero_resnet*``,
    ``mnist_mlp``) default to ``variant="paper"``.

    **branch_end** (default 0): where > 0, each branch's last layer starts at
    ``branch_end`` times its ordinary rule (or the norm or layer scale after it
    at ``branch_end``) instead of 0, IDInit's IDIZ for ZerO; the output layer
    stays 0. Measured in ``docs/results.md`` (section 13).

    **end_gain, output_gain, end_reach** (``variant="detinit"``: 30, 300, 1; the
    paper's variant: 1, no gain): a scale that carries a zero of ZerO (the norm
    or layer scale ending a branch; the norm before an output layer tied to the
    token embedding) is computed as :math:`w = f(\theta)`, slope ``end_gain``
    (``output_gain``) at 0, the boost saturating at ``end_reach`` (times
    :math:`\sqrt{d}` for the tied output's norm of width :math:`d`):
    :class:`~detinit.init.apply.end_gain.EndGain`. The network at step 0 is
    bitwise the same (identity blocks, logits 0) and the state dict keeps plain
    names and values; a plain optimiser over ``model.parameters()`` grows those
    scales :math:`g^2` (SGD) or :math:`g` (Adam) times faster until they reach
    order 1, which closes most of ZerO's slow start (``docs/results.md``,
    section 14). ``end_gain=1, output_gain=1`` give the plain zeros.

    **depth_scale** (default: on a ``variant="detinit"`` model with no norm layer,
    no attention and no residual gates, Fixup's setting; ``True`` / ``False`` force it): each
    branch's layers before its last get Fixup's :math:`L^{-1/(2m-2)}` times
    their rule (:math:`L` branches of :math:`m` layers; 1/3 on ResNet-20), so
    that one SGD step changes the network by O(1) however many branches there
    are. Without it a norm-free ResNet-20 learnt on 1 seed of 3; measured in
    ``docs/results.md`` (section 14), with the norm-free GPT where it does not help.

    **branch_zero** (``"end"`` or ``"gate"``; default ``"gate"`` on a ``variant="detinit"`` model with
    residual gates, no norm layer and no attention, unless ``depth_scale`` or ``branch_end`` is given; ``"end"``
    elsewhere and always under ``partial_identity``, which has no Hadamard block to mix with): where a residual
    branch's zero goes. ``"end"`` is ZerO's (the branch's last layer, or the norm or layer scale after it).
    ``"gate"`` puts it on the branch's scalar gate (:class:`detinit.nn.ScalarGate`, SkipInit's place; asked for
    on a model without gates, refused) and makes the rest of a norm-free network keep He's second moment,
    deterministically: each square branch layer mixes its channels on every tap
    (:func:`~detinit.init.tensor.hadamard.hadamard_mixing_` with ``taps="all"``, the first at gain sqrt 2, the
    last reversed, so the branch does not point along the stream its gate adds it to), and each expanding
    Hadamard block outside the branches (a stem, a shortcut) has its rows at norm sqrt 2, He's, instead of
    orthonormal rows of norm sqrt(Q / 2^m). Blocks are still the identity at step 0 and the output still 0. On a
    norm-free ResNet-20 it trains on 3 of 3 seeds at 256 and at 768 SGD steps (71.2 and 84.3 %; SkipInit 73.6 and
    86.0), where the zero at the branch end with the depth scale diverges or stays at chance on every seed at 768
    (``docs/results.md``, section 14).

    **branch_mixing, open_blocks** (``variant="detinit"`` with Hadamard blocks, not ``partial_identity``: ``True``
    and ``"entries"`` on the residual blocks whose branch ends on a BatchNorm, where they were measured; each given
    explicitly, on any block whose branch ends on a norm; ``False`` / ``"none"``: the paper's rules there).
    Identity blocks whose branch convs are the
    identity pass the stem's few features on unchanged, so at step 0 a BatchNorm ResNet-20's stage 3 has about 10
    effective channels of 64 (Kaiming's random branches: 19-38) and ZerO trained 1.9 pp behind Kaiming at 256 SGD
    steps. ``branch_mixing`` gives each square branch layer Hadamard mixing on every tap
    (:func:`~detinit.init.tensor.hadamard.hadamard_mixing_` with ``taps="all"``, gain sqrt 2; the zero stays on the
    norm's scale, so those blocks are still the identity); ``open_blocks="entries"`` starts the branch of the
    entry blocks on, their end norm's scale at 1: the network's first block and each block whose branch changes
    the width (:mod:`detinit.init.roles.entries`; on a ResNet the first block of every stage). Together, over six
    seeds at 256 steps: 86.18 % against Kaiming's 86.03 and the identity start's 84.17 (each alone: +0.6 pp);
    ``docs/results.md``, section 14. The other blocks are the identity and the output 0; the report's
    ``open_blocks`` names the entry blocks, which :func:`~detinit.diagnostics.zero_start_promises` then leaves out.

    **Transformers.** A pre-LN block :math:`x + \mathrm{Attn}(\mathrm{LN}(x))`,
    :math:`x + \mathrm{MLP}(\mathrm{LN}(x))` is the identity at init when each
    branch outputs 0. ``attention=`` picks how the attention branch gets there:

    * ``"identity"`` (default; the TMLR paper's rule for any network, "branch-last
      layers at 0, Algorithm 1 elsewhere"): :math:`W_Q = W_K = W_V = I`,
      :math:`W_O = 0`. Attention logits start as :math:`\mathrm{LN}(x)_h\,
      \mathrm{LN}(x)_h^\top/\sqrt{d_h}` per head: content-based, not uniform.
    * ``"kv_zero"`` (one public re-implementation for GPT): :math:`W_Q = I`,
      :math:`W_K = W_V = 0`, :math:`W_O = I`. Logits are 0, so attention starts
      uniform over the causal window, and the branch is 0 because ``V`` is. Also what the default falls back to
      where ``W_Q = W_K`` makes the model's output inf or NaN (a kernel undefined where a query equals its key,
      YOSO's ``acos``; :meth:`finite_fallback`), said in the report.

    Zeroing *both* :math:`W_V` and :math:`W_O` would be a saddle the gradient
    never leaves (each one's gradient is proportional to the other), which is
    why neither variant does. The MLP's expanding layer gets the Hadamard
    block and its last layer 0; token embeddings get
    :func:`~detinit.init.tensor.embedding.zero_embedding_` (balanced Hadamard rows;
    ``constant_token=True`` also uses the constant row 0, as Algorithm 1 on
    :math:`E^\top` would), learned positions 0.
    """

    ATTENTION = ("identity", "kv_zero")
    END_GAIN, OUTPUT_GAIN = 30.0, 300.0  # measured: docs/results.md, section 14
    VARIANTS = ("detinit", "paper")
    BRANCH_ZEROS = ("end", "gate")
    OPEN_BLOCKS = ("entries", "none")
    geometry_keyed = True

    def __init__(
        self,
        norm: str = "orthonormal",
        hadamard: bool = True,
        attention: str = "identity",
        constant_token: bool = False,
        variant: str = "detinit",
        branch_end: float = 0.0,
        end_gain: float | None = None,
        output_gain: float | None = None,
        end_reach: float = 1.0,
        depth_scale: bool | None = None,
        branch_zero: str | None = None,
        open_blocks: str | None = None,
        branch_mixing: bool | None = None,
    ) -> None:
        self.norm = check_choice("norm", norm, HADAMARD_NORMS)
        self.hadamard = check_bool("hadamard", hadamard)
        self.attention = check_choice("attention", attention, self.ATTENTION)
        self.constant_token = check_bool("constant_token", constant_token)
        self.variant = check_choice("variant", variant, self.VARIANTS)
        self.branch_end = check_number("branch_end", branch_end, 0.0, 1.0)
        ours = variant == "detinit"  # the zero on the norm, distinct Hadamard rows, the constant readout escaped
        end_default = self.END_GAIN if ours and not self.branch_end else 1.0  # an epsilon start is boosted if asked
        output_default = self.OUTPUT_GAIN if ours else 1.0
        self.end_gain = check_number("end_gain", end_default if end_gain is None else end_gain, 1.0, 1e4)
        self.output_gain = check_number("output_gain", output_default if output_gain is None else output_gain, 1.0, 1e4)
        self.end_reach = check_number("end_reach", end_reach, 0.0, open_low=True)
        self.depth_scale = None if depth_scale is None else check_bool("depth_scale", depth_scale)
        self.branch_zero_option = (
            None if branch_zero is None else check_choice("branch_zero", branch_zero, self.BRANCH_ZEROS)
        )
        self.branch_zero = branch_zero or "end"  # where branch_zero is None, check_model decides it per model
        gated = self.branch_zero == "gate"
        clashes = {"variant": (variant, variant != "detinit"), "depth_scale": (depth_scale, bool(self.depth_scale))}
        clashes["branch_end"] = (branch_end, bool(self.branch_end))
        clashes["hadamard"] = (hadamard, not self.hadamard)  # partial_identity: the mixing is a Hadamard block
        if gated and any(clash for _, clash in clashes.values()):
            given = ", ".join(f"{key}={value!r}" for key, (value, clash) in clashes.items() if clash)
            raise ValueError(
                f"scheme option branch_zero='gate' does not combine with {given}: it is detinit's norm-free start "
                "with the branch's zero on its gate (no depth scale, no branch_end), whose branches are mixed by "
                "Hadamard blocks (scheme 'zero'; partial_identity has none)"
            )
        self.open_blocks_option = (
            None if open_blocks is None else check_choice("open_blocks", open_blocks, self.OPEN_BLOCKS)
        )
        self.branch_mixing_option = None if branch_mixing is None else check_bool("branch_mixing", branch_mixing)
        asked = {
            "open_blocks": (open_blocks, open_blocks == "entries"),
            "branch_mixing": (branch_mixing, bool(branch_mixing)),
        }
        if not ours and any(on for _, on in asked.values()):
            given = ", ".join(f"{key}={value!r}" for key, (value, on) in asked.items() if on)
            raise ValueError(
                f"scheme option {given} does not combine with variant='paper': the paper's branches end in a zero "
                "layer with the identity before it, not on a norm; drop one of them"
            )
        if branch_mixing and not self.hadamard:
            raise ValueError(
                "scheme option branch_mixing=True does not combine with hadamard=False (partial_identity): the "
                "mixing is a Hadamard matrix, which that ablation has none of"
            )
        diverse = ours and self.hadamard  # the ablation without Hadamard blocks keeps the identity start
        self.open_blocks = open_blocks or ("entries" if diverse else "none")
        self.branch_mixing = diverse if branch_mixing is None else self.branch_mixing_option
        scope = {key: "any" if on else "batch_norm" for key, (_, on) in asked.items()}  # the default: as measured
        self.scales_depth = bool(depth_scale)  # decided per model by check_model where depth_scale is None
        self.policy = Policy(
            zeroes_branch_ends=True,
            norm_aware=ours,
            zeroes_classifier=True,
            escapes_constant_readout=ours,
            settles_embedding_norm=ours,
            completes_scaled_sums=ours,
            deterministic_recurrence=True,
            branch_end_value=self.branch_end,
            end_gain=self.end_gain,
            output_gain=self.output_gain,
            end_reach=self.end_reach,
            opens_entry_blocks=scope["open_blocks"] if self.open_blocks == "entries" else "",
            mixes_normed_branches=scope["branch_mixing"] if self.branch_mixing else "",
        )
        self._end_policy = self.policy
        if gated:
            self._put_zero_on_gates()
        self.columns = "spanning" if ours else "first"
        self.name = "zero" if hadamard else "partial_identity"

    def options(self) -> dict[str, object]:
        opts: dict[str, object] = {"norm": self.norm} if self.hadamard else {}
        opts["variant"] = self.variant
        if self.attention != "identity":
            opts["attention"] = self.attention
        if self.constant_token:
            opts["constant_token"] = True
        if self.branch_end:
            opts["branch_end"] = self.branch_end
        if self.depth_scale is not None:
            opts["depth_scale"] = self.depth_scale
        if self.branch_zero != "end" or self.branch_zero_option is not None:
            opts["branch_zero"] = self.branch_zero
        if self.open_blocks_option is not None:
            opts["open_blocks"] = self.open_blocks
        if self.branch_mixing_option is not None:
            opts["branch_mixing"] = self.branch_mixing
        if self.end_gain != 1.0 or self.output_gain != 1.0:
            opts.update(end_gain=self.end_gain, output_gain=self.output_gain, end_reach=self.end_reach)
        return opts

    def finite_fallback(self, given: Mapping[str, object]) -> dict[str, object] | None:
        """``attention="kv_zero"`` where the attention rule was left at its default: ``W_Q = W_K`` makes a token's
        query equal its key, where a kernel such as YOSO's ``acos`` of their cosine is undefined."""
        return {"attention": "kv_zero"} if "attention" not in given and self.attention == "identity" else None

    def ignored_options(self, given: Mapping[str, object]) -> dict[str, str]:
        ignored = {}
        if "norm" in given and not self.hadamard:
            ignored["norm"] = f"does nothing under {self.name}: it scales Hadamard blocks, and there are none"
        if "end_reach" in given and self.end_gain == 1.0 and self.output_gain == 1.0:
            ignored["end_reach"] = "does nothing without a gain: end_gain and output_gain are 1"
        return ignored

    def _put_zero_on_gates(self) -> None:
        self.branch_zero = "gate"
        self.policy = replace(self._end_policy, zeroes_branch_ends=False, requires_gates=True, residual_gate_value=0.0)

    def check_model(self, model_name: str, roles: frozenset[str], modules: Sequence[nn.Module]) -> None:
        attention = bool(roles & ATTENTION_ROLES) or any(isinstance(m, nn.MultiheadAttention) for m in modules)
        free = self.variant == "detinit" and not any(is_norm_module(m) for m in modules) and not attention
        if self.branch_zero_option is None:  # the norm-free start that trains on every seed, where it can be had
            gates = any(hooks.is_residual_gate(m) for m in modules)
            if free and gates and self.hadamard and self.depth_scale is None and not self.branch_end:
                self._put_zero_on_gates()
            else:
                self.branch_zero, self.policy = "end", self._end_policy
        if self.depth_scale is None:  # Fixup's setting: a residual network with no norm and no attention
            self.scales_depth = free and self.branch_zero == "end"
        if self.attention != "kv_zero" or roles & ATTENTION_ROLES:
            return
        if not any(isinstance(m, nn.MultiheadAttention) for m in modules):
            raise ValueError(
                f"scheme option attention='kv_zero' does nothing on {model_name}: no attention layer was "
                "found (declared, traced or given in roles=); drop the option, or pass example_inputs= so that "
                "attention can be traced"
            )

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        role = layer.role
        if role == "classifier":
            return zeros("classifier starts at 0 (ZerO): the output is 0 at init")
        if (layer.opens or layer.mixes) and role in ("branch", "branch_last"):
            return self._normed_branch_rule(matrix, layer.opens)
        if self.branch_zero == "gate" and role in ("branch", "branch_last"):
            return self._gated_branch_rule(matrix, layer)
        if role == "branch" and self.scales_depth and layer.branch_depth >= 2 and layer.num_branches >= 1:
            scale = fixup_depth_scale(layer.num_branches, layer.branch_depth)
            why = f"L = {layer.num_branches} branches of m = {layer.branch_depth} layers, no norm: Fixup's depth scale"
            return scaled_rule(self.matrix_rule(matrix, replace(layer, role="default")), scale, why)
        ends = role == "branch_last" or (self.attention == "identity" and role == "attn_out")
        if ends and self.branch_end:
            ordinary = self.matrix_rule(matrix, replace(layer, role="default"))  # no depth scale: the last layer
            return scaled_rule(
                ordinary, self.branch_end, f"last layer of a residual branch (branch_end={self.branch_end:g})"
            )
        if role == "branch_last":
            return zeros("last layer of a residual branch starts at 0: the block is the identity")
        if self.attention == "identity" and role == "attn_out":
            return zeros("attention output starts at 0: the attention branch outputs 0")
        if self.attention == "kv_zero" and role in ("attn_key", "attn_value"):
            why = "keys 0: attention starts uniform" if role == "attn_key" else "values 0: the branch outputs 0"
            return zeros(f"{why} (attention='kv_zero')")
        rule = self._plain_rule(matrix, role)
        expanding = rule.rule in ("hadamard", "unfolded_hadamard", "unfolded_identity") and not matrix.transposed
        return he_rows_rule(rule) if self.branch_zero == "gate" and role == "default" and expanding else rule

    def _plain_rule(self, matrix: Matrix, role: str) -> ParamRule:
        """Algorithm 1 for a layer that carries no zero: identity, partial identity or a Hadamard block."""
        groups, transposed = matrix.groups, matrix.transposed
        p, q = matrix.out_features, matrix.in_features
        where = f"{p}x{q}" + (f" per group (groups={groups})" if groups > 1 else "")
        if not self.hadamard or p <= q or role == "pre_hadamard":
            kind = "identity" if p == q else "partial_identity"
            why = "identity" if p == q else "partial identity I*"
            if role == "pre_hadamard" and p > q:
                why += " (a fixed Hadamard transform follows: together they give the Hadamard block)"
            if matrix.kind != "linear":
                why += " on the centre tap"
            fill = index_fill(
                lambda w, g: partial_identity_(w, groups=groups, transposed=transposed),
                partial_identity_rows_,
                matrix,
                groups=groups,
                transposed=transposed,
            )
            return ParamRule(kind, f"{where}: {why}", fill)
        return expanding_rule(matrix, where, self.norm, self.columns, self.variant)

    def _normed_branch_rule(self, matrix: Matrix, opens: bool) -> ParamRule:
        """A layer of a branch that ends on a norm, under ``branch_mixing`` or in an entry block ``open_blocks``
        starts on: a square layer mixes its channels on every tap at gain sqrt 2 (a norm follows it, so the gain
        only sets how fast SGD turns it); any other gets the rule it would get outside a branch."""
        where = (
            "an entry block, its branch on (open_blocks='entries')"
            if opens
            else "the branch's zero is on the norm after it (branch_mixing)"
        )
        return self._mixing_rule(matrix, math.sqrt(2.0), False, "gain sqrt 2", where)

    def _gated_branch_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        """``branch_zero="gate"``: a square branch layer mixes its channels; any other gets the rule it would
        get outside a branch (its zero is on the gate)."""
        last = layer.role == "branch_last"
        what = "reversed columns, the branch's last layer" if last else "gain sqrt 2 (a ReLU follows)"
        where = "the branch's zero is on its gate (branch_zero='gate')"
        return self._mixing_rule(matrix, 1.0 if last else math.sqrt(2.0), last, what, where)

    def _mixing_rule(self, matrix: Matrix, gain: float, reverse: bool, what: str, where: str) -> ParamRule:
        """A square ``n x n`` layer (``n`` a power of two, one group): ``gain H_n / sqrt n`` mixing its channels,
        spread over every tap by Hadamard tap patterns (:func:`~detinit.init.tensor.hadamard.hadamard_mixing_`);
        any other gets the rule it would get outside a branch."""
        n = matrix.out_features
        if n != matrix.in_features or matrix.groups != 1 or matrix.transposed or not is_power_of_two(n):
            return self._plain_rule(matrix, "default")
        taps = "" if matrix.taps == 1 else ", spread over every tap by Hadamard tap patterns"
        return ParamRule(
            "hadamard_mixing",
            f"{n}x{n}: H_n / sqrt n, {what}{taps}; {where}",
            RowFill(
                lambda w, g: hadamard_mixing_(w, gain, reverse=reverse, taps="all"),
                lambda out, start, total, g: hadamard_mixing_rows_(
                    out, start, total, gain, reverse=reverse, taps="all"
                ),
            ),
        )

    def parameter_rule(self, role: str, param: torch.Tensor) -> ParamRule:
        """Position tables 0 (as learned positions); tokens (cls, register) distinct Hadamard rows, as token
        embeddings: a zero cls token would stay 0 through every identity block and its LayerNorm, so a
        classifier reading it would see 0 and get no gradient."""
        if role == "position":
            return zeros("learned positions start at 0: tokens alone set the input; training adds positions")
        if role == "token":
            norm, width = self.norm, param.shape[-1]
            per_row = math.prod(param.shape[1:-1])  # tokens in one slice param[i] (a cls token (1, 1, d): 1)

            def fill(w: torch.Tensor, g: torch.Generator) -> None:
                zero_embedding_(w.view(-1, width), norm=norm)

            def rows(out: torch.Tensor, start: int, total: int, g: torch.Generator) -> None:
                zero_embedding_rows_(out.view(-1, width), start * per_row, total * per_row, norm=norm)

            why = "token concatenated to the input: distinct Hadamard rows, as tokens"
            return ParamRule("hadamard", why, RowFill(fill, rows) if param.dim() > 1 else fill)
        return super().parameter_rule(role, param)

    def table_rule(self, table: Table, layer: LayerInfo) -> ParamRule | None:
        if layer.role == "position":
            return zeros("learned positions start at 0: tokens alone set the input; training adds positions")
        return embedding_rule(table, self.norm, self.constant_token)


def scaled_rule(rule: ParamRule | None, scale: float, why: str) -> ParamRule | None:
    """``rule`` times ``scale``, for ``why``: a branch's last layer at ``branch_end`` (IDInit's IDIZ for ZerO: the
    branch outputs ``O(scale)`` and every layer before it gets a gradient at the first step), or a branch's other
    layers at Fixup's depth scale ``L^(-1/(2m-2))`` (``depth_scale``)."""
    if rule is None:
        return None
    fill = followed_by(rule.fill, lambda w: w.mul_(scale))  # the block forms kept: a shard writes its rows alone
    return ParamRule("scaled_" + rule.rule, f"{why}: {scale:.4g} x ({rule.reason})", fill)


def expanding_rule(matrix: Matrix, where: str, norm: str, columns: str, variant: str) -> ParamRule:
    """ZerO's rule for an expanding layer, ``P > Q``: the Hadamard block (Algorithm 1 / 2), or Algorithm 1 on
    the unfolded kernel of a conv (variant ``detinit``), with the Hadamard columns the variant picks."""
    p, q, taps = matrix.out_features, matrix.in_features, matrix.taps
    groups, transposed = matrix.groups, matrix.transposed
    if variant == "detinit" and taps > 1:
        patch = q * taps
        what = (
            f"shifted copies: output i = input channel i mod {q} at the (i div {q})-th nearest tap"
            if p <= patch
            else f"Hadamard block over the {patch} patch values ({columns} columns)"
        )
        return ParamRule(
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
    return ParamRule(
        "hadamard",
        f"{where}: expanding, {block} of Hadamard H_{(p - 1).bit_length()} x {c:.4g} ({norm})",
        index_fill(
            lambda w, g: zero_(w, norm=norm, groups=groups, transposed=transposed, columns=columns),
            zero_rows_,
            matrix,
            norm=norm,
            groups=groups,
            transposed=transposed,
            columns=columns,
        ),
    )


def he_rows_rule(rule: ParamRule) -> ParamRule:
    """``rule``, then each non-zero row (output) divided by its norm and times sqrt 2: He's expected row norm for a
    layer before a ReLU (rows of an orthonormal expanding block have norm sqrt(Q / 2^m) < 1). Row by row, so a
    shard writes the same rows as the whole tensor. For weights stored ``(out, ...)`` only (not transposed)."""
    gain = math.sqrt(2.0)

    def normed(w: torch.Tensor) -> None:
        norms = w.reshape(len(w), -1).norm(dim=1)
        scale = torch.where(norms > 0, gain / norms.clamp_min(1e-30), torch.zeros_like(norms))
        w.mul_(scale.view(-1, *[1] * (w.dim() - 1)))

    fill = followed_by(rule.fill, normed, transposed=False)  # a transposed layout's rows are inputs: not normed
    return ParamRule(rule.rule + "_he_rows", f"{rule.reason}; rows at norm sqrt 2 (He's; branch_zero='gate')", fill)


def embedding_rule(table: Table, norm: str, constant: bool) -> ParamRule:
    """ZerO's token embedding: distinct, balanced Hadamard rows
    (:func:`~detinit.init.tensor.embedding.zero_embedding_`)."""
    vocab, dim = table.num_embeddings, table.embedding_dim
    fill = RowFill(
        lambda w, g: zero_embedding_(w, norm=norm, constant_token=constant),
        lambda out, start, total, g: zero_embedding_rows_(out, start, total, norm=norm, constant_token=constant),
    )
    if vocab == dim:
        return ParamRule("identity", f"{vocab} tokens, width {dim}: token i -> e_i", fill)
    first, period = embedding_rows(dim, constant)
    shared = embedding_collisions(vocab, dim, constant)
    why = f"{vocab} tokens, width {dim}: token i -> Hadamard row {'i' if first == 0 else 'i + 1'}"
    if shared:
        why = why.replace("row i", f"row (i mod {period})").replace("row i + 1", f"row 1 + (i mod {period})")
        why += f" ({shared} tokens share a row until their own gradients separate them)"
    return ParamRule("hadamard", why, fill)

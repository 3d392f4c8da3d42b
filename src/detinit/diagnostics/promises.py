r"""Whether a model starts where ZerO promises, measured on one forward pass: :func:`zero_start_promises`.

ZerO's start makes two promises that an input can check, whatever the architecture:

* **zero logits**: every output named ``*logits*`` (or, for a plain tensor output, the output) is exactly 0;
* **identity blocks**: every residual branch adds 0, and every block around one is the identity.

The blocks are found from the computation, not from module names: the forward pass is recorded
(:func:`detinit.init.roles.trace.record_forward`); a *residual add* is an add of two same-shaped tensors that
depend on the input, one computed from the other through at least one layer (:math:`x + f(x)`, or several
branches side by side: :func:`detinit.init.roles.traced.residuals.residual_sums`); its branch error is
:math:`\|f(x)\| / \|x + f(x)\|` (for a sum scaled by a constant, :math:`s\,(x + f(x))`, the branch must make
it :math:`x`: :math:`\|s\,(x + f(x)) - x\| / \|s\,(x + f(x))\|`). A *block* is a module call that takes
the add's skip :math:`x` (or a reshape of it) and returns a tensor of that shape :math:`y`, the smallest such
call around the add; its error is :math:`\|y - x\| / \|x\|` (a post-norm block :math:`\mathrm{LN}(x + 0)` is
the identity only when :math:`x` is already normalised); a call that holds another add's block is a stack of
blocks, not one. Both count as kept at a relative error ``<= tolerance``.

>>> import torch
>>> from torch import nn
>>> class Block(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = nn.Linear(4, 4)
...     def forward(self, x):
...         return x + self.fc(x)
>>> net = nn.Sequential(Block(), nn.Linear(4, 3))
>>> _ = [nn.init.zeros_(p) for p in net.parameters()]
>>> [(p.promise, p.kept) for p in zero_start_promises(net, torch.ones(2, 4))]
[('zero logits', True), ('residual branches add 0', True), ('blocks are the identity', True)]
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch import nn

from ..contract import checked_arguments
from ..init.roles.trace import Graph, record_forward
from ..init.roles.traced.index import NORM_FUNCS, GraphIndex, number_arguments
from ..init.roles.traced.residuals import ResidualSum, reshaped_from, residual_sums

ZERO_LOGITS = "zero logits"
BRANCHES_ZERO = "residual branches add 0"
BLOCKS_IDENTITY = "blocks are the identity"
UNNORMALISED_POST_NORM = "a post-norm block on an input that is not normalised"  # the mechanism a broken block names
POST_ACTIVATION = "a post-activation block on an input with negative entries"  # another such mechanism
SCALED_SKIP = "a block whose sum scales its skip"  # and another
# the mechanisms where no initialisation of a block's branch makes the block the identity
ARCHITECTURE_MECHANISMS = (UNNORMALISED_POST_NORM, POST_ACTIVATION, SCALED_SKIP)
ACTIVATION_FUNCS = frozenset(
    {"relu", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "prelu", "hardswish"}
)


@dataclass(frozen=True)
class Promise:
    """One promise's verdict on one input: ``kept`` is ``None`` where the model has nothing it applies to
    (no logits, no residual add); ``error`` the worst relative error (0 for exact), ``where`` where it was."""

    promise: str
    kept: bool | None
    error: float
    where: str
    checked: int  # how many outputs, adds or blocks were checked
    why: str = ""  # the mechanism, where the check can tell it (a post-norm block on an unnormalised input)

    def __str__(self) -> str:
        verdict = {True: "kept", False: "BROKEN", None: "n/a"}[self.kept]
        where = f" at {self.where}" if self.where else ""
        why = f"; {self.why}" if self.why else ""
        return f"{self.promise}: {verdict} ({self.checked} checked, worst {self.error:.3g}{where}{why})"


@checked_arguments(ranges={"tolerance": (0.0, math.inf)})
def zero_start_promises(
    model: nn.Module,
    inputs: object,
    *,
    tolerance: float = 1e-4,
    carries_output_zero: Collection[str] = (),
    open_blocks: Collection[str] = (),
) -> list[Promise]:
    """Check ZerO's promises on ``model`` (already initialised) for ``inputs`` (a tensor, a tuple of positional
    arguments or a dict of keyword arguments), in eval mode; changes nothing.

    ``carries_output_zero``: modules that carry the output layer's zero by design (the norm before an output
    layer tied to the token embedding, role ``classifier_norm`` in the report; with no final norm it is the last
    block's own): a block around one of them is not counted. ``open_blocks``: the entry blocks ZerO started with
    their branch on (the report's ``open_blocks``, :mod:`detinit.init.roles.entries`): their sums and the blocks
    around them are not counted."""
    modules = dict(model.named_modules())
    for option, names, what in (
        ("carries_output_zero", carries_output_zero, "the report's role classifier_norm"),
        ("open_blocks", open_blocks, "the report's open_blocks"),
    ):
        unknown = sorted(name for name in names if name not in modules)
        if unknown:
            raise ValueError(
                f"zero_start_promises: {option} names {unknown[0]!r}, which is no module of "
                f"{type(model).__name__}; give module names ({what})"
            )
    graph = record_forward(model, inputs)
    ix = GraphIndex(model, graph)
    sums = [block for block in residual_sums(ix) if not _inside(block.module, open_blocks)]
    blocks = _blocks_identity(ix, sums, tolerance, set(carries_output_zero))
    return [_zero_logits(graph), _branches_zero(graph, sums, tolerance), blocks]


def _inside(module: str, blocks: Collection[str]) -> bool:
    """Whether ``module`` is one of ``blocks`` or inside one."""
    return any(module == block or module.startswith(block + ".") for block in blocks)


def _norm(t: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(t.detach().double()))


def _relative(difference: float, scale: float) -> float:
    if difference == 0:
        return 0.0
    return difference / scale if scale > 0 else float("inf")


def _zero_logits(graph: Graph) -> Promise:
    keys = [(k, v) for k, v in zip(graph.output_keys, graph.outputs) if "logits" in k.lower()]
    if not keys and len(graph.outputs) == 1 and graph.output_keys[0] in ("", "0"):
        keys = [(graph.output_keys[0] or "output", graph.outputs[0])]
    if not keys:
        return Promise(ZERO_LOGITS, None, 0.0, "", 0)
    worst, where = 0.0, ""
    for key, value in keys:
        tensor = graph.tensors[value]
        if not tensor.is_floating_point():
            continue
        peak = float(tensor.detach().abs().max()) if tensor.numel() else 0.0
        if peak > worst or not where:
            worst, where = max(worst, peak), key
    return Promise(ZERO_LOGITS, worst == 0.0, worst, where, len(keys))


def _branches_zero(graph: Graph, sums: list[ResidualSum], tolerance: float) -> Promise:
    worst, where = 0.0, ""
    for block in sums:
        out = graph.tensors[graph.nodes[block.node].outputs[0]].detach().double()
        factor = block.scale
        if factor == 1.0:
            total = sum(graph.tensors[value].detach().double() for value, _ in block.branches)
            error = _relative(_norm(total), _norm(out))
        else:  # s (x + f(x)): the branch must make the scaled sum its skip x
            skip = graph.tensors[block.skip].detach().double()
            error = _relative(_norm(factor * out - skip), _norm(factor * out))
        if error > worst or not where:
            worst, where = max(worst, error), block.module or "the model"
    kept = None if not sums else worst <= tolerance
    return Promise(BRANCHES_ZERO, kept, worst, where, len(sums))


def _blocks_identity(ix: GraphIndex, sums: list[ResidualSum], tolerance: float, excluded: set[str]) -> Promise:
    """Each residual sum's block: the smallest module call around it that takes its skip and returns a tensor
    of that shape (a model's encoder, which adds a final norm after its blocks, is not one), unless that call
    holds another sum's block: then it is a stack of blocks (wav2vec 2.0's encoder adds its convolutional
    positions, normalises, then runs its layers) and its own sum is checked by the branch promise alone."""
    graph = ix.graph
    found: dict[int, tuple[int, int]] = {}  # call number -> (entry, exit)
    sums_of: dict[int, list[ResidualSum]] = {}  # call number -> its sums
    for block in sums:
        sources = _skip_sources(ix, block.skip)
        best: tuple[int, int, int, int] | None = None  # (span, call number, entry, exit)
        for number, call in enumerate(graph.calls):
            if not call.name or not call.first_node <= block.node < call.last_node:
                continue
            entry = next((v for v in sources if v in call.inputs), None)
            if entry is None:
                continue
            shape = graph.values[entry].shape
            exit_ = next((v for v in call.outputs if graph.values[v].shape == shape), None)
            if exit_ is None or not graph.tensors[exit_].is_floating_point():
                continue
            span = call.last_node - call.first_node
            if best is None or span < best[0]:
                best = (span, number, entry, exit_)
        if best is not None:
            found.setdefault(best[1], best[2:])
            sums_of.setdefault(best[1], []).append(block)
    carriers = [c for c in graph.calls if c.name in excluded]
    errors: dict[int, float] = {}  # call number -> its error
    for number, (entry, exit_) in found.items():
        call = graph.calls[number]
        inside = [graph.calls[n] for n in found if n != number] + carriers
        if any(call.first_node <= c.first_node and c.last_node <= call.last_node for c in inside):
            continue  # a stack of blocks (an encoder adding its positions before them), or a carrier's block
        x, y = graph.tensors[entry].detach().double(), graph.tensors[exit_].detach().double()
        errors[number] = _relative(_norm(y - x), _norm(x))
    if not errors:
        return Promise(BLOCKS_IDENTITY, None, 0.0, "", 0)
    number = max(errors, key=errors.__getitem__)
    kept = errors[number] <= tolerance
    why = ""
    if not kept:  # the mechanism, where the check can tell it
        entry, exit_ = found[number]
        why = (
            _scaled_skip(ix, sums_of[number], entry)
            or _unnormalised_post_norm(ix, entry, exit_)
            or _post_activation(ix, entry, exit_)
        )
    return Promise(BLOCKS_IDENTITY, kept, errors[number], graph.calls[number].name, len(errors), why)


def _skip_sources(ix: GraphIndex, skip: int) -> list[int]:
    """A sum's skip and what it is computed from through reshapes and a scale that does not depend on the input
    (a parameter, ``x * s + f(x)``, or a gate computed from one, Ergo's ``sqrt(1 + sigmoid(w)) x``): the block's
    input is one of them."""
    found = reshaped_from(ix.graph, skip)
    scaled = ix.scaled_input(found[-1])
    return found if scaled is None else found + reshaped_from(ix.graph, scaled[1])


def _post_activation(ix: GraphIndex, entry: int, exit_: int) -> str:
    """The mechanism where a block ends in an activation after its sum (ResNet v1's ``relu(x + f(x))``, MONAI's
    ``lrelu(x + f(x))``) and its input has entries the activation changes: ``act(x + 0) = x`` holds only on
    ``x >= 0`` for a ReLU, so no initialisation of the block makes it the identity there."""
    node = ix.graph.producer(reshaped_from(ix.graph, exit_)[-1])
    if node is None or node.name.rstrip("_") not in ACTIVATION_FUNCS:
        return ""
    negative = float((ix.graph.tensors[entry].detach() < 0).double().mean())
    if negative == 0:
        return ""
    return (
        f"{POST_ACTIVATION} ({node.name} after the sum; {negative:.0%} of the input entries are negative): "
        "no initialisation of the block makes it the identity"
    )


def _scaled_skip(ix: GraphIndex, sums: list[ResidualSum], entry: int) -> str:
    """The mechanism where a block's sum scales its skip (Beam's depth-scaled ``sqrt((i - 1) / i) x + f(x) /
    sqrt(i)``, a gate ``sqrt(1 + sigmoid(w)) e^{-softplus(w) / 2}`` that is 1 only as ``w -> -inf``, or the whole
    sum scaled, Inkling2's short convolutions ``(x + conv(x)) / sqrt(k + 1)``): the block is the identity only where
    the scale is 1, which no initialisation of its branch with zeros and ones changes. Only a sum whose skip is the
    block's input ``entry`` counts (not a sum inside its attention)."""
    for block in sums:
        if entry in reshaped_from(ix.graph, block.skip) and (factor := block.scale) != 1.0:
            return (
                f"{SCALED_SKIP} (the whole sum times a constant, {factor:.4g}): the identity needs a branch "
                f"{1 / factor - 1:.4g} times its input, which no initialisation with zeros and ones gives"
            )
        scaled = ix.scaled_input(reshaped_from(ix.graph, block.skip)[-1])
        if scaled is None or entry not in reshaped_from(ix.graph, scaled[1]):
            continue
        node = scaled[0]
        others = [v for v in node.inputs.values() if not ix.graph.values[v].tainted]
        scale = [ix.graph.tensors[v].detach().double().flatten() for v in others]
        scale = torch.cat(scale) if others else torch.tensor(number_arguments(node), dtype=torch.float64)
        if scale.numel() == 0:
            continue
        low, high = float(scale.min()), float(scale.max())
        if max(abs(low - 1), abs(high - 1)) <= 1e-6:
            continue
        what = "a constant" if not others else "a value computed from parameters"
        span = f"{low:.4g}" if high - low <= 1e-9 else f"{low:.4g} to {high:.4g}"
        return f"{SCALED_SKIP} ({what}, {span}): no initialisation of the branch makes the block the identity"
    return ""


def _unnormalised_post_norm(ix: GraphIndex, entry: int, exit_: int) -> str:
    """The mechanism where a block ends in a norm and its input is not at that norm's fixed point (per-token mean
    square 1): ``LN(x + 0) = x`` then holds for no initialisation of the block."""
    module = next((ix.norm_call_of[v] for v in reshaped_from(ix.graph, exit_) if v in ix.norm_call_of), None)
    node = ix.graph.producer(exit_)
    if module is None and (node is None or node.name not in NORM_FUNCS):
        return ""
    rms = "rms" in (node.name if module is None else type(ix.modules[module]).__name__).lower()
    x = ix.graph.tensors[entry].detach().double()
    x = x if rms else x - x.mean(-1, keepdim=True)  # a LayerNorm's fixed point has mean 0 and variance 1
    mean_square = x.pow(2).mean(-1)
    low, high = float(mean_square.min()), float(mean_square.max())
    if max(abs(low - 1), abs(high - 1)) <= 1e-3:
        return ""
    what = "mean square" if rms else "variance"
    return (
        f"{UNNORMALISED_POST_NORM} (per-token {what} {low:.3g} to {high:.3g}): "
        "no initialisation of the block makes it the identity"
    )

"""Pass 4: residual sums ``x + f(x)``, or ``x + f(x) + g(x) + ...`` for blocks whose branches run side by side
(a parallel attention and MLP, routed and shared experts). Each branch's last layer is ``branch_last``
(``attn_out`` where pass 3 found one), a norm after it ``branch_last_norm``, a parameter scaling it a
``layer_scale``, its other layers ``branch``: one block per sum, which gives Fixup its ``L`` and ``m``. Reads the
roles of pass 3.

:func:`residual_sums` finds the sums for other readers too (:mod:`detinit.diagnostics.promises`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import replace as replace_field

from torch import nn

from ...roles.layers import MATRIX_LAYER_TYPES
from ..trace import Graph, Node
from .index import ADD_FUNCS, DIV_FUNCS, MUL_FUNCS, NORM_FUNCS, SHAPE_FUNCS, SOFTMAX_FUNCS, GraphIndex, number_arguments
from .result import TracedParam
from .walks import SCATTER_ADD_FUNCS, selected_parameter, walk_back, walk_back_to

SCORE_PASSING_FUNCS = ADD_FUNCS | {"masked_fill", "masked_fill_", "where", "div", "__truediv__", "sub", "__sub__"}


@dataclass(frozen=True)
class ResidualSum:
    """One traced residual sum: its last add node, the value carried past the branches (``skip``) and each
    branch as ``(value, the values computed on that branch alone)``."""

    node: int
    skip: int
    branches: tuple[tuple[int, frozenset[int]], ...]
    module: str
    scale: float = 1.0  # the constant the sum is multiplied by before its module returns it (:func:`sum_scaled_by`)


def residual_sums(ix: GraphIndex) -> list[ResidualSum]:
    """Every residual sum of the recorded pass, in the order computed.

    An add of two same-shaped values that depend on the input, whose result feeds another such add and nothing
    else, is part of that add's sum; a sum's terms are the operands of its adds (looking through reshapes). The
    skip is the term every other term is computed from; with two terms and neither computed from the other (a
    projection shortcut) it is the side with fewer layers since they parted. A branch with no layer on it
    (GELU's ``x + 0.044715 x^3``) is not one.
    """
    if ix.residual_sums is not None:
        return ix.residual_sums
    graph, found = ix.graph, []
    results: set[int] = set()  # the values the sums found so far compute: the stream
    stream = {v for call in graph.calls for v in (*call.inputs, *call.outputs)}
    # values between blocks: a leaf layer's output is not one (Nystromformer's conv of the values)
    between = {v for c in graph.calls if not isinstance(ix.modules[c.name], MATRIX_LAYER_TYPES) for v in c.inputs}
    for node in graph.nodes:
        if not _is_stream_add(graph, node) or _absorbed(graph, node):
            continue
        split = _split(ix, _terms(graph, node))
        if split is None:
            continue
        skip, branches = split
        if _is_the_stream_not_the_skip(graph, skip, branches, results):  # x + proj(x0): the input re-added
            only_new_branch, _, _ = graph.exclusive_ancestors(skip, branches[0][0])
            skip, branches = branches[0][0], [(skip, frozenset(only_new_branch))]
        if len(branches) == 1 and not graph.is_ancestor(skip, of=branches[0][0]):
            if not any(_on_stream(ix, v, between) for v in _parting(graph, skip, branches[0][0])):
                continue  # a shortcut parts from the stream; two paths from one layer's output are no block
        branches = [(value, inside) for value, inside in branches if any(ix.is_layer_output(v) for v in inside)]
        if branches and _on_stream(ix, skip, stream) and not _scores_attention(graph, node.outputs[0]):
            found.append(ResidualSum(node.index, skip, tuple(branches), node.module, sum_scaled_by(graph, node.index)))
            stream.add(node.outputs[0])
            results.add(node.outputs[0])
    ix.residual_sums = found
    return found


def _is_the_stream_not_the_skip(
    graph: Graph, skip: int, branches: list[tuple[int, frozenset[int]]], results: set[int]
) -> bool:
    """Whether a two-term sum has its terms the wrong way round: the side taken for the skip is a value added
    to the stream by several sums (x-transformers' ``reinject_input`` adds ``proj(x0)``, computed once, at every
    layer, so it is an ancestor of every later layer's stream), and the side taken for the branch is an earlier
    residual sum's result (in ``results``), the stream itself. A skip is consumed by one sum."""
    if len(branches) != 1:
        return False
    if not any(v in results for v in reshaped_from(graph, branches[0][0])):
        return False
    adds = {i for v in reshaped_from(graph, skip) for i in graph.consumers.get(v, [])}
    return sum(_is_stream_add(graph, graph.nodes[i]) for i in adds) > 1


def _parting(graph: Graph, a: int, b: int) -> set[int]:
    """Where ``a``'s history parts from ``b``'s: the values both were computed from that feed a value only ``a``
    was computed from (a projection shortcut's: the block's input)."""
    only_a, only_b, _ = graph.exclusive_ancestors(a, b)
    own = only_a | only_b
    parting = set()
    for value in only_a:
        node = graph.producer(value)
        if node is not None:
            parting.update(v for v in graph.tainted_inputs(node) if v not in own)
    return parting


def _on_stream(ix: GraphIndex, value: int, stream: set[int]) -> bool:
    """Whether ``value`` carries the features from block to block: a module call's input or output, an earlier
    residual sum, or one of those reshaped, scaled (one computed factor), normalised or summed with another.

    A recurrence inside a mixer (a state ``S_t = decay * S_(t-1) + k v^T``) adds two computed values too, but its
    skip is none of these, so it is not a residual sum."""
    graph, todo, seen = ix.graph, [value], set()
    while todo:
        value = todo.pop()
        if value in stream:
            return True
        if value in seen:
            continue
        seen.add(value)
        node = graph.producer(value)
        if node is None:
            continue
        tainted = graph.tainted_inputs(node)
        if node.name in SHAPE_FUNCS or node.name in NORM_FUNCS or (node.name in MUL_FUNCS and len(tainted) == 1):
            todo.extend(tainted[:1])
        elif node.name in ADD_FUNCS and tainted and all(_on_stream(ix, v, stream) for v in tainted):
            return True
    return False


def _scores_attention(graph: Graph, value: int) -> bool:
    """Whether a sum's result goes on, through reshapes, masks and other adds, into a softmax: attention scores
    plus a position bias (CPM-Ant), not features."""
    todo, seen = [value], set()
    while todo:
        value = todo.pop()
        for index in graph.consumers.get(value, []):
            node = graph.nodes[index]
            if node.name in SOFTMAX_FUNCS:
                return True
            if (node.name in SHAPE_FUNCS or node.name in SCORE_PASSING_FUNCS) and node.outputs[0] not in seen:
                seen.add(node.outputs[0])
                todo.append(node.outputs[0])
    return False


def reshaped_from(graph: Graph, value: int, *, rescaled: bool = False) -> list[int]:
    """``value`` and the values it is a reshape (or dropout, or cast) of; with ``rescaled``, also a multiple by a
    constant of (``s / sqrt(k + 1)``)."""
    found = [value]
    while (node := graph.producer(found[-1])) is not None and len(node.inputs) == 1:
        if node.name not in SHAPE_FUNCS and not (rescaled and constant_factor(node) is not None):
            break
        found.append(next(iter(node.inputs.values())))
    return found


def constant_factor(node: Node) -> float | None:
    """The number ``c`` where ``node`` multiplies its one tensor by it (``x * c``; ``x / c``: ``1 / c``), else None."""
    numbers = number_arguments(node)
    if len(node.inputs) != 1 or len(numbers) != 1 or not numbers[0]:
        return None
    if node.name in MUL_FUNCS:
        return numbers[0]
    return 1 / numbers[0] if node.name in DIV_FUNCS and 0 in node.inputs else None  # x / c, not c / x


TRACED_BLOCK = "traced residual add #{count} in {module}"  # the label of a traced block (RoleSource.block)
_TRACED_BLOCK = re.compile(r"traced residual add #\d+ in (.+)")


def traced_block_module(label: str) -> str | None:
    """The module whose forward adds a traced block's sum (``""``: the model), from its label; ``None`` for a label
    that is not a traced block's.

    >>> traced_block_module("traced residual add #2 in layers.1"), traced_block_module("layers.1")
    ('layers.1', None)
    """
    found = _TRACED_BLOCK.fullmatch(label)
    if found is None:
        return None
    return "" if found.group(1) == "the model" else found.group(1)


def find_residuals(ix: GraphIndex) -> None:
    sums = residual_sums(ix)
    skip_of = {ix.graph.nodes[s.node].outputs[0]: s.skip for s in sums}
    for count, block_sum in enumerate(sums, 1):
        block = TRACED_BLOCK.format(count=count, module=block_sum.module or "the model")
        _mark_skip_scale(ix, block_sum.skip, block)
        ends = [_through_nested_sums(ix.graph, value, skip_of) for value, _ in block_sum.branches]
        ends = [term for value in ends for term in _scatter_terms(ix.graph, value)]
        lasts = {_mark_branch_end(ix, value, block) for value in ends}
        _note_scaled_sum(ix, block_sum)
        for _, inside in block_sum.branches:
            for value in sorted(inside):  # in the order computed
                producer = ix.graph.producer(value)
                use = ix.matrix_use(producer) if producer is not None else None
                if use is None:
                    continue
                module = ix.layer_module(use[0], producer)
                if module not in lasts and module not in ix.result.modules:
                    ix.result.set_role(module, "branch", f"inside the branch of {block}", block)


def sum_scaled_by(graph: Graph, add: int) -> float:
    """The constant the result of the add node ``add`` is multiplied by before anything else reads it
    (``(x + f(x)) / c``: ``1 / c``), through reshapes, where that scaled sum is what a module around the add
    returns; 1.0 otherwise (a scale into a function, ``tanh(x / c) * c``, is no scale of the sum)."""
    value, factor = graph.nodes[add].outputs[0], 1.0
    returned = {v for c in graph.calls if c.first_node <= add < c.last_node for v in c.outputs}
    scaled_and_returned = False
    while len(users := graph.consumers.get(value, [])) == 1:
        node = graph.nodes[users[0]]
        if node.name not in SHAPE_FUNCS or len(node.inputs) != 1:
            if (times := constant_factor(node)) is None:
                break
            factor *= times
        value = node.outputs[0]
        scaled_and_returned |= factor != 1.0 and value in returned
    return factor if scaled_and_returned else 1.0


def _note_scaled_sum(ix: GraphIndex, block_sum: ResidualSum) -> None:
    """Record a sum scaled by a constant ``s`` whose one branch is one square layer reading the skip itself
    (through reshapes, nothing between: ``(x + conv(x)) / sqrt(k + 1)``): ZerO can make that block the
    identity with the layer at ``(1/s - 1) I`` (:mod:`detinit.init.apply.scaled_sums`)."""
    factor = block_sum.scale
    if factor == 1.0 or len(block_sum.branches) != 1 or not block_sum.module:
        return
    met, layer = walk_back(ix, block_sum.branches[0][0])
    if met or layer is None:
        return
    node, weight = layer
    data = node.inputs.get(0)
    if data is None or block_sum.skip not in reshaped_from(ix.graph, data):
        return
    module = ix.layer_module(weight, node)
    if isinstance(ix.modules.get(module), MATRIX_LAYER_TYPES) and weight == f"{module}.weight":
        ix.result.scaled_sums.append((module, block_sum.module, factor))


def _mark_skip_scale(ix: GraphIndex, skip: int, block: str) -> None:
    """A parameter multiplying a sum's skip (x-transformers' ``scale_residual``: ``x * s + f(x)``) is a
    ``skip_scale``: 1 under every scheme, so that the block is the identity plus its branch."""
    scaled = ix.scaled_by_parameter(reshaped_from(ix.graph, skip)[-1])
    if scaled is not None and scaled[1] not in ix.result.params:
        ix.result.params[scaled[1]] = TracedParam("skip_scale", f"scales the skip of {block}")


def _through_nested_sums(graph: Graph, value: int, skip_of: dict[int, int]) -> int:
    """A branch that ends in a residual sum of its own (``h + conv(h)``, or ``(h + conv(h)) / c``: zero only where
    ``h`` is) ends where that sum's skip ``h`` was computed: its last layer carries the outer branch's zero."""
    while True:
        inner = next((skip_of[v] for v in reshaped_from(graph, value, rescaled=True) if v in skip_of), None)
        if inner is None:
            return value
        value = inner


def _scatter_terms(graph: Graph, value: int) -> list[int]:
    """``value``, or where it is (through reshapes) the last of a chain of scatter-adds into one buffer, the source
    of each add: a loop over experts held as separate modules, ``out.index_add_(0, rows_e, expert_e(x[rows_e]))``
    for each ``e``, sums ``sum_e scatter(expert_e(...))``, and every expert's last layer ends the branch."""
    node = graph.producer(value)
    while node is not None and node.name in SHAPE_FUNCS and node.inputs.get(0) is not None:  # x.view_as(y) too
        node = graph.producer(node.inputs[0])
    source = node.inputs.get(3) if node is not None and node.name in SCATTER_ADD_FUNCS else None
    if source is None or not graph.values[source].tainted:
        return [value]
    earlier = node.inputs.get(0)  # type: ignore[union-attr]
    before = _scatter_terms(graph, earlier) if earlier is not None and graph.values[earlier].tainted else []
    return before + [source]


def _mark_branch_end(ix: GraphIndex, branch: int, block: str) -> str | None:
    """Give the last layer of one branch its role (and a norm or scale after it theirs); the name of the module
    given the role (``None`` where the role went to the matrix alone)."""
    met, layer, stop = walk_back_to(ix, branch)
    met = [(kind, name) for kind, name in met if kind != "norm" or has_scale(ix, name)]  # LN(0) = 0 without one
    if layer is None:
        norms = [name for kind, name in met if kind == "norm"]
        if norms and _side_by_side_terms(ix.graph, stop):
            # a norm after a sum of layers (routed + shared experts, then a sandwich norm): it carries the zero; not a
            # post-norm after a residual sum (x + f(x)), which would zero the whole stream before it
            why = f"norm ending the branch of {block}, after a sum of layers"
            ix.result.set_role(norms[0], "branch_last_norm", why, block, over=True)
        elif not met and stop != branch and (terms := _side_by_side_terms(ix.graph, stop)):
            for term in terms:  # a gate times a sum of layers (routed + shared experts): each term ends the branch
                for value in _scatter_terms(ix.graph, term):
                    _mark_branch_end(ix, value, block)
        return None
    layer_node, weight = layer
    module = ix.layer_module(weight, layer_node)
    role = ix.result.modules.get(module)
    kind = "attn_out" if role is not None and role.role == "attn_out" else "branch_last"
    why = f"last layer of the branch of {block}"
    if _holds_several_matrices(ix, module):  # a stack of experts: the role is this matrix's, not the module's
        ix.result.params[weight] = replace_field(ix.result.params[weight], role=kind)
        return None  # its zero stays on the matrix: a norm or scale after it keeps its own rule
    ix.result.set_role(module, kind, why, block, over=True)
    for kind_met, name in met:
        if kind_met == "norm":
            why = f"norm after the last layer of the branch of {block}"
            ix.result.set_role(name, "branch_last_norm", why, block, over=True)
        elif kind_met == "scale":
            ix.result.params[name] = TracedParam(
                "layer_scale", f"scales the branch of {block}", offset=ix.offsets.get(name)
            )
            ix.result.set_role(ix.owner[name], "layer_scale", f"holds the layer scale of {block}", block, over=True)
    return module


def has_scale(ix: GraphIndex, norm: str) -> bool:
    """Whether a norm has parameters to carry a branch's zero (``LayerNorm(elementwise_affine=False)`` has none,
    so the zero stays on the layer before it)."""
    return next(ix.modules[norm].parameters(recurse=False), None) is not None


def _holds_several_matrices(ix: GraphIndex, module: str) -> bool:
    if isinstance(ix.modules[module], MATRIX_LAYER_TYPES + (nn.Embedding,)):
        return False
    prefix = f"{module}." if module else ""
    mine = [n for n, use in ix.result.params.items() if use.kind == "matrix" and ix.owner.get(n) == module]
    return len(mine) > 1 and all(n.startswith(prefix) for n in mine)


def _is_stream_add(graph: Graph, node: Node) -> bool:
    if node.name not in ADD_FUNCS or len(node.inputs) != 2:
        return False
    tainted = graph.tainted_inputs(node)
    return len(tainted) == 2 and graph.values[tainted[0]].shape == graph.values[tainted[1]].shape


def _absorbed(graph: Graph, node: Node) -> bool:
    """Whether the add's result is a term of a later add and nothing else (through reshapes), and not a residual
    sum of its own nested in that add's branch: ``x + (h + conv(h))`` with ``h`` computed from ``x`` (Inkling's
    short convolution after the attention) is two sums, ``(x + a(x)) + m(x)`` one."""
    value = node.outputs[0]
    while True:
        consumers = graph.consumers.get(value, [])
        if len(consumers) != 1:
            return False
        consumer = graph.nodes[consumers[0]]
        if _is_stream_add(graph, consumer):
            return not _nested_in_branch(graph, node, consumer, value)
        if consumer.name not in SHAPE_FUNCS or len(consumer.inputs) != 1:
            return False
        value = consumer.outputs[0]


def _side_by_side_terms(graph: Graph, value: int) -> list[int]:
    """The terms of the sum ``value`` is, if it is one of values computed side by side (neither from the other,
    as routed and shared experts); else ``[]``."""
    node = graph.producer(value)
    if node is None or node.name not in ADD_FUNCS or graph.param_inputs(node):
        return []
    terms = graph.tainted_inputs(node)
    if len(terms) != 2 or graph.is_ancestor(terms[0], of=terms[1]) or graph.is_ancestor(terms[1], of=terms[0]):
        return []
    return terms


def _nested_in_branch(graph: Graph, inner: Node, outer: Node, result: int) -> bool:
    a, b = graph.tainted_inputs(inner)
    if not (graph.is_ancestor(a, of=b) or graph.is_ancestor(b, of=a)):
        return False  # not x + f(x): side-by-side branches summed first
    others = [v for v in graph.tainted_inputs(outer) if v != result]
    return bool(others) and all(graph.is_ancestor(o, of=a) and graph.is_ancestor(o, of=b) for o in others)


def _terms(graph: Graph, node: Node) -> list[int]:
    """The operands of a sum, flattened through the adds absorbed into it."""
    terms = []
    for value in graph.tainted_inputs(node):
        producer = graph.producer(reshaped_from(graph, value)[-1])
        if producer is not None and _is_stream_add(graph, producer) and _absorbed(graph, producer):
            terms.extend(_terms(graph, producer))
        else:
            terms.append(value)
    return terms


def _split(ix: GraphIndex, terms: list[int]) -> tuple[int, list[tuple[int, frozenset[int]]]] | None:
    """The skip among a sum's terms and the branches, each with the values computed on it alone."""
    graph = ix.graph
    for skip in terms:
        others = [t for t in terms if t != skip]
        if others and all(graph.is_ancestor(skip, of=t) for t in others):
            return skip, [(t, frozenset(graph.exclusive_ancestors(skip, t)[1])) for t in others]
    if len(terms) != 2 or any(selected_parameter(ix, t) for t in terms):
        return None  # a bias selected per token (experts) is not a skip
    a, b = terms
    only_a, only_b, shared = graph.exclusive_ancestors(a, b)
    layers_a = sum(1 for v in only_a if ix.is_layer_output(v))
    layers_b = sum(1 for v in only_b if ix.is_layer_output(v))
    if layers_a == layers_b or not shared or min(layers_a, layers_b) > 1:
        return None  # a skip is the input or one layer of it (a projection shortcut); two are a branch (shared experts)
    return (b, [(a, frozenset(only_a))]) if layers_a > layers_b else (a, [(b, frozenset(only_b))])

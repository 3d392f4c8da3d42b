"""Walks through a recorded graph along functions without parameters: back from a value to the layer that
made it, and to the layers a value feeds or is fed by."""

from __future__ import annotations

from ..trace import Node
from .index import ADD_FUNCS, CAT_FUNCS, MUL_FUNCS, NORM_FUNCS, SHAPE_FUNCS, GraphIndex

INDEX_FUNCS = frozenset({"__getitem__", "index_select", "gather", "take_along_dim"})  # select by indices
# activations with a parameter of their own (PReLU's slope): f(0) = 0 whatever the parameter, so a branch's zero
# passes through them and the walks go on as through any activation
PARAMETRIC_ACTIVATION_FUNCS = frozenset({"prelu"})


def walk_back(ix: GraphIndex, value: int) -> tuple[list[tuple[str, str]], tuple[Node, str] | None]:
    """Walk back from ``value`` through functions without parameters.

    Indexing by tensors (``logits[arange(B), last]``) goes on through the indexed tensor. Returns the norms
    and scales met on the way (``("norm", module)`` /
    ``("scale", parameter)``) and the first layer ``(node, weight)``,
    or ``None`` where the walk met a function mixing several inputs.
    """
    met, layer, _ = walk_back_to(ix, value)
    return met, layer


def walk_back_to(ix: GraphIndex, value: int) -> tuple[list[tuple[str, str]], tuple[Node, str] | None, int]:
    """:func:`walk_back`, and the value where the walk ended (the output of the layer found, or of the function
    it could not walk through)."""
    met: list[tuple[str, str]] = []
    for _ in range(10_000):
        if value in ix.norm_call_of:
            met.append(("norm", ix.norm_call_of[value]))
            value = ix.norm_outputs[value]
            continue
        node = ix.graph.producer(value)
        if node is None:
            return met, None, value
        use = ix.matrix_use(node)
        if use is not None:
            return met, (node, use[0]), value
        params = ix.graph.param_inputs(node)
        tainted = ix.graph.tainted_inputs(node)
        if node.name in NORM_FUNCS and tainted:
            met.append(("norm", node.module))
            value = tainted[0]
            continue
        if node.name in BILINEAR_FUNCS and len(tainted) == 2 and not params:
            a, b = tainted  # x * gate(x), as squeeze-excitation: the branch goes on through x; an einsum of the
            # branch with a gate is the same product with its dims named (a branch written into several
            # residual streams, each with its gate: x-transformers' gated multi residual)
            full = [v for v in (a, b) if ix.graph.values[v].shape == ix.graph.values[node.outputs[0]].shape]
            if ix.graph.is_ancestor(a, of=b):
                value = a
            elif ix.graph.is_ancestor(b, of=a):
                value = b
            elif len(full) == 1:  # a gate broadcast over the features (a router's weight of each token)
                value = full[0]
            elif sum(_is_gate(ix, v) for v in (a, b)) == 1:  # sigmoid(r) * v (RWKV's channel mix): through v
                value = b if _is_gate(ix, a) else a
            else:
                return met, None, value
            continue
        if node.name in MUL_FUNCS and len(tainted) == 1:
            other = [v for v in node.inputs.values() if v != tainted[0]]
            source = ix.param_source(other[0]) if other else None
            offset = ix.offset_param_source(other[0]) if other and source is None else None
            if offset is not None:  # a scale held as c + w (x-transformers' LayerScale with unit_offset)
                source, ix.offsets[offset[0]] = (offset[0], False), offset[1]
            if source is not None:
                met.append(("scale", source[0]))
            value = tainted[0]
            continue
        if node.name in SUB_FUNCS and len(tainted) == 2 and not params and _removes_a_projection(ix, *tainted):
            value = tainted[0]  # x - (x . u) u: x with its part along u removed (an orthogonal update), 0 at x = 0
            continue
        if node.name in ADD_FUNCS and len(tainted) == 2 and not params:
            biases = [v for v in tainted if selected_parameter(ix, v)]
            if len(biases) == 1:  # a bias selected per token (experts' biases): the layer is on the other side
                value = next(v for v in tainted if v != biases[0])
                continue
        data = node.inputs.get(0)
        if node.name in INDEX_FUNCS and not params and data is not None and ix.graph.values[data].tainted:
            value = data  # a selection of rows (the last real token of each sequence): the indices mix in nothing
            continue
        if node.name in ADD_FUNCS and len(tainted) == 1 and params:
            value = tainted[0]  # a bias parameter added after the layer (JetMoE's experts): the layer is before it
            continue
        if node.name in SCATTER_ADD_FUNCS and node.inputs.get(3) in tainted:
            value = node.inputs[3]  # experts' outputs added into their tokens' rows (routed or not): linear in them
            continue
        if node.name in CAT_FUNCS and not params and len(tainted) > 1:
            ends = [walk_back(ix, v) for v in tainted]  # parts made by one layer (ProphetNet's main and n-gram streams)
            if all(end[1] is not None and end[1][1] == ends[0][1][1] for end in ends):  # type: ignore[index]
                return met + ends[0][0], ends[0][1], value
            return met, None, value
        if node.name in SHAPE_FUNCS and not params and data is not None and data in tainted:
            value = data  # x.reshape_as(y): y gives only the shape
            continue
        if (params and node.name not in PARAMETRIC_ACTIVATION_FUNCS) or len(tainted) != 1:
            return met, None, value
        value = tainted[0]
    return met, None, value


SCATTER_ADD_FUNCS = frozenset({"index_add", "index_add_", "scatter_add", "scatter_add_"})
BILINEAR_FUNCS = MUL_FUNCS | {"einsum"}  # linear in each of two operands: zero where either is
SUB_FUNCS = frozenset({"sub", "__sub__"})


def _removes_a_projection(ix: GraphIndex, x: int, part: int) -> bool:
    """Whether ``x - part`` takes from ``x`` a product or a mean computed from ``x`` (``(x . u) u``, the mean over
    tokens: zero where ``x`` is)."""
    node = ix.graph.producer(part)
    return node is not None and node.name in MUL_FUNCS | {"mean"} and ix.graph.is_ancestor(x, of=part)


def selected_parameter(ix: GraphIndex, value: int) -> bool:
    """Whether ``value`` is rows of a parameter selected by index (``bias[expert_of_each_token]``)."""
    while (node := ix.graph.producer(value)) is not None:
        if node.name == "__getitem__" and 0 in node.inputs:
            return ix.param_source(node.inputs[0]) is not None
        if node.name not in SHAPE_FUNCS or len(node.inputs) != 1:
            return False
        value = next(iter(node.inputs.values()))
    return False


def _stops_at(ix: GraphIndex, node: Node, found: dict[int, tuple[Node, str]]) -> bool:
    """Where the walks of :func:`layers_feeding` and :func:`layers_fed` stop: at a layer (recorded in ``found``
    with how it uses its weight), at another function with parameters, at a norm."""
    use = ix.matrix_use(node)
    if use is not None:
        found[node.index] = (node, use[0])
        return True
    params = ix.graph.param_inputs(node)
    return (bool(params) and node.name not in PARAMETRIC_ACTIVATION_FUNCS) or node.name in NORM_FUNCS


def layers_feeding(ix: GraphIndex, value: int, *, through_norm: bool = False) -> list[tuple[Node, str]]:
    """The layers a value is computed from through functions without parameters (rotary embeddings, head splits).
    A walk stops at a norm; ``through_norm``: at a norm applied straight to a layer's output (through reshapes
    alone: a query/key norm, ``q_norm(q_proj(x).view(...))``), that layer is found too."""
    found: dict[int, tuple[Node, str]] = {}
    stack, seen = [value], {value}
    while stack:
        v = stack.pop()
        if v in ix.norm_call_of:
            layer = _layer_right_before(ix, ix.norm_outputs[v]) if through_norm and v in ix.norm_outputs else None
            if layer is not None:
                found[layer[0].index] = layer
            continue
        node = ix.graph.producer(v)
        if node is None:
            continue
        if _stops_at(ix, node, found):
            continue
        for u in ix.graph.tainted_inputs(node):
            if u not in seen:
                seen.add(u)
                stack.append(u)
    return list(found.values())


GATE_FUNCS = frozenset({"sigmoid", "sigmoid_"})


def _is_gate(ix: GraphIndex, value: int) -> bool:
    """Whether ``value`` is a sigmoid's output, through reshapes and constant scales and shifts (a hyper-connection's
    ``2 sigmoid(z) + eps``): a gate in a fixed positive range, never the branch's zero."""
    node = ix.graph.producer(value)
    while node is not None and len(ix.graph.tainted_inputs(node)) == 1 and not ix.graph.param_inputs(node):
        constant = node.name in MUL_FUNCS | ADD_FUNCS and len(node.inputs) == 1  # the constant is a number
        if node.name not in SHAPE_FUNCS and not constant:
            break
        node = ix.graph.producer(ix.graph.tainted_inputs(node)[0])
    return node is not None and node.name in GATE_FUNCS


def _layer_right_before(ix: GraphIndex, value: int) -> tuple[Node, str] | None:
    """The layer whose output ``value`` is, through reshapes alone; ``None`` where something else made it."""
    while True:
        node = ix.graph.producer(value)
        if node is None:
            return None
        use = ix.matrix_use(node)
        if use is not None:
            return node, use[0]
        inputs = ix.graph.tainted_inputs(node)
        if node.name not in SHAPE_FUNCS or len(inputs) != 1:
            return None
        value = inputs[0]


def layers_fed(ix: GraphIndex, value: int) -> list[tuple[Node, str]]:
    """The first layers after ``value`` (stopping at residual adds and norms)."""
    found: dict[int, tuple[Node, str]] = {}
    stack, seen = [value], {value}
    while stack:
        v = stack.pop()
        for index in ix.graph.consumers.get(v, []):
            node = ix.graph.nodes[index]
            if _stops_at(ix, node, found):
                continue
            if node.name in ADD_FUNCS and len(ix.graph.tainted_inputs(node)) > 1:
                continue
            for out in node.outputs:
                if out not in seen:
                    seen.add(out)
                    stack.append(out)
    return list(found.values())

"""Walks through a recorded graph along functions without parameters: back from a value to the layer that
made it, and to the layers a value feeds or is fed by."""

from __future__ import annotations

from ..trace import Node
from .index import ADD_FUNCS, MUL_FUNCS, NORM_FUNCS, GraphIndex


def walk_back(ix: GraphIndex, value: int) -> tuple[list[tuple[str, str]], tuple[Node, str] | None]:
    """Walk back from ``value`` through functions without parameters.

    Returns the norms and scales met on the way (``("norm", module)`` /
    ``("scale", parameter)``) and the first layer ``(node, weight)``,
    or ``None`` where the walk met a function mixing several inputs.
    """
    met: list[tuple[str, str]] = []
    for _ in range(10_000):
        if value in ix.norm_call_of:
            met.append(("norm", ix.norm_call_of[value]))
            value = ix.norm_outputs[value]
            continue
        node = ix.graph.producer(value)
        if node is None:
            return met, None
        use = ix.matrix_use(node)
        if use is not None:
            return met, (node, use[0])
        params = ix.graph.param_inputs(node)
        tainted = ix.graph.tainted_inputs(node)
        if node.name in NORM_FUNCS and tainted:
            met.append(("norm", node.module))
            value = tainted[0]
            continue
        if node.name in MUL_FUNCS and len(tainted) == 2 and not params:
            a, b = tainted  # x * gate(x), as squeeze-excitation: the branch goes on through x
            if ix.graph.is_ancestor(a, of=b):
                value = a
            elif ix.graph.is_ancestor(b, of=a):
                value = b
            else:
                return met, None
            continue
        if node.name in MUL_FUNCS and len(tainted) == 1:
            other = [v for v in node.inputs.values() if v != tainted[0]]
            source = ix.param_source(other[0]) if other else None
            if source is not None:
                met.append(("scale", source[0]))
            value = tainted[0]
            continue
        if params or len(tainted) != 1:
            return met, None
        value = tainted[0]
    return met, None


def _stops_at(ix: GraphIndex, node: Node, found: dict[int, tuple[Node, str]]) -> bool:
    """Where the walks of :func:`layers_feeding` and :func:`layers_fed` stop: at a layer (recorded in ``found``
    with how it uses its weight), at another function with parameters, at a norm."""
    use = ix.matrix_use(node)
    if use is not None:
        found[node.index] = (node, use[0])
        return True
    return bool(ix.graph.param_inputs(node)) or node.name in NORM_FUNCS


def layers_feeding(ix: GraphIndex, value: int) -> list[tuple[Node, str]]:
    """The layers a value is computed from through functions without parameters (rotary embeddings, head splits)."""
    found: dict[int, tuple[Node, str]] = {}
    stack, seen = [value], {value}
    while stack:
        v = stack.pop()
        if v in ix.norm_call_of:
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

"""Pass 4: residual adds ``x + f(x)``. The branch's last layer is ``branch_last`` (``attn_out`` where pass 3
found one), a norm after it ``branch_last_norm``, a parameter scaling it a ``layer_scale``, its other layers
``branch``: one block per add, which gives Fixup its ``L`` and ``m``. Reads the roles of pass 3."""

from __future__ import annotations

from .index import ADD_FUNCS, GraphIndex
from .result import TracedParam
from .walks import walk_back


def find_residuals(ix: GraphIndex) -> None:
    graph = ix.graph
    count = 0
    for node in graph.nodes:
        if node.name not in ADD_FUNCS:
            continue
        tainted = graph.tainted_inputs(node)
        if len(tainted) != 2 or len(node.inputs) != 2:
            continue
        a, b = tainted
        if graph.values[a].shape != graph.values[b].shape:
            continue
        sides = _branch_side(ix, a, b)
        if sides is None:
            continue
        branch, inside = sides
        if not any(ix.is_layer_output(v) for v in inside):
            continue  # x + f(x) without a layer in f: an activation (GELU's x + 0.044715 x^3), not a residual
        count += 1
        block = f"traced residual add #{count} in {node.module or 'the model'}"
        met, layer = walk_back(ix, branch)
        last_module = None
        if layer is not None:
            layer_node, weight = layer
            last_module = ix.layer_module(weight, layer_node)
            role = ix.result.modules.get(last_module)
            kind = "attn_out" if role is not None and role.role == "attn_out" else "branch_last"
            ix.result.set_role(last_module, kind, f"last layer of the branch of {block}", block, over=True)
        for kind, name in met:
            if kind == "norm" and layer is not None:
                why = f"norm after the last layer of the branch of {block}"
                ix.result.set_role(name, "branch_last_norm", why, block, over=True)
            elif kind == "scale" and layer is not None:
                ix.result.params[name] = TracedParam("layer_scale", f"scales the branch of {block}")
                ix.result.set_role(ix.owner[name], "layer_scale", f"holds the layer scale of {block}", block, over=True)
        for value in sorted(inside):  # in the order computed
            producer = graph.producer(value)
            use = ix.matrix_use(producer) if producer is not None else None
            if use is None:
                continue
            module = ix.layer_module(use[0], producer)
            if module != last_module and module not in ix.result.modules:
                ix.result.set_role(module, "branch", f"inside the branch of {block}", block)


def _branch_side(ix: GraphIndex, a: int, b: int) -> tuple[int, set[int]] | None:
    """Which operand of ``a + b`` is the residual branch, and the values computed on the branch alone:
    the operand computed from the other, else the one with more layers since they parted."""
    only_a, only_b, shared = ix.graph.exclusive_ancestors(a, b)
    if a not in only_a:  # a is an ancestor of b
        return b, only_b
    if b not in only_b:
        return a, only_a
    layers_a = sum(1 for v in only_a if ix.is_layer_output(v))
    layers_b = sum(1 for v in only_b if ix.is_layer_output(v))
    if layers_a == layers_b or not shared:
        return None
    return (a, only_a) if layers_a > layers_b else (b, only_b)

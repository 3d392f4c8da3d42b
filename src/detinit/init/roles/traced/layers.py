"""Pass 2: every parameter the forward pass read, and how: layer weights (Hugging Face's ``Conv1D`` stored
``(in, out)`` too) and their biases, embedding tables (``position`` where the indices do not depend on the
input), position tables added to the input stream and tokens concatenated to it."""

from __future__ import annotations

from torch import nn

from ..layers import MATRIX_LAYER_TYPES, NORM_TYPES
from .index import ADD_FUNCS, SHAPE_FUNCS, GraphIndex
from .result import TracedParam


def find_layers(ix: GraphIndex) -> None:
    """Every parameter the pass read, and how: layer weights (Conv1D-style too), tables, positions, tokens."""
    for node in ix.graph.nodes:
        for param in ix.graph.param_inputs(node).values():
            ix.result.used.add(ix.canonical.get(param, param))
        use = ix.matrix_use(node)
        if use is not None:
            weight, stored, bias = use
            w = ix.parameter(weight)
            out_f, in_f = (w.shape[-2], w.shape[-1]) if stored == "out_in" else (w.shape[-1], w.shape[-2])
            stackable = w.dim() == 3 and not node.name.startswith("conv")  # a conv1d's weight is 3-D too
            if (w.dim() == 2 or stackable) and weight not in ix.result.params:
                how = f"{node.name}, weight stored ({'out, in' if stored == 'out_in' else 'in, out'})"
                stacked = w.shape[0] if w.dim() == 3 else 0
                if stacked:
                    how += f", a stack of {stacked}"
                ix.result.params[weight] = TracedParam("matrix", how, in_f, out_f, stored, stacked)
                if bias is not None:
                    ix.result.params.setdefault(bias, TracedParam("bias", f"bias of {node.name}"))
        if node.name == "embedding" and 1 in node.inputs:
            table = ix.param_source(node.inputs[1])
            if table is None:
                continue
            ix.result.tables.add(table[0])
            ix.result.params.setdefault(table[0], TracedParam("table", "F.embedding table"))
            indices = node.inputs.get(0)
            if indices is not None and not ix.graph.values[indices].tainted:
                module = ix.layer_module(table[0], node)
                ix.result.set_role(module, "position", "embedding indices do not depend on the input (positions)")
    for param in ix.result.used:
        if param in ix.result.params or _in_known_layer(ix, param):
            continue
        kind = _stream_use(ix, param)
        if kind is not None:
            ix.result.params[param] = kind


def _in_known_layer(ix: GraphIndex, param: str) -> bool:
    module = ix.modules[ix.owner[param]]
    return isinstance(module, MATRIX_LAYER_TYPES + NORM_TYPES + (nn.Embedding, nn.MultiheadAttention))


def _stream_use(ix: GraphIndex, param: str) -> TracedParam | None:
    """A parameter added to the input stream (a position table) or concatenated to it (a token)."""
    for node, value in ix.first_uses(param):
        if node.name == "__getitem__" and node.inputs.get(0) == value and _adds_to_a_layer(ix, node.outputs[0]):
            return TracedParam("bias", "a row per token, selected by index, added to a layer's output (experts)")
        if node.name in ADD_FUNCS and ix.graph.tainted_inputs(node):
            return TracedParam("position", f"added to the input stream ({node.name} in {node.module or 'model'})")
        if node.name in ("cat", "concat", "concatenate") and ix.graph.tainted_inputs(node):
            return TracedParam("token", f"concatenated to the input stream (cat in {node.module or 'model'})")
    return None


def _adds_to_a_layer(ix: GraphIndex, value: int) -> bool:
    """Whether ``value`` (through reshapes) is added to a layer's output."""
    while True:
        consumers = [ix.graph.nodes[i] for i in ix.graph.consumers.get(value, [])]
        if len(consumers) != 1:
            return False
        node = consumers[0]
        if node.name in ADD_FUNCS:
            return any(ix.is_layer_output(v) for v in node.inputs.values() if v != value)
        if node.name not in SHAPE_FUNCS or len(node.inputs) != 1:
            return False
        value = node.outputs[0]

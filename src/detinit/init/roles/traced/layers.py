"""Pass 2: every parameter the forward pass read, and how: layer weights (Hugging Face's ``Conv1D`` stored
``(in, out)`` too) and their biases, embedding tables (``position`` where no lookup's indices depend on the
input), position tables added to the input stream and tokens concatenated to it."""

from __future__ import annotations

from torch import nn

from ..layers import MATRIX_LAYER_TYPES, NORM_TYPES
from ..trace import Node
from .index import ADD_FUNCS, CAT_FUNCS, SHAPE_FUNCS, SOFTMAX_FUNCS, GraphIndex
from .result import TracedParam


def find_layers(ix: GraphIndex) -> None:
    """Every parameter the pass read, and how: layer weights (Conv1D-style too), tables, positions, tokens."""
    fixed_indices: dict[str, bool] = {}  # table module -> no lookup of it depended on the input
    for node in ix.graph.nodes:
        for param in ix.graph.param_inputs(node).values():
            ix.result.used.add(ix.canonical.get(param, param))
        use = ix.matrix_use(node)
        if use is not None:
            weight, stored, bias = use
            w = ix.parameter(weight)
            out_f, in_f = (w.shape[-2], w.shape[-1]) if stored == "out_in" else (w.shape[-1], w.shape[-2])
            if weight in ix.folded and weight not in ix.result.params:
                in_f, out_f = ix.folded[weight]
                how = f"einsum, weight {tuple(w.shape)} a {in_f} -> {out_f} matrix stored ({stored.replace('_', ', ')})"
                ix.result.params[weight] = TracedParam("matrix", how, in_f, out_f, stored, folded=True)
                continue
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
            if indices is not None:
                module = ix.layer_module(table[0], node)
                fixed = not ix.graph.values[indices].tainted
                fixed_indices[module] = fixed_indices.get(module, True) and fixed
    for module, fixed in fixed_indices.items():  # a token table also looked up for padding (LED) is no position
        if fixed:
            ix.result.set_role(module, "position", "embedding indices do not depend on the input (positions)")
    for param in ix.result.used:
        if param in ix.result.params or _in_known_layer(ix, param):
            continue
        kind = _stream_use(ix, param)
        if kind is not None:
            ix.result.params[param] = kind


def _in_known_layer(ix: GraphIndex, param: str) -> bool:
    """Whether a module of a known layer type holds ``param`` under any of its names (MobileBERT's output bias
    is its head's ``bias`` and its decoder Linear's ``bias`` too)."""
    known = MATRIX_LAYER_TYPES + NORM_TYPES + (nn.Embedding, nn.MultiheadAttention)
    names = ix.names_of.get(id(ix.parameter(param)), [param])
    return any(isinstance(ix.modules[ix.owner[name]], known) for name in names if name in ix.owner)


def _stream_use(ix: GraphIndex, param: str) -> TracedParam | None:
    """A parameter added to the input stream (a position table) or concatenated to it (a token)."""
    for node, value in ix.first_uses(param):
        if node.name == "__getitem__" and node.inputs.get(0) == value and _adds_to_a_layer(ix, node.outputs[0]):
            return TracedParam("bias", "a row per token, selected by index, added to a layer's output (experts)")
        if node.name == "__getitem__" and node.inputs.get(0) == value and _biases_attention(ix, node):
            why = "a relative-position bias: rows selected by fixed indices, added to the attention scores"
            return TracedParam("position", why)
        if node.name in SCORE_TERM_FUNCS and ix.matrix_use(node) is None and _feeds_softmax(ix, node.outputs[0], 8):
            why = f"a table multiplied into the attention scores ({node.name} in {node.module}: a segment bias)"
            return TracedParam("position", why)
        if node.name in ADD_FUNCS and ix.graph.tainted_inputs(node):
            return TracedParam("position", f"added to the input stream ({node.name} in {node.module or 'model'})")
        if node.name in CAT_FUNCS and ix.graph.tainted_inputs(node):
            return TracedParam("token", f"concatenated to the input stream (cat in {node.module or 'model'})")
    return _prepared_stream_use(ix, param)


QUERY_FUNCS = frozenset({"scaled_dot_product_attention", "multi_head_attention_forward"})
SCORE_TERM_FUNCS = frozenset({"einsum", "matmul", "__matmul__", "bmm"})
TABLE_READ_FUNCS = frozenset({"embedding_bag"})  # rows of a table (input 1) summed with weights


def _is_data_input(ix: GraphIndex, node: Node, value: int) -> bool:
    """Whether ``value`` is what a layer's matrix multiplies (its input), not the matrix or the bias."""
    return node.inputs.get(0) == value or node.inputs.get("input") == value


def _prepared_stream_use(ix: GraphIndex, param: str, depth: int = 8) -> TracedParam | None:
    """A position table or token prepared before it meets the stream, by functions of it and other parameters
    alone (a position table interpolated to the image size, ViTMAE's cls token plus its position), followed
    through those functions to the first that takes the stream too; or a learned query, the input of a layer
    or the query of an attention (SigLIP's pooling probe, Perceiver's latents), or a vector written into the
    stream in place of some positions (wav2vec 2.0's mask embedding): a token."""
    graph = ix.graph
    frontier = list(ix.values_of.get(param, []))
    seen = set(frontier)
    for _ in range(depth):
        following = []
        for value in frontier:
            for index in graph.consumers.get(value, []):
                node = graph.nodes[index]
                use = ix.matrix_use(node)
                query = node.name in QUERY_FUNCS and value in (node.inputs.get(0), node.inputs.get("query"))
                if query or (use is not None and not graph.tainted_inputs(node) and _is_data_input(ix, node, value)):
                    why = f"a learned query ({node.name} in {node.module or 'model'}: attention pooling, latents)"
                    return TracedParam("token", why)
                if use is not None:
                    return None
                if node.name in TABLE_READ_FUNCS and node.inputs.get(1) == value:
                    following.extend(v for v in node.outputs if v not in seen)  # a table resampled by weights
                    continue  # to each image's grid (Kimi's bicubic position grid): its rows go on
                if node.name == "__setitem__" and node.inputs.get(2) == value and graph.tainted_inputs(node):
                    where = node.module or "model"
                    why = f"written into the input stream at chosen positions ({where}: a mask embedding)"
                    return TracedParam("token", why)
                if graph.tainted_inputs(node):
                    where = f"{node.name} in {node.module or 'model'}, after {param} was prepared"
                    if node.name in ADD_FUNCS:
                        return TracedParam("position", f"added to the input stream ({where})")
                    if node.name in CAT_FUNCS:
                        return TracedParam("token", f"concatenated to the input stream ({where})")
                    return None
                following.extend(v for v in node.outputs if v not in seen)
        seen.update(following)
        frontier = following
    return None


def _sole_use(ix: GraphIndex, value: int) -> tuple[Node, int] | None:
    """The one function ``value`` feeds, through reshapes, and the value it gives it; ``None`` where it feeds
    several, or none."""
    while True:
        consumers = [ix.graph.nodes[i] for i in ix.graph.consumers.get(value, [])]
        if len(consumers) != 1:
            return None
        node = consumers[0]
        if node.name not in SHAPE_FUNCS or len(node.inputs) != 1:
            return node, value
        value = node.outputs[0]


def _adds_to_a_layer(ix: GraphIndex, value: int) -> bool:
    """Whether ``value`` (through reshapes) is added to a layer's output."""
    use = _sole_use(ix, value)
    if use is None or use[0].name not in ADD_FUNCS:
        return False
    node, value = use
    return any(ix.is_layer_output(v) for v in node.inputs.values() if v != value)


ATTENTION_FUNCS = frozenset({"scaled_dot_product_attention"})


def _biases_attention(ix: GraphIndex, node: Node) -> bool:
    """Whether an indexing ``node`` whose indices do not depend on the input feeds, through reshapes, the
    attention scores: SDPA's mask, or an add to scores that depend on the input (Swin's, BEiT's tables)."""
    use = None if ix.graph.tainted_inputs(node) else _sole_use(ix, node.outputs[0])
    if use is None:
        return False
    consumer, value = use
    if consumer.name in ATTENTION_FUNCS:
        return value not in (consumer.inputs.get(k) for k in (0, 1, 2, "query", "key", "value"))
    if consumer.name in ADD_FUNCS:
        return bool(ix.graph.tainted_inputs(consumer)) and _feeds_softmax(ix, consumer.outputs[0])
    return False


def _feeds_softmax(ix: GraphIndex, value: int, depth: int = 4) -> bool:
    """Whether ``value`` reaches a softmax within a few functions (scores + bias + mask, then softmax)."""
    frontier = [value]
    for _ in range(depth):
        nxt = []
        for v in frontier:
            for i in ix.graph.consumers.get(v, []):
                consumer = ix.graph.nodes[i]
                if consumer.name in SOFTMAX_FUNCS:
                    return True
                nxt.extend(consumer.outputs)
        frontier = nxt
    return False

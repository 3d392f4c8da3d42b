"""Pass 6: the output layers, walking back from the model's outputs (each named ``logits``, or the first),
through a sum of heads (DeiT's cls and distillation heads, averaged); the norm before one whose weight is
tied to the token embedding (pass 2's tables) becomes ``classifier_norm``."""

from __future__ import annotations

from .index import ADD_FUNCS, MUL_FUNCS, SHAPE_FUNCS, GraphIndex
from .walks import walk_back

DIV_FUNCS = frozenset({"div", "__truediv__", "true_divide"})


def find_classifier(ix: GraphIndex) -> None:
    graph = ix.graph
    if not graph.outputs:
        return
    keys = graph.output_keys
    logits = [i for i, key in enumerate(keys) if "logits" in key.split(".")[0]] or [0]
    for index in logits:
        heads = _heads(ix, graph.outputs[index])
        for value in heads:
            found = _mark_classifier(ix, value, keys[index])
            if not found and len(heads) > 1:
                ix.result.notes.append(
                    f"the output {keys[index] or 'tensor'!r} is a sum with a term no layer ends (a skip of the "
                    "input or of the stream, x + f(x)): no output layer carries it, so the output is not 0 at "
                    "init under any scheme that keeps the skip"
                )


def _heads(ix: GraphIndex, value: int, depth: int = 4) -> list[int]:
    """The values an output is the sum of (a cls head and a distillation head averaged, DeiT), else itself."""
    node = ix.graph.producer(value)
    for _ in range(depth):
        if node is None:
            break
        tainted = ix.graph.tainted_inputs(node)
        if node.name in ADD_FUNCS and len(tainted) == 2 and not ix.graph.param_inputs(node):
            return [v for side in tainted for v in _heads(ix, side, depth - 1)]
        if node.name not in SHAPE_FUNCS | MUL_FUNCS | DIV_FUNCS or len(tainted) != 1 or ix.graph.param_inputs(node):
            break
        node = ix.graph.producer(tainted[0])
    return [value]


def _mark_classifier(ix: GraphIndex, value: int, key: str) -> bool:
    """Give the layer that makes ``value`` (through functions without parameters) the role ``classifier``;
    whether one was found (a norm on the way is a layer's too: found, no role given)."""
    met, layer = walk_back(ix, value)
    if layer is None:
        return False
    if met:
        return True
    node, weight = layer
    module = ix.layer_module(weight, node)
    evidence = f"last layer before the output {key or 'tensor'!r}"
    ix.result.set_role(module, "classifier", evidence, over=True)
    if weight in ix.result.tables:
        before, _ = walk_back(ix, ix.stream_input(node))
        norms = [name for kind, name in before if kind == "norm"]
        if norms:
            why = f"norm before the classifier {module}, whose weight is tied to the token embedding"
            ix.result.set_role(norms[0], "classifier_norm", why, over=True)
    return True

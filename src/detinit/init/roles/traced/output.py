"""Pass 6: the output layers, walking back from the model's outputs (each named ``logits``, or the first; from a loss,
the prediction it is computed from), through a sum of heads (DeiT's cls and distillation heads, averaged); the norm
before one whose weight is tied to the token embedding (pass 2's tables) becomes ``classifier_norm``."""

from __future__ import annotations

from .index import ADD_FUNCS, DIV_FUNCS, MUL_FUNCS, SHAPE_FUNCS, GraphIndex
from .residuals import has_scale
from .walks import layers_feeding, walk_back


def find_classifier(ix: GraphIndex) -> None:
    graph = ix.graph
    if not graph.outputs:
        return
    keys = graph.output_keys
    logits = [i for i, key in enumerate(keys) if "logits" in key.split(".")[0]] or [0]
    for index in logits:
        if _mark_loss_layer(ix, graph.outputs[index], keys[index]):
            continue
        heads = _heads(ix, _prediction_of_loss(ix, graph.outputs[index]))
        for value in heads:
            found = _mark_classifier(ix, value, keys[index])
            if not found and len(heads) > 1:
                ix.result.notes.append(
                    f"the output {keys[index] or 'tensor'!r} is a sum with a term no layer ends (a skip of the "
                    "input or of the stream, x + f(x)): no output layer carries it, so the output is not 0 at "
                    "init under any scheme that keeps the skip"
                )


LOSS_FUNCS = frozenset(
    {"cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
     "binary_cross_entropy", "binary_cross_entropy_with_logits"}
)  # fmt: skip
REDUCE_FUNCS = frozenset({"mean", "sum"})


def _prediction_of_loss(ix: GraphIndex, value: int, depth: int = 6) -> int:
    """Where the output is a loss computed from the model's prediction (x-transformers' wrappers return
    ``cross_entropy(logits, targets)`` from ``forward``), that prediction: its last layer is the output layer.
    Else ``value``."""
    node = ix.graph.producer(value)
    for _ in range(depth):
        if node is None or ix.graph.param_inputs(node):
            return value
        if node.name in LOSS_FUNCS:
            prediction = node.inputs.get(0, node.inputs.get("input"))
            return prediction if prediction is not None and ix.graph.values[prediction].tainted else value
        tainted = ix.graph.tainted_inputs(node)
        if node.name in DIV_FUNCS | {"where"}:  # a masked mean: sum(where(mask, loss, 0)) / mask.sum()
            first = 1 if node.name == "where" else 0
            tainted = [v for k, v in node.inputs.items() if k == first and ix.graph.values[v].tainted]
        if node.name not in SHAPE_FUNCS | MUL_FUNCS | DIV_FUNCS | REDUCE_FUNCS | {"where"} or len(tainted) != 1:
            return value
        node = ix.graph.producer(tainted[0])
    return value


def _mark_loss_layer(ix: GraphIndex, value: int, key: str) -> bool:
    """An output that is one number (a loss the model computes itself, by ``F.cross_entropy`` or by hand, as
    x-transformers' autoregressive wrapper does with ``logsumexp``) computed through functions without parameters
    from exactly one layer: that layer makes the prediction, it is the output layer. Whether one was marked."""
    if ix.graph.values[value].shape != () or _prediction_of_loss(ix, value) != value:
        return False
    found = layers_feeding(ix, value)
    if len(found) != 1:
        return False
    node, weight = found[0]
    module = ix.layer_module(weight, node)
    why = f"the one layer the output {key or 'tensor'!r}, a single number (a loss), is computed from"
    ix.result.set_role(module, "classifier", why, over=True)
    return True


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
    """Give the layer that makes ``value`` (through functions without parameters) the role ``classifier``, or
    where a norm with a scale comes after it, that norm ``classifier_norm`` (it carries the output's zero: a
    zero layer before it would only make the norm output its shift, and zero both and neither learns); a norm
    without parameters or an activation with one (``PReLU(IN(conv x))``, MONAI's U-Net output) passes the
    layer's zero on. Whether a layer was found."""
    met, layer = walk_back(ix, value)
    if layer is None:
        return False
    node, weight = layer
    module = ix.layer_module(weight, node)
    scaled = [name for kind, name in met if kind == "norm" and has_scale(ix, name)]
    if scaled:
        why = f"norm after the output layer {module}, before the output {key or 'tensor'!r}: it carries the zero"
        ix.result.set_role(scaled[0], "classifier_norm", why, over=True)
        return True
    if any(kind == "scale" for kind, _ in met):
        return True  # a parameter scaling the output after the layer: left as it was found
    evidence = f"last layer before the output {key or 'tensor'!r}"
    ix.result.set_role(module, "classifier", evidence, over=True)
    if weight in ix.result.tables:
        before, _ = walk_back(ix, ix.stream_input(node))
        norms = [name for kind, name in before if kind == "norm"]
        if norms:
            why = f"norm before the classifier {module}, whose weight is tied to the token embedding"
            ix.result.set_role(norms[0], "classifier_norm", why, over=True)
    return True

"""Pass 5: the output layer, walking back from the model's output (``logits`` where it has them); the norm
before it where its weight is tied to the token embedding (pass 2's tables) becomes ``classifier_norm``."""

from __future__ import annotations

from .index import GraphIndex
from .walks import walk_back


def find_classifier(ix: GraphIndex) -> None:
    graph = ix.graph
    if not graph.outputs:
        return
    keys = graph.output_keys
    index = keys.index("logits") if "logits" in keys else 0
    met, layer = walk_back(ix, graph.outputs[index])
    if layer is None or met:
        return
    node, weight = layer
    module = ix.layer_module(weight, node)
    evidence = f"last layer before the output {keys[index] or 'tensor'!r}"
    ix.result.set_role(module, "classifier", evidence, over=True)
    if weight in ix.result.tables:
        before, _ = walk_back(ix, ix.stream_input(node))
        norms = [name for kind, name in before if kind == "norm"]
        if norms:
            why = f"norm before the classifier {module}, whose weight is tied to the token embedding"
            ix.result.set_role(norms[0], "classifier_norm", why, over=True)

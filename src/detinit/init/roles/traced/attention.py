"""Pass 3: attention, ``F.scaled_dot_product_attention``, ``matmul -> softmax -> matmul``, or a product of
queries and keys through any other elementwise kernel into a product with values (``matmul -> f -> matmul``:
sigmoid or ReLU attention, YOSO's ``(1 - acos(q.k) / pi)^tau``). The layers the
query, key and value come from get ``attn_query`` / ``attn_key`` / ``attn_value`` (a fused one
``attn_qkv:q,k,v`` with its row blocks found by autograd), the first layer after it ``attn_out``."""

from __future__ import annotations

import torch

from ..trace import Node
from .index import SOFTMAX_FUNCS, GraphIndex
from .walks import layers_fed, layers_feeding

PRODUCT_FUNCS = frozenset({"matmul", "__matmul__", "bmm"})


def find_attention(ix: GraphIndex) -> None:
    for node in ix.graph.nodes:
        qkv_out = _attention_at(ix, node) or _kernel_attention_at(ix, node)
        if qkv_out is None:
            continue
        (q, k, v), out = qkv_out
        sources = {name: layers_feeding(ix, val) for name, val in (("query", q), ("key", k), ("value", v))}
        for name, val in (("query", q), ("key", k), ("value", v)):
            if not sources[name]:  # a query/key norm after the projection (Qwen3, OLMo 2)
                sources[name] = layers_feeding(ix, val, through_norm=True)
        if any(len(s) != 1 for s in sources.values()):
            ix.result.notes.append(
                f"attention in {node.module or 'the model'}: query/key/value do not each come from one layer; "
                "their layers keep the default role"
            )
            continue
        layers = {name: s[0] for name, s in sources.items()}
        _attention_roles(ix, node, layers, {"query": q, "key": k, "value": v})
        for out_node, weight in layers_fed(ix, out):
            module = ix.layer_module(weight, out_node)
            ix.result.set_role(module, "attn_out", f"first layer after the attention in {node.module}", over=True)


def _attention_at(ix: GraphIndex, node: Node) -> tuple[tuple[int, int, int], int] | None:
    """``((query, key, value), output)`` values if ``node`` computes attention."""
    if node.name == "scaled_dot_product_attention":
        args = [node.inputs.get(i, node.inputs.get(k)) for i, k in ((0, "query"), (1, "key"), (2, "value"))]
        if any(a is None for a in args):
            return None
        return (args[0], args[1], args[2]), node.outputs[0]
    if node.name not in SOFTMAX_FUNCS:
        return None
    found = _product_behind(ix, ix.stream_input(node))
    if found is None:
        return None
    q, k = found
    probs = node.outputs[0]
    for _ in range(20):
        consumers = [ix.graph.nodes[i] for i in ix.graph.consumers.get(probs, [])]
        if len(consumers) != 1:
            return None
        consumer = consumers[0]
        tainted = ix.graph.tainted_inputs(consumer)
        if consumer.name in ("matmul", "__matmul__", "bmm") and len(tainted) == 2 and tainted[0] == probs:
            return (q, k, tainted[1]), consumer.outputs[0]
        if len(tainted) != 1 or ix.graph.param_inputs(consumer):
            return None
        probs = consumer.outputs[0]
    return None


def _kernel_attention_at(ix: GraphIndex, node: Node) -> tuple[tuple[int, int, int], int] | None:
    """``((query, key, value), output)`` if ``node`` multiplies weights by values, the weights an elementwise
    function (at least one step, none a softmax: :func:`_attention_at` finds those) of a product of queries and
    keys; every step computed from the input alone (no parameter), each from one such value."""
    tainted = ix.graph.tainted_inputs(node)
    if node.name not in PRODUCT_FUNCS or len(tainted) != 2 or ix.graph.param_inputs(node):
        return None
    weights, value = tainted
    producer = ix.graph.producer(weights)
    if producer is None or producer.name in PRODUCT_FUNCS:  # a chain of products, no kernel between them
        return None
    found = _product_behind(ix, weights, stop=SOFTMAX_FUNCS)
    return ((*found, value), node.outputs[0]) if found is not None else None


def _product_behind(ix: GraphIndex, value: int, stop: frozenset[str] = frozenset()) -> tuple[int, int] | None:
    """The two inputs of the product of two input-computed values (queries times keys) that ``value`` is computed
    from through functions of one such value and no parameter (scaling, masking by constants, a kernel); ``None``
    where the walk meets anything else, or a function in ``stop``."""
    while value >= 0:  # values are numbered in order: each step goes to an earlier one
        producer = ix.graph.producer(value)
        if producer is None or ix.graph.param_inputs(producer) or producer.name in stop:
            return None
        inputs = ix.graph.tainted_inputs(producer)
        if producer.name in PRODUCT_FUNCS and len(inputs) == 2:
            return inputs[0], inputs[1]
        if len(inputs) != 1:
            return None
        value = inputs[0]
    return None


def _attention_roles(ix: GraphIndex, node: Node, layers: dict[str, tuple[Node, str]], values: dict[str, int]) -> None:
    where = f"attention in {node.module or 'the model'}"
    by_layer: dict[int, list[str]] = {}
    for name, (layer_node, _) in layers.items():
        by_layer.setdefault(layer_node.index, []).append(name)
    for names in by_layer.values():
        layer_node, weight = layers[names[0]]
        module = ix.layer_module(weight, layer_node)
        if len(names) == 1:
            ix.result.set_role(module, f"attn_{names[0]}", f"{names[0]} of the {where}", over=True)
            continue
        sizes = _fused_rows(ix, layer_node, [values[n] for n in names])
        if sizes is None:
            ix.result.notes.append(
                f"{module}: fused {'/'.join(names)} projection whose blocks are not contiguous rows in that order; "
                "it keeps the default role"
            )
            continue
        role = "attn_qkv" if len(names) == 3 else "attn_kv" if names == ["key", "value"] else None
        if role is None:
            continue
        why = f"fused {'/'.join(names)} of the {where}; rows found by autograd"
        ix.result.set_role(module, f"{role}:{','.join(map(str, sizes))}", why, over=True)


def _fused_rows(ix: GraphIndex, layer: Node, values: list[int]) -> list[int] | None:
    """Output rows of a fused projection feeding each value, as contiguous block sizes in order."""
    out = ix.graph.tensors[layer.outputs[0]]
    if not out.requires_grad:
        return None
    generator = torch.Generator(device=out.device).manual_seed(0)
    starts, sizes, end = [], [], 0
    for value in values:
        target = ix.graph.tensors[value]
        cotangent = torch.randn(target.shape, generator=generator, device=target.device, dtype=target.dtype)
        (grad,) = torch.autograd.grad(target, out, cotangent, retain_graph=True, allow_unused=True)
        if grad is None:
            return None
        rows = grad.abs().reshape(-1, grad.shape[-1]).sum(0).nonzero().flatten().tolist()
        if not rows or rows != list(range(rows[0], rows[-1] + 1)):
            return None
        starts.append(rows[0])
        sizes.append(len(rows))
        end = max(end, rows[-1] + 1)
    if starts != sorted(starts) or starts[0] != 0 or end != out.shape[-1]:
        return None
    if any(a + n != b for a, n, b in zip(starts, sizes, starts[1:])):
        return None
    return sizes

"""Pass 5: norms that put the token embedding on the residual stream (BERT's and BART's embedding LayerNorm):
their input is a token table's rows, plus position or token-type tables, a constant scale and padding rows,
and nothing else, and their output is carried past a residual branch (a pre-norm block's first norm, which
feeds only the branch, is not one); and token tables whose rows reach a post-norm block's norm through zero
branches alone, with no embedding norm (GPT-1); and token tables whose rows a layer narrows, through norms and
added positions, to fewer features (RemBERT's embedding projection): :func:`find_narrowed_tables`. Reads the
norms of pass 1 and the sums of pass 4; :mod:`detinit.init.apply.embedding_norm` uses what it finds."""

from __future__ import annotations

from .index import ADD_FUNCS, CAT_FUNCS, MUL_FUNCS, NORM_FUNCS, SHAPE_FUNCS, GraphIndex
from .residuals import residual_sums

# with one input that depends on the example: reshapes, constant scales, added positions, padding rows (LED)
CARRYING_FUNCS = SHAPE_FUNCS | ADD_FUNCS | MUL_FUNCS | CAT_FUNCS


def find_embedding_norms(ix: GraphIndex) -> None:
    """Embedding norms, and token tables that enter a post-norm stream with no norm of their own (GPT-1: the
    first block's norm reads the rows through its zero branches alone)."""
    sums = residual_sums(ix)
    skips = {source for block in sums for source in _carried_from(ix, block.skip)}
    skip_of = {ix.graph.nodes[block.node].outputs[0]: block.skip for block in sums}
    for output, value in ix.norm_outputs.items():
        name = ix.norm_call_of[output]
        if output not in skips or name in ix.result.embedding_norms:
            continue
        if _reads_token_table(ix, value):
            ix.result.embedding_norms.append(name)
            continue
        carried = _carried_from(ix, value)[-1]
        table = _token_table(ix, skip_of[carried]) if carried in skip_of else None
        if table is not None and table not in dict(ix.result.stream_tables):  # the first post-norm it meets
            ix.result.stream_tables.append((table, name))
    find_narrowed_tables(ix)


def find_narrowed_tables(ix: GraphIndex) -> None:
    """Token tables whose rows reach a narrowing layer (``out < in`` features) through reshapes, constant
    scales, added positions and norms alone: ``(table module, layer weight, out features)`` in
    ``result.narrowed_tables``, where all the rows reach is that one layer (:func:`_narrowing_layer`)."""
    norm_output_of = {value: output for output, value in ix.norm_outputs.items()}
    for node in ix.graph.nodes:
        if node.name != "embedding" or 1 not in node.inputs or not node.outputs:
            continue
        table = _token_table(ix, node.outputs[0])
        if table is None or any(t == table for t, _, _ in ix.result.narrowed_tables):
            continue
        narrowing = _narrowing_layer(ix, node.outputs[0], norm_output_of)
        if narrowing is not None:
            ix.result.narrowed_tables.append((table, *narrowing))


def _narrowing_layer(ix: GraphIndex, start: int, norm_output_of: dict[int, int]) -> tuple[str, int] | None:
    """The layer that narrows the rows ``start``: ``(weight, out features)`` when everything reading them,
    forward through what :func:`_carried_from` walks back through and norms, ends in one layer with fewer out
    than in features; else ``None`` (the rows also reach a residual sum or another layer: a pre-norm stream
    read by a narrower key projection is not narrowed)."""
    frontier, seen = [start], {start}
    found: tuple[str, int] | None = None
    while frontier:
        value = frontier.pop(0)
        inside = ""  # a norm module's input: the nodes inside that module are the norm, followed to its output
        if value in norm_output_of:
            inside = ix.norm_call_of[norm_output_of[value]]
            frontier.append(norm_output_of[value])
            seen.add(norm_output_of[value])
        for index in ix.graph.consumers.get(value, []):
            node = ix.graph.nodes[index]
            if inside and (node.module == inside or node.module.startswith(inside + ".")):
                continue
            use = ix.matrix_use(node)
            if use is not None:
                weight, stored, _ = use
                shape = ix.parameter(weight).shape
                out, inp = (shape[0], shape[-1]) if stored == "out_in" else (shape[-1], shape[-2])
                if found not in (None, (weight, out)) or len(shape) != 2 or not out < inp:
                    return None
                found = (weight, int(out))
                continue
            carries = node.name in CARRYING_FUNCS and len(ix.graph.tainted_inputs(node)) == 1
            if not (carries and not ix.graph.param_inputs(node) or node.name in NORM_FUNCS):
                return None
            frontier.extend(v for v in node.outputs if v not in seen)
            seen.update(node.outputs)
        if len(seen) > 64:
            return None
    return found


def _reads_token_table(ix: GraphIndex, value: int) -> bool:
    """Whether ``value`` is a token table's rows, through reshapes, constant scales and added values that do
    not depend on the input (positions)."""
    return _token_table(ix, value) is not None


def _token_table(ix: GraphIndex, value: int) -> str | None:
    """The module of the token table whose rows ``value`` is (as :func:`_reads_token_table`), or ``None``."""
    node = ix.graph.producer(_carried_from(ix, value)[-1])
    indices = node.inputs.get(0) if node is not None and node.name == "embedding" else None
    if indices is None or not ix.graph.values[indices].tainted or 1 not in node.inputs:
        return None
    table = ix.param_source(node.inputs[1])
    return ix.layer_module(table[0], node) if table is not None else None


def _carried_from(ix: GraphIndex, value: int) -> list[int]:
    """``value`` and what it is carried from through reshapes, constant scales, added positions and rows
    concatenated to it that do not depend on the input (padding)."""
    found = [value]
    while (node := ix.graph.producer(found[-1])) is not None:
        tainted = ix.graph.tainted_inputs(node)
        if len(tainted) != 1 or ix.graph.param_inputs(node) or node.name not in CARRYING_FUNCS:
            return found
        found.append(tainted[0])
    return found

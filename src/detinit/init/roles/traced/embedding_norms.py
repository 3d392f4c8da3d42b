"""Pass 5: norms that put the token embedding on the residual stream (BERT's and BART's embedding LayerNorm):
their input is a token table's rows, plus position or token-type tables, a constant scale and padding rows,
and nothing else, and their output is carried past a residual branch (a pre-norm block's first norm, which
feeds only the branch, is not one); and token tables whose rows reach a post-norm block's norm through zero
branches alone, with no embedding norm (GPT-1). Reads the norms of pass 1 and the sums of pass 4;
:mod:`detinit.init.apply.embedding_norm` uses what it finds."""

from __future__ import annotations

from .index import ADD_FUNCS, CAT_FUNCS, MUL_FUNCS, SHAPE_FUNCS, GraphIndex
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

r"""Token tables whose rows a layer narrows: RemBERT embeds tokens at width :math:`d`, normalises them and
projects them to the narrower hidden width :math:`n` before its post-norm blocks. Under ZerO the projection
is the partial identity, so the stream holds each row's first :math:`n` features; Hadamard row :math:`r` is
constant there when :math:`2^{\lceil \log_2 n \rceil}` divides :math:`r`, and the next LayerNorm maps that token
to 0 (12 of RemBERT's 1,000 tokens at :math:`d = 256`, :math:`n = 64`). :func:`settle_narrowed_tables_`
refills such a table without those rows (:func:`~detinit.init.tensor.embedding.zero_embedding_` with
``read_width=n``): for a power-of-two :math:`n` every token then enters the narrow stream as a balanced
:math:`\pm c` vector, and the post-norm blocks after it are the identity.
"""

from __future__ import annotations

from torch import nn

from ..tensor.embedding import embedding_collisions, zero_embedding_
from .plan import Entry


def settle_narrowed_tables_(
    model: nn.Module,
    entries: list[Entry],
    narrowed: list[tuple[str, str, int]],
    *,
    norm: str = "orthonormal",
    constant_token: bool = False,
) -> None:
    """Refill each ``(table module, narrowing layer weight, width)`` of ``narrowed`` whose table holds ZerO's
    Hadamard rows and whose layer is a partial identity, so that no token is constant at that width; the table's
    entry in ``entries`` says so."""
    index = {entry.name: i for i, entry in enumerate(entries)}
    for table, layer_weight, width in narrowed:
        name = f"{table}.weight"
        if name not in index or layer_weight not in index or entries[index[layer_weight]].rule != "partial_identity":
            continue
        entry = entries[index[name]]
        weight = model.get_submodule(table).weight
        if entry.rule not in ("hadamard", "identity") or weight.dim() != 2 or width >= weight.shape[1]:
            continue
        zero_embedding_(weight, norm=norm, constant_token=constant_token, read_width=width)
        shared = embedding_collisions(*weight.shape, constant_token, read_width=width)
        entries[index[name]] = entry._replace(
            rule="hadamard",
            why=f"{entry.why.split(' (')[0]}, leaving out the rows constant on the first {width} features, which "
            f"{layer_weight} (a partial identity) keeps: no token enters its narrower stream as a constant "
            f"vector ({shared} tokens share a row until their own gradients separate them)",
        )

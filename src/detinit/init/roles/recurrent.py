r"""Recurrent layers (``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` and their cells): their weights as gate blocks.

PyTorch stacks the gates along the rows of each matrix: ``weight_ih`` is
``(G H, in)``, ``weight_hh`` is ``(G H, H)`` (``(G H, P)`` with
``proj_size = P``), gates in the order LSTM :math:`(i, f, g, o)`, GRU
:math:`(r, z, n)`, RNN one block; ``weight_hr`` (LSTM with ``proj_size``) is
``(P, H)``. Each gate block gets its own rule, as a fused attention projection
does (:func:`detinit.init.apply.resolve.resolve`): fans are per gate, and ZerO's
identity is per gate.

**Deterministic schemes** (ZerO, partial identity, ConstNet), zeros and ones only:

* the *candidate* block (LSTM :math:`g`, GRU :math:`n`, the RNN's only block)
  of ``weight_ih`` gets the scheme's rule for an ``nn.Linear(in, H)``: ZerO's
  identity / partial identity / Hadamard, ConstNet's averaging. Hidden units
  copy distinct inputs, so no two start the same;
* the other gates' input weights start at 0: each gate starts constant at
  :math:`\sigma(b)`;
* ``weight_hh``: the plain RNN's recurrence is the identity (IRNN, Le, Jaitly &
  Hinton 2015: :math:`h_t = \phi(P x_t + h_{t-1})`); a gated cell's is 0, since
  its memory already has an identity path (LSTM :math:`c_t = f c_{t-1} + i g`,
  GRU :math:`h_t = (1 - z) n + z h_{t-1}`) and a second one through ``weight_hh``
  would not be an isometry. Every zero block has a non-zero gradient at the
  first step (:math:`\partial c / \partial f = c_{t-1}`, ...), so none is a saddle;
* ``weight_hr``: the rule of an ``nn.Linear(H, P)``.

**Random schemes**: every input block the scheme's rule for an
``nn.Linear(in, H)``; every recurrent block orthogonal (Saxe et al. 2014, the
recurrent default of Keras).

**Biases**, every scheme: 0, except the LSTM forget gate's ``bias_ih`` block,
1 (Gers et al. 2000; Jozefowicz et al. 2015; Keras' ``unit_forget_bias``):
the cell keeps :math:`\sigma(1) = 0.73` of its memory per step at init.
PyTorch adds ``bias_ih`` and ``bias_hh``; the 1 is on ``bias_ih`` only.

Where the layer ends a residual branch or is the output (schemes that start
those at 0), the candidate block's input weights are 0 too: the candidate, the
state and the output then stay exactly 0.

>>> from torch import nn
>>> [b.gate for b in gate_blocks(nn.LSTM(3, 4), "weight_ih_l0")]
['input', 'forget', 'cell', 'output']
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

RECURRENT_TYPES = (nn.RNNBase, nn.RNNCellBase)
RECURRENT_ROLES = ("default", "branch", "branch_last", "classifier")
GATES = {"lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new"), "rnn": ("hidden",)}
CANDIDATE = {"lstm": "cell", "gru": "new", "rnn": "hidden"}


@dataclass(frozen=True)
class GateBlock:
    """Rows ``start:stop`` of a recurrent weight: one gate's matrix ``(rows, cols)``.

    ``matrix`` is ``"input"`` (``weight_ih``), ``"hidden"`` (``weight_hh``) or
    ``"projection"`` (``weight_hr``, one block).
    """

    cell: str
    gate: str
    matrix: str
    start: int
    stop: int
    cols: int

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def candidate(self) -> bool:
        """The block that computes the new content (LSTM ``g``, GRU ``n``, the RNN's one block)."""
        return self.gate == CANDIDATE[self.cell]


def cell_kind(module: nn.Module) -> str:
    """``"lstm"``, ``"gru"`` or ``"rnn"`` for a recurrent layer or cell."""
    if isinstance(module, (nn.LSTM, nn.LSTMCell)):
        return "lstm"
    if isinstance(module, (nn.GRU, nn.GRUCell)):
        return "gru"
    if isinstance(module, (nn.RNN, nn.RNNCell)):
        return "rnn"
    mode = getattr(module, "mode", "")
    kinds = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn", "RNN_RELU": "rnn"}
    if mode not in kinds:
        raise ValueError(
            f"{type(module).__name__}: recurrent mode {mode!r} is not supported; supported: {sorted(kinds)}"
        )
    return kinds[mode]


def gate_blocks(module: nn.Module, name: str) -> list[GateBlock]:
    """The gate blocks of ``module``'s weight ``name`` (``weight_ih_l0``, ``weight_hh``, ``weight_hr_l1_reverse``)."""
    cell = cell_kind(module)
    weight = getattr(module, name)
    rows, cols = weight.shape
    if name.startswith("weight_hr"):
        return [GateBlock(cell, "projection", "projection", 0, rows, cols)]
    matrix = "input" if name.startswith("weight_ih") else "hidden"
    gates = GATES[cell]
    if rows % len(gates):
        raise ValueError(
            f"{type(module).__name__}.{name} has {rows} rows, not a multiple of its {len(gates)} gates {gates}"
        )
    size = rows // len(gates)
    return [GateBlock(cell, gate, matrix, i * size, (i + 1) * size, cols) for i, gate in enumerate(gates)]

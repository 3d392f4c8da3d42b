"""What tracing found: :class:`TracedRoles`, the roles of modules and the uses of parameters."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TracedRole:
    """A role found from the computation, the evidence, and the residual block (one per add)."""

    role: str
    evidence: str
    block: str | None = None


@dataclass(frozen=True)
class TracedParam:
    """How a parameter outside the layer types detinit knows is used.

    ``kind`` is ``"matrix"`` (``in_features``, ``out_features``, ``stored``: ``"out_in"`` or ``"in_out"``),
    ``"bias"``, ``"table"`` (an ``F.embedding`` weight), ``"scale"`` / ``"offset_scale"`` / ``"shift"`` (a norm's
    parameters; ``offset_scale`` multiplies as ``offset + w``, Gemma's ``1 + w``), ``"position"``, ``"token"``,
    ``"layer_scale"`` or ``"skip_scale"`` (a parameter multiplying a residual sum's skip). A ``"matrix"`` may be a
    stack (``stacked``: a 3-D weight whose slices ``w[e]`` are the matrices, as Hugging Face stores experts) and may
    carry a role of its own; a ``folded`` one holds its input or output features over several dims (XLNet's
    ``(d_model, heads, head_dim)`` read by ``einsum("ibh,hnd->ibnd", x, W)``), filled as its ``in x out`` (or ``out
    x in``) view.
    """

    kind: str
    evidence: str
    in_features: int = 0
    out_features: int = 0
    stored: str = "out_in"
    stacked: int = 0  # a stack of this many matrices, one per leading index (a mixture of experts' weights)
    role: str | None = None  # the matrix's own role, in a module holding several (experts' up and down)
    folded: bool = False  # a matrix held with its input or output features split over several dims (einsum)
    offset: float | None = None  # the constant ``c`` of a scale held as ``c + w``, where read from the call


@dataclass
class TracedRoles:
    """What :func:`trace_roles` found: module roles, parameter uses and the norms of unknown classes."""

    modules: dict[str, TracedRole] = field(default_factory=dict)
    params: dict[str, TracedParam] = field(default_factory=dict)
    norms: dict[str, str] = field(default_factory=dict)  # module -> how it was found
    used: set[str] = field(default_factory=set)  # parameters the forward pass read
    notes: list[str] = field(default_factory=list)
    forward_writes: list[str] = field(default_factory=list)  # parameters the forward pass writes in place
    finite_outputs: list[str] = field(default_factory=list)  # keys of the floating outputs, finite before the init
    tables: set[str] = field(default_factory=set)  # parameters read by F.embedding
    embedding_norms: list[str] = field(default_factory=list)  # norm modules reading a token table's rows
    # (token table module, the post-norm it feeds through zero branches alone): a stream with no embedding norm
    stream_tables: list[tuple[str, str]] = field(default_factory=list)
    # (token table module, the weight of the layer that narrows its rows, that layer's out features): RemBERT
    narrowed_tables: list[tuple[str, str, int]] = field(default_factory=list)
    # (layer, block module, s): a square layer that is the whole branch of a sum scaled by s, (x + layer(x)) * s
    # (Inkling2's short convolutions); the block is the identity where the layer is (1/s - 1) I
    scaled_sums: list[tuple[str, str, float]] = field(default_factory=list)

    def set_role(self, module: str, role: str, evidence: str, block: str | None = None, *, over: bool = False) -> None:
        """Give ``module`` a role; one it has already is kept unless ``over``."""
        if over or module not in self.modules:
            self.modules[module] = TracedRole(role, evidence, block)

    def merge(self, part: TracedRoles, prefix: str) -> None:
        """Add what was found on a submodule traced on its own, its names under ``prefix`` (``"vision."``);
        roles already known are kept, and the part's embedding norms and stream tables are not taken (settling
        them needs the whole model's forward pass)."""
        for name, role in part.modules.items():
            block = None if role.block is None else f"{role.block} of {prefix.rstrip('.')}"
            self.set_role(prefix + name, role.role, role.evidence, block)
        for name, param in part.params.items():
            self.params.setdefault(prefix + name, param)
        for name, how in part.norms.items():
            self.norms.setdefault(prefix + name, how)
        self.used |= {prefix + p for p in part.used}
        self.tables |= {prefix + p for p in part.tables}
        self.notes.extend(f"{prefix.rstrip('.')}: {note}" if prefix else note for note in part.notes)

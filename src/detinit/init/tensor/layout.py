"""How a weight tensor is read as one or more (out x in) matrices.

Every deterministic initialiser in :mod:`detinit.init` works on the matrix
``M`` (``P`` rows = outputs, ``Q`` columns = inputs) that a layer applies at one
spatial position. This module finds those matrices inside a weight tensor, as
*writable views*, so that initialisers write straight into the weight without
temporary copies:

=========================  ===========================  ==========================
layer                      weight layout                matrix of group ``g``
=========================  ===========================  ==========================
``nn.Linear``              ``(out, in)``                the whole weight
``nn.ConvNd``              ``(out, in/G, *k)``          ``w[g*P:(g+1)*P, :, *c]``
``nn.ConvTransposeNd``     ``(in, out/G, *k)``          ``w[g*Q:(g+1)*Q, :, *c].T``
=========================  ===========================  ==========================

where ``G`` is ``groups``, ``P = out/G``, ``Q = in/G`` and ``c`` is the centre
tap (see :func:`centre_index`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ...values import interval, is_int, is_number

SUPPORTED_LAYOUTS = (
    "a 2-D Linear weight (out, in), a 3/4/5-D Conv1d/2d/3d kernel (out, in/groups, *k) "
    "or a ConvTranspose kernel (in, out/groups, *k) with transposed=True"
)


def centre_index(kernel_size: Sequence[int]) -> tuple[int, ...]:
    """Index of the tap that carries the matrix in a kernel of ``kernel_size``.

    For each spatial dimension of size ``k`` the centre is ``(k - 1) // 2``.
    For odd ``k`` this is the true centre ``k // 2``. For even ``k`` it is the
    left one of the two middle taps, which is the tap that makes the kernel the
    identity under ``padding="same"``: torch pads ``(k - 1) // 2`` on the left
    and puts the extra element on the right.

    >>> centre_index((3, 3)), centre_index((4, 1)), centre_index((2, 5))
    ((1, 1), (1, 0), (0, 2))
    """
    return tuple((k - 1) // 2 for k in kernel_size)


def check_float_tensor(tensor: object, fn: str) -> torch.Tensor:
    """Raise ``TypeError`` unless ``tensor`` is a real floating-point tensor."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{fn}: expected a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.dtype.is_floating_point:
        raise TypeError(
            f"{fn}: tensor of shape {tuple(tensor.shape)} has dtype {tensor.dtype}; "
            "only real floating-point tensors (float16, bfloat16, float32, float64) "
            "can be initialised"
        )
    if has_internal_overlap(tensor):
        raise ValueError(
            f"{fn}: tensor of shape {tuple(tensor.shape)} has strides {tensor.stride()}: its elements share memory "
            "(an expand()-ed or overlapping as_strided view), so they cannot be set one by one; pass a tensor that "
            "owns its elements (e.g. .contiguous())"
        )
    return tensor


def has_internal_overlap(tensor: torch.Tensor) -> bool:
    """Whether two elements of ``tensor`` are one element of memory (an ``expand()``-ed or overlapping
    ``as_strided`` view), where writing one writes the other.

    Sorted by stride, the dimensions of a view without overlap each step over everything the smaller ones
    reach; where that quick test fails (rare: a hand-made ``as_strided``), the offsets are counted.

    >>> has_internal_overlap(torch.zeros(4, 4).t()), has_internal_overlap(torch.zeros(4, 1).expand(4, 4))
    (False, True)
    >>> has_internal_overlap(torch.zeros(16).as_strided((4, 4), (1, 1)))
    True
    """
    dims = sorted((stride, size) for stride, size in zip(tensor.stride(), tensor.shape) if size > 1)
    if dims and dims[0][0] == 0:  # expand(): no need to count
        return True
    reach = 0  # the largest offset the dimensions so far reach
    for stride, size in dims:
        if stride <= reach:
            break
        reach += stride * (size - 1)
    else:
        return False
    offsets = torch.zeros((), dtype=torch.int64)
    for stride, size in dims:
        offsets = (offsets.unsqueeze(-1) + torch.arange(size, dtype=torch.int64) * stride).flatten()
    return offsets.unique().numel() < offsets.numel()


def check_number_argument(fn: str, name: str, value: object, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a float if it is a finite number in ``[low, high]``, else a ``ValueError`` naming ``fn``'s
    argument ``name``, the value and the range."""
    if not is_number(value, low, high):
        what = f"a number in {interval(low, high)}" if math.isfinite(low) or math.isfinite(high) else "a finite number"
        raise ValueError(f"{fn}: {name}={value!r} is not supported; {name} must be {what}")
    return float(value)  # type: ignore[arg-type]


def check_flag_argument(fn: str, name: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False``, else a ``ValueError`` naming ``fn``'s argument ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"{fn}: {name} must be True or False, got {value!r}")
    return value


def check_choice_argument(fn: str, name: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` naming ``fn``'s argument ``name`` and the
    choices."""
    if value not in choices:
        raise ValueError(f"{fn}: {name}={value!r} is not supported; choose one of {choices}")
    return value  # type: ignore[return-value]


def check_layout(tensor: object, fn: str, *, groups: int = 1, transposed: bool = False, what: str = "tensor") -> None:
    """Refuse anything but a floating-point 2-5-D weight with no zero-sized dimension, a positive int ``groups``
    and a bool ``transposed``, both only on a conv kernel. A block of a weight's rows (``what="block"``) may hold
    no rows (an empty shard: nothing to write), not an empty column or tap dimension, and may be a 2-D block with
    ``transposed=True``: the rows of an ``(in, out)`` weight (Hugging Face's ``Conv1D``) are its inputs.

    >>> check_layout(torch.empty(4, 4), "demo", groups=2)
    Traceback (most recent call last):
    ...
    ValueError: demo: a 2-D (Linear) weight of shape (4, 4) takes groups=1 and transposed=False; got groups=2, \
transposed=False
    """
    check_float_tensor(tensor, fn)
    shape = tuple(tensor.shape)  # type: ignore[union-attr]
    if not 2 <= len(shape) <= 5:
        raise ValueError(f"{fn}: got a {len(shape)}-D {what} of shape {shape}; expected {SUPPORTED_LAYOUTS}")
    if not is_int(groups, 1):
        raise ValueError(f"{fn}: groups must be a positive int, got {groups!r}")
    check_flag_argument(fn, "transposed", transposed)
    if len(shape) == 2 and (groups != 1 or (transposed and what != "block")):
        allowed = "groups=1" if what == "block" else "groups=1 and transposed=False"
        raise ValueError(
            f"{fn}: a 2-D (Linear) weight of shape {shape} takes {allowed}; got groups={groups}, "
            f"transposed={transposed}"
        )
    if 0 in (shape[1:] if what == "block" else shape):
        raise ValueError(f"{fn}: {what} of shape {shape} has a zero-sized dimension")


def matrix_views(tensor: torch.Tensor, fn: str, *, groups: int = 1, transposed: bool = False) -> list[torch.Tensor]:
    """Writable ``(P, Q)`` views of the per-group matrices at the centre tap.

    Validates the layout and raises a ``ValueError`` naming the shape and what
    is supported. The views alias ``tensor``: writing into them initialises it.

    >>> w = torch.zeros(4, 2, 3, 3)
    >>> [tuple(v.shape) for v in matrix_views(w, "demo", groups=2)]
    [(2, 2), (2, 2)]
    """
    check_layout(tensor, fn, groups=groups, transposed=transposed)
    shape = tuple(tensor.shape)
    if shape[0] % groups != 0:
        what = "in_channels" if transposed else "out_channels"
        raise ValueError(f"{fn}: {what}={shape[0]} (dimension 0 of shape {shape}) is not divisible by groups={groups}")
    return [centre_plane(tensor)] if groups == 1 and not transposed else _group_views(tensor, groups, transposed)


def centre_plane(tensor: torch.Tensor) -> torch.Tensor:
    """The ``(dim 0, dim 1)`` view of a 2-5-D ``tensor`` at the centre tap (no checks: :func:`matrix_views`
    validates). A Linear weight is its own plane; a 1x1 kernel is viewed without its unit taps, whatever its
    strides, not indexed (a view costs a third of an index: this runs once a layer).

    >>> centre_plane(torch.arange(8.0).view(2, 1, 4))
    tensor([[1.],
            [5.]])
    """
    if tensor.dim() == 2:
        return tensor
    if tensor.numel() == tensor.shape[0] * tensor.shape[1]:  # every tap dimension is 1
        return tensor.view(tensor.shape[0], tensor.shape[1])
    return tensor[(slice(None), slice(None)) + centre_index(tensor.shape[2:])]


def _group_views(tensor: torch.Tensor, groups: int, transposed: bool) -> list[torch.Tensor]:
    plane, rows = centre_plane(tensor), tensor.shape[0] // groups
    views = [plane[g * rows : (g + 1) * rows] for g in range(groups)]
    return [v.t() for v in views] if transposed else views

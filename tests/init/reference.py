"""Independent float64 reference of the ZerO formulas, built on scipy.linalg.hadamard.

Nothing here imports detinit: the tests compare the library against it.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg


def zero_matrix(p: int, q: int, norm: str = "orthonormal", hadamard: bool = True) -> np.ndarray:
    """Algorithm 1 for a (P, Q) matrix, float64."""
    if p <= q or not hadamard:
        return np.eye(p, q)
    m = math.ceil(math.log2(p))
    c = 2.0 ** (-m / 2) if norm == "orthonormal" else 2.0 ** (-(m - 1) / 2)
    return c * scipy.linalg.hadamard(2**m).astype(np.float64)[:p, :q]


def zero_kernel(shape: tuple[int, ...], groups: int = 1, transposed: bool = False, **kw) -> np.ndarray:
    """Algorithm 2: the kernel of a (transposed, grouped) conv, float64, centre tap (k-1)//2."""
    out = np.zeros(shape)
    centre = tuple((k - 1) // 2 for k in shape[2:])
    rows = shape[0] // groups
    for g in range(groups):
        if transposed:  # (in, out/G): matrix (out/G, in/G) is the transpose
            block = zero_matrix(shape[1], rows, **kw).T
        else:
            block = zero_matrix(rows, shape[1], **kw)
        out[(slice(g * rows, (g + 1) * rows), slice(None)) + centre] = block
    return out

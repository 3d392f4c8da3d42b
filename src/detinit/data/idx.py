"""The IDX file format of MNIST and Fashion-MNIST (optionally gzip-compressed).

Header: two zero bytes, a type code (``0x08`` = unsigned byte, ...), the
number of dimensions ``d``, then ``d`` big-endian 32-bit sizes; the data
follows in C order.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from ..contract import checked_arguments
from .base import DataError

_TYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _open(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist") from None
    except (OSError, EOFError) as err:
        raise DataError(f"IDX file {path} is corrupt or truncated ({err})") from None


@checked_arguments()
def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file into a tensor (``uint8`` images and labels stay ``uint8``)."""
    path = Path(path)
    raw = _open(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() if raw else 'empty'})")
    if raw[2] not in _TYPES:
        known = ", ".join(f"0x{code:02X}" for code in _TYPES)
        raise DataError(f"{path}: IDX data type code 0x{raw[2]:02X} is not one the format defines ({known})")
    dtype, ndim = np.dtype(_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: header says shape {shape} ({expected} bytes) but the file holds {len(raw) - header}")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("=")).copy())


@checked_arguments()
def write_idx(path: str | Path, array: np.ndarray | torch.Tensor) -> Path:
    """Write a ``uint8`` array as an IDX file (gzip-compressed if the name ends in ``.gz``)."""
    a = array.numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if a.dtype != np.uint8:
        raise ValueError(f"write_idx supports uint8 arrays, got {a.dtype}")
    data = bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    path = Path(path)
    if not path.parent.is_dir():
        raise DataError(f"write_idx: the folder {path.parent} of {path.name} does not exist")
    if path.is_dir():
        raise DataError(f"write_idx: path {path} is a folder; give the file to write")
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path

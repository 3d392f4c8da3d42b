"""Run files that survive a crash (even SIGKILL): checkpoints, JSON records, JSONL metrics.

Whole files are written with :func:`detinit.atomic.atomic_write` (a reader sees
the old file or the new one, never half of one); metrics are appended a line at
a time, and a torn last line is dropped when read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """``torch.save`` ``state`` atomically."""
    return atomic_write(Path(path), lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (it holds only tensors and plain data)."""
    return torch.load(Path(path), map_location=map_location, weights_only=False)


def write_json(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (indented, keys in insertion order)."""
    return atomic_write(Path(path), lambda f: f.write((json.dumps(data, indent=2, default=str) + "\n").encode()))


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically."""
    return atomic_write(Path(path), lambda f: f.write(text.encode()))


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Rewrite a JSONL file atomically."""
    text = "".join(json.dumps(r, default=str) + "\n" for r in rows)
    return atomic_write(Path(path), lambda f: f.write(text.encode()))


def append_jsonl(path: str | Path, row: dict[str, Any]) -> None:
    """Append one JSON line and ``fsync``: a completed epoch is on disk when this returns."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All complete lines of a JSONL file (a torn last line, from a crash mid-write, is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows

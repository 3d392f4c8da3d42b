"""Run files that survive a crash (even SIGKILL): checkpoints, JSON records, JSONL metrics.

Whole files are written with :func:`detinit.atomic.atomic_write` (a reader sees
the old file or the new one, never half of one); metrics are appended a line at
a time, and a torn last line is dropped when read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..contract import checked_arguments


class CheckpointError(RuntimeError):
    """A checkpoint file is damaged (truncated, bit-flipped, not a checkpoint); the message names it."""


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def json_value(value: object) -> object:
    """``json.dumps``'s ``default``: paths, dtypes and devices as text, numpy scalars as numbers; any other type
    is a ``TypeError`` naming it (written as ``str(value)`` it would read back as a string, silently).

    >>> json.dumps({"out": Path("runs/a"), "dtype": torch.float32}, default=json_value)
    '{"out": "runs/a", "dtype": "torch.float32"}'
    """
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()  # a numpy or 0-dim torch scalar
    raise TypeError(
        f"a {type(value).__name__} ({value!r:.60}) cannot be written as JSON; give a list, dict, str or number"
    )


def _digest_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _known_digests(path: Path) -> list[str]:
    try:
        return list(json.loads(_digest_file(path).read_text())["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


@checked_arguments()
def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """``torch.save`` ``state`` atomically, with its SHA-256 in ``<path>.sha256``.

    The digest file lists the new file's digest and the one it replaces, and is written before the
    checkpoint is renamed into place: a kill between the two leaves the old checkpoint, whose digest
    is still listed, so a crash never makes a good checkpoint look damaged.
    """
    path = Path(path)
    check_plain_state(state)

    def record_digest(tmp: Path) -> None:
        write_json(_digest_file(path), {"sha256": [file_sha256(tmp), *_known_digests(path)[:1]]})

    try:
        return atomic_write(path, lambda f: torch.save(state, f), before_replace=record_digest)
    except (OSError, RuntimeError) as err:  # a full disk reads "inline_container.cc: unexpected pos" in torch
        free = shutil.disk_usage(path.parent).free
        raise CheckpointError(
            f"could not write checkpoint {path} ({err}); {free / 2**20:.1f} MiB free on its disk. The previous "
            "checkpoint is untouched: free some space and run the same command again to resume"
        ) from None


@checked_arguments()
def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (it holds only tensors and plain data).

    Checks the file against its recorded SHA-256; a damaged file, or one whose digest file is missing or
    unreadable (copied in from elsewhere: it cannot be verified), is a :class:`CheckpointError` naming it and
    what to do.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a folder; give the checkpoint.pt of a run")
    advice = "delete it (and its .sha256) to restart the run from epoch 0, or restore it from a copy"
    known = _known_digests(path)
    if path.exists() and not known:
        raise CheckpointError(
            f"checkpoint {path} cannot be verified: its digest file {_digest_file(path).name} is missing or "
            f"unreadable (a checkpoint copied in from elsewhere?); {advice}"
        )
    if known and path.exists() and file_sha256(path) not in known:
        raise CheckpointError(
            f"checkpoint {path} is damaged: its SHA-256 is not the one recorded when it was written; {advice}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; give the checkpoint.pt of a run") from None
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated, empty, not a torch file: torch's own message is about zip internals
        raise CheckpointError(f"checkpoint {path} could not be read ({type(err).__name__}: {err}); {advice}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a detinit checkpoint; {advice}")
    return state


@checked_arguments()
def write_json(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (indented, keys in insertion order). Keys that JSON would write as the same text
    (``1`` and ``"1"``) are refused: the file would hold the key twice and read back one value."""
    check_json_keys(data)
    return atomic_write(Path(path), lambda f: f.write((json.dumps(data, indent=2, default=json_value) + "\n").encode()))


def _nodes(data: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every value of ``data`` with its path (``state['opt'][0]``), ``data`` first, descending into dicts, lists
    and tuples."""
    yield where, data
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, (list, tuple)) else ()
    for key, value in items:
        yield from _nodes(value, f"{where}[{key!r}]")


def check_json_keys(data: Any, where: str = "data") -> None:
    """Refuse a mapping (at any depth) two of whose keys JSON writes as the same text.

    >>> check_json_keys({"a": {1: "x", "1": "y"}})
    Traceback (most recent call last):
    ...
    ValueError: data['a'] has the keys 1 and '1', which JSON writes as the same key "1"; one value would be lost
    """
    for path, node in _nodes(data, where):
        if not isinstance(node, dict):
            continue
        seen: dict[str, object] = {}
        for key in node:
            text = key if isinstance(key, str) else json.dumps(key) if isinstance(key, (bool, type(None))) else str(key)
            if text in seen:
                raise ValueError(
                    f"{path} has the keys {seen[text]!r} and {key!r}, which JSON writes as the same key "
                    f'"{text}"; one value would be lost'
                )
            seen[text] = key


PLAIN_LEAVES = (torch.Tensor, bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device)


def check_plain_state(state: Any, where: str = "state") -> None:
    """Refuse anything in a checkpoint's ``state`` but tensors and plain data (numbers, strings, bytes, ``None``,
    dtypes, devices, numpy arrays and scalars, and lists, tuples and dicts of them): a function cannot be saved
    (pickle's error names no key), and a module or another object would need its class to load.

    >>> check_plain_state({"model": {"w": torch.zeros(2)}, "step": 3, "fn": len})
    Traceback (most recent call last):
    ...
    TypeError: save_checkpoint: state['fn'] is a builtin_function_or_method; a checkpoint holds tensors and plain \
data (numbers, strings, lists, dicts of them)
    """
    for path, node in _nodes(state, where):
        plain = isinstance(node, (*PLAIN_LEAVES, dict, list, tuple)) or type(node).__module__ == "numpy"
        if not plain:
            raise TypeError(
                f"save_checkpoint: {path} is a {type(node).__name__}; a checkpoint holds tensors and plain data "
                "(numbers, strings, lists, dicts of them)"
            )


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically."""
    return atomic_write(Path(path), lambda f: f.write(text.encode()))


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Rewrite a JSONL file atomically."""
    text = "".join(json.dumps(r, default=json_value) + "\n" for r in rows)
    return atomic_write(Path(path), lambda f: f.write(text.encode()))


@checked_arguments()
def append_jsonl(path: str | Path, row: dict[str, Any]) -> None:
    """Append one JSON line and ``fsync``: a completed epoch is on disk when this returns."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"append_jsonl: {path} is a folder; give a .jsonl file")
    line = json.dumps(row, default=json_value)  # a NaN (a diverged loss) is written as NaN, which json reads back
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _scan_jsonl(text: str) -> tuple[list[dict[str, Any]], tuple[int, str] | None]:
    """The records of a JSONL text up to its first line that is not a JSON object, and that line ``(number, text)``
    (``None`` if every line is a record, or only a torn last line, without its newline, is not)."""
    lines = text.splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
            continue
        torn = number == len(lines) and not text.endswith("\n")
        return rows, None if torn else (number, line)
    return rows, None


def jsonl_damage(path: str | Path) -> str | None:
    """What is wrong with a JSONL file beyond a torn last line (a crash mid-append leaves one, without its
    newline, and :func:`read_jsonl` drops it): the first line that is not a JSON object, or ``None``."""
    path = Path(path)
    if not path.is_file():
        return None
    _, bad = _scan_jsonl(path.read_text(encoding="utf-8", errors="replace"))
    return None if bad is None else f"{path.name} line {bad[0]} is not a JSON record: {bad[1][:60]!r}"


@checked_arguments()
def read_jsonl(path: str | Path, *, damaged_ok: bool = False) -> list[dict[str, Any]]:
    """The records of a JSONL file. A torn last line (a crash mid-append leaves one, without its newline) is
    dropped; any other line that is not a JSON object is an error naming the file and the line, unless
    ``damaged_ok``: then the records before it are returned (a run directory reads what is left of a damaged
    record, and :func:`jsonl_damage` says what is wrong). A missing file has no records."""
    path = Path(path)
    if not path.exists():
        return []
    if not path.is_file():
        raise ValueError(f"read_jsonl: {path} is not a file (a directory?); give a .jsonl file")
    rows, bad = _scan_jsonl(path.read_text(encoding="utf-8"))
    if bad is not None and not damaged_ok:
        raise ValueError(
            f"read_jsonl: {path} line {bad[0]} is not a JSON record: {bad[1][:60]!r} (only a torn last line, without "
            "its newline, is dropped); repair or remove the line"
        )
    return rows

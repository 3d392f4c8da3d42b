"""Atomic file writes: a reader sees the old file or the new one, never half of one (even after SIGKILL).

The bytes go to a temporary name in the target's folder (``.<name>.XXXX``),
are flushed and ``fsync``-ed, then renamed over the target with
:func:`os.replace`, which is atomic on POSIX and Windows. Every file detinit
writes during a run or a study (checkpoints, JSON records, reports, figures)
goes through :func:`atomic_write`.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
>>> atomic_write(path, lambda f: f.write(b"done")).read_text()
'done'
>>> oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())   # not mkstemp's 0600
True
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .contract import checked_arguments

__all__ = ["OutputDirError", "atomic_write", "check_output_dir", "check_output_file"]


@functools.cache
def _umask() -> int:
    """The process's umask, read once (reading it means setting it, which is not thread-safe)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@checked_arguments()
def atomic_write(
    path: str | Path,
    write: Callable[[BinaryIO], object],
    *,
    before_replace: Callable[[Path], object] | None = None,
) -> Path:
    """Call ``write`` on a binary file object, then put the file at ``path`` atomically; returns ``path``.

    ``before_replace(temporary_path)`` runs once the bytes are on disk, before the rename (e.g. to
    record their checksum). On any error (or interrupt) the temporary file is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; detinit writes a file there only in place of a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file where a folder must be: say which
        check_output_dir(path.parent, f"{path}: its folder")
        raise
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _path_text(path: object, what: str) -> str:
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what}={path!r} is not a path; give a str or a pathlib.Path")
    return os.fspath(path)


class OutputDirError(ValueError):
    """A folder detinit was asked to write into cannot be one; the message names it and why."""


@checked_arguments()
def check_output_dir(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """``path`` as a :class:`~pathlib.Path` if detinit can create it (or write into it) as a folder, else an
    :class:`OutputDirError` naming ``what``, the path and the reason: empty, a file (or under one), a name
    longer than the file system allows, or a parent that cannot be written.

    >>> check_output_dir("")
    Traceback (most recent call last):
        ...
    detinit.atomic.OutputDirError: --out is empty; give a folder, e.g. runs/my-run
    """
    text = _path_text(path, what)
    if not text.strip():
        raise OutputDirError(f"{what} is empty; give a folder, e.g. runs/my-run")
    folder = Path(text)
    try:
        name_max = os.pathconf(folder.anchor or ".", "PC_NAME_MAX")
    except (OSError, ValueError):  # not every file system says
        name_max = 255
    long = [part for part in folder.parts if len(os.fsencode(part)) > name_max]
    if long:
        raise OutputDirError(
            f"{what} {text[:40]}...: the name {long[0][:20]}... is {len(os.fsencode(long[0]))} bytes; the file "
            f"system allows {name_max}"
        )
    existing = next(p for p in [folder, *folder.parents] if p.exists() or p == Path(p.anchor or "."))
    if existing.exists() and not existing.is_dir():
        where = "is" if existing == folder else f"is under {existing}, which is"
        raise OutputDirError(f"{what} {text} {where} a file, not a folder; choose another path")
    if existing != folder and not os.access(existing, os.W_OK | os.X_OK):
        raise OutputDirError(f"{what} {text}: cannot create it, {existing} is not writable")
    if existing == folder and not os.access(folder, os.W_OK | os.X_OK):
        raise OutputDirError(f"{what} {text} is not writable")
    return folder


@checked_arguments()
def check_output_file(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """``path`` as a :class:`~pathlib.Path` if detinit can write a file there, else an :class:`OutputDirError`
    naming ``what``, the path and the reason: empty, a folder, or a folder it cannot be created in
    (:func:`check_output_dir` of its parent).

    >>> check_output_file(tempfile.gettempdir(), "--markdown")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    detinit.atomic.OutputDirError: --markdown ... is a folder, not a file; give a file name in it
    """
    text = _path_text(path, what)
    if not text.strip():
        raise OutputDirError(f"{what} is empty; give a file, e.g. results.jsonl")
    file = Path(text)
    if file.is_dir():
        raise OutputDirError(f"{what} {text} is a folder, not a file; give a file name in it")
    check_output_dir(file.parent, f"{what} {text}: its folder")
    if file.exists() and not os.access(file, os.W_OK):
        raise OutputDirError(f"{what} {text} is not writable")
    return file

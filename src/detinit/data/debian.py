"""Fetching data files from Debian packages without root: ``apt-get download`` + ``dpkg-deb -x``.

If apt's package lists are empty (a fresh machine), they are refreshed into a
private folder, which needs no root either. Every fetched file is checked
against a SHA-256 sum before it reaches the cache, and the cache folder is
replaced atomically, so it never holds half a dataset.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from ..atomic import check_output_dir
from .base import DataError

log = logging.getLogger(__name__)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def failing_checksums(folder: Path, sums: Mapping[str, str]) -> list[str]:
    """Names (relative to ``folder``) of files that are missing or fail their SHA-256 sum."""
    return [name for name, digest in sums.items() if not (folder / name).is_file() or sha256(folder / name) != digest]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def apt_download(package: str, workdir: Path, how_to_get: str) -> Path:
    """``apt-get download package`` into ``workdir`` (refreshing private package lists if needed); the ``.deb``."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise DataError(f"{package} is not in the cache and apt-get/dpkg-deb are not available. {how_to_get}")
    result = _run(["apt-get", "download", package], workdir)
    if result.returncode != 0:
        lists = workdir / "apt-lists"
        (lists / "partial").mkdir(parents=True)
        (workdir / "apt-cache" / "archives" / "partial").mkdir(parents=True)
        private = [
            "-o",
            f"Dir::State::Lists={lists}",
            "-o",
            f"Dir::Cache={workdir / 'apt-cache'}",
            "-o",
            "Debug::NoLocking=1",
        ]
        log.info("apt-get download failed (%s); refreshing package lists privately", result.stderr.strip()[-200:])
        update = _run(["apt-get", *private, "update"], workdir)
        result = _run(["apt-get", *private, "download", package], workdir)
        if result.returncode != 0:
            raise DataError(
                f"could not download {package}: {result.stderr.strip()[-500:]} "
                f"(apt-get update said: {update.stderr.strip()[-300:]}). {how_to_get}"
            )
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if not debs:
        raise DataError(f"apt-get download left no {package}_*.deb in {workdir}. {how_to_get}")
    return debs[-1]


def fetch_package_files(
    package: str,
    package_dir: str,
    sums: Mapping[str, str],
    folder: Path,
    how_to_get: str,
    finish: Callable[[Path], None] | None = None,
) -> Path:
    """Make ``folder`` hold the verified files ``sums`` of ``package`` (from ``package_dir`` inside it).

    Nothing is fetched when ``folder`` already holds them. ``finish(staging)``
    may add derived files (e.g. decoded text) before the folder is moved into
    place.
    """
    if not failing_checksums(folder, sums):
        return folder
    check_output_dir(folder, "the data cache (cache=, or $DETINIT_CACHE)")  # a file on the way: said, not raw
    folder.parent.mkdir(parents=True, exist_ok=True)
    log.info("fetching %s from the Debian package %s into %s", folder.name, package, folder)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".fetch-") as tmp:
        work = Path(tmp)
        deb = apt_download(package, work, how_to_get)
        result = _run(["dpkg-deb", "-x", str(deb), str(work / "x")], work)
        if result.returncode != 0:
            raise DataError(f"dpkg-deb -x {deb.name} failed: {result.stderr.strip()[-300:]}. {how_to_get}")
        unpacked = work / "x" / package_dir
        bad = failing_checksums(unpacked, sums)
        if bad:
            raise DataError(f"the files {bad} of {deb.name} fail their SHA-256 check. {how_to_get}")
        staging = work / folder.name
        staging.mkdir()
        for name in sums:
            shutil.copy2(unpacked / name, staging / name)
        if finish is not None:
            finish(staging)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)  # atomic: the cache never holds half a dataset
    return folder

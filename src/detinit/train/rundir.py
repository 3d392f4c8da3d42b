"""A run directory: where one training run keeps everything needed to read, audit and resume it.

Layout (every whole file written atomically, metrics appended a line at a time)::

    config.json        the resolved configuration
    run.json           seeds (run, init, data), threads, versions, device, world size, status
    init_report.json   what the initialisation did to every parameter
    metrics.jsonl      one line per epoch: losses, accuracies, lr, time, throughput (fsync-ed)
    diagnostics.jsonl  symmetry and rank measures every ``diagnostics_every`` epochs
    signal_init.json   signal propagation at initialisation on the first 64 test examples
    checkpoint.pt      model, optimiser, schedule and history at the last completed epoch
    checkpoint_sharded/  the same under ``parallel: fsdp``: ``epoch_NNNN/`` (each rank's shards, written with
                       torch.distributed.checkpoint, and ``trainer.pt``) named by ``latest.json``
    tb/                TensorBoard events, when the package is installed
    .lock              held (``flock``) while a process trains in the directory

The status in ``run.json`` is ``running`` (also after a kill), ``complete``,
``diverged`` or ``failed``; a directory without ``run.json`` is ``pending``.
The trainer, the study runner and the study report all read a run through
:class:`RunDir`.

>>> import tempfile
>>> run = RunDir(tempfile.mkdtemp())
>>> run.status()
'pending'
>>> _ = run.set_status({"seed": 0}, "complete"); run.status(), run.is_complete()
('complete', True)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..atomic import OutputDirError, check_output_dir
from ..contract import checked_arguments
from ..values import is_int
from .checkpoint import append_jsonl, jsonl_damage, read_jsonl, write_json, write_jsonl
from .config import ConfigError, TrainConfig

try:  # POSIX; where it is missing (Windows) the directory is not locked
    import fcntl
except ImportError:  # pragma: no cover - platform dependent
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

STATUSES = ("pending", "running", "complete", "diverged", "failed")
EXECUTION_KEYS = ("threads", "progress", "tensorboard")  # how a run executes, not what it computes
MODE_KEYS = ("amp", "channels_last", "compile")  # null: chosen at the start, then kept (run.json's "modes")


class RunDirInUse(ConfigError):
    """Another process is training in this run directory."""


def config_identity(config: TrainConfig) -> str:
    """The identity of what a run computes: the SHA-256 of its config without the keys of how it executes
    (:data:`EXECUTION_KEYS`) or the modes chosen at its start (:data:`MODE_KEYS`, kept in ``run.json``).
    Every checkpoint carries it, so one copied in from another run is refused on resume."""
    data = {k: v for k, v in config.to_dict().items() if k not in EXECUTION_KEYS and k not in MODE_KEYS}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class RunDirDamaged(ConfigError):
    """A record of the run directory (config.json, run.json) is not valid JSON; the message names it."""


class RunDir:
    """The files of one run; paths as attributes, reading and writing as methods."""

    @checked_arguments()
    def __init__(self, path: str | Path) -> None:
        if not os.fspath(path).strip():
            raise ConfigError("run directory is empty; give a folder, e.g. runs/my-run")
        self.path = Path(path)
        if os.path.exists(self.path) and not os.path.isdir(self.path):  # read as a run, it would look "pending"
            raise ConfigError(f"run directory {self.path} is a file, not a folder; give a folder, e.g. runs/my-run")
        self.config_file = self.path / "config.json"
        self.run_file = self.path / "run.json"
        self.init_report_file = self.path / "init_report.json"
        self.metrics_file = self.path / "metrics.jsonl"
        self.diagnostics_file = self.path / "diagnostics.jsonl"
        self.signal_file = self.path / "signal_init.json"
        self.checkpoint_file = self.path / "checkpoint.pt"
        self.sharded_checkpoint_dir = self.path / "checkpoint_sharded"
        self.tensorboard_dir = self.path / "tb"
        self.lock_file = self.path / ".lock"

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ------------------------------------------------------------------ reading
    def _read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise RunDirDamaged(
                f"{path} is damaged ({err}); restore it, or delete the run directory {self.path} to start over"
            ) from None

    def _read_object(self, path: Path) -> dict[str, Any]:
        """A record that must be a JSON object (``run.json``, ``config.json``)."""
        record = self._read_json(path)
        if not isinstance(record, dict):
            raise RunDirDamaged(f"{path} is damaged (not a JSON object); restore it or delete {self.path}")
        return record

    def run_record(self) -> dict[str, Any]:
        """``run.json`` as a dict (empty when the run has not started)."""
        return self._read_object(self.run_file) if self.run_file.exists() else {}

    def status(self) -> str:
        """One of :data:`STATUSES`."""
        return str(self.run_record().get("status", "pending"))

    def is_complete(self) -> bool:
        return self.status() == "complete"

    @checked_arguments(at_least={"epochs": 0})
    def damage(self, epochs: int) -> str | None:
        """What makes a complete run's records not whole: a line of ``metrics.jsonl`` that is not a record, or
        fewer (more) epochs recorded than the run's ``epochs``; ``None`` if they are whole."""
        broken = jsonl_damage(self.metrics_file)
        if broken is not None:
            return broken
        recorded = len(self.metrics())
        return None if recorded == epochs else f"metrics.jsonl holds {recorded} of the run's {epochs} epochs"

    def metrics(self) -> list[dict[str, Any]]:
        """The epochs recorded in ``metrics.jsonl`` up to its first line that is not a record (a torn last line
        is dropped; :meth:`damage` says what else is wrong)."""
        return read_jsonl(self.metrics_file, damaged_ok=True)

    def diagnostics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.diagnostics_file, damaged_ok=True)

    def signal_at_init(self) -> list[dict[str, Any]] | None:
        """The rows of ``signal_init.json``; ``None`` for runs that predate it."""
        return self._read_json(self.signal_file) if self.signal_file.exists() else None

    @checked_arguments()
    def changed_keys(self, config: TrainConfig) -> list[str]:
        """The config keys in which ``config`` differs from the run this directory holds (none if it holds none).

        Keys added to :class:`TrainConfig` since the run started take their defaults; the keys in
        :data:`EXECUTION_KEYS` (thread count, progress bar, TensorBoard) may differ, and so may the
        :data:`MODE_KEYS` left unset (``null``), since a resumed run keeps the modes it started in.
        """
        if not self.config_file.exists():
            return []
        defaults = json.loads(json.dumps(TrainConfig().to_dict(), default=str))
        previous = defaults | self._read_object(self.config_file)
        current = json.loads(json.dumps(config.to_dict(), default=str))
        unset_modes = {k for k in MODE_KEYS if current.get(k) is None}  # a resumed run keeps the modes it ran in
        return sorted(
            k
            for k in set(previous) | set(current)
            if k not in EXECUTION_KEYS and k not in unset_modes and previous.get(k) != current.get(k)
        )

    @checked_arguments()
    def check_config(self, config: TrainConfig) -> None:
        """Refuse to resume a directory that holds a different experiment (:meth:`changed_keys`). A checkpoint
        whose config.json is gone is resumed on its own identity (checked when it is loaded), with a warning."""
        if not self.config_file.exists() and self.checkpoint_file.exists():
            log.warning(
                "%s is missing beside %s: the run resumes only if the checkpoint's identity is this config's, and "
                "config.json is written again",
                self.config_file,
                self.checkpoint_file.name,
            )
        changed = self.changed_keys(config)
        if changed:
            raise ConfigError(
                f"run directory {self.path} holds a run with a different config (keys {changed}); "
                "resume with the same config or choose another output directory"
            )

    # ------------------------------------------------------------------ writing
    def _remove_stale_temporaries(self) -> list[Path]:
        """Temporary files of atomic writes that a killed process left (``.checkpoint.pt.XXXX``); only
        called while holding the lock, so no live writer owns them."""
        files = (self.config_file, self.run_file, self.init_report_file, self.metrics_file)
        files += (self.diagnostics_file, self.signal_file, self.checkpoint_file)
        prefixes = tuple(f".{f.name}." for f in files) + (".latest.json.",)  # the last: the sharded pointer's
        folders = [self.path]
        if self.sharded_checkpoint_dir.is_dir():
            folders.append(self.sharded_checkpoint_dir)
        stale = [p for d in folders for p in d.iterdir() if p.is_file() and p.name.startswith(prefixes)]
        for path in stale:
            path.unlink()
        return stale

    @checked_arguments()
    def write_start(
        self,
        config: TrainConfig,
        meta: dict[str, Any],
        init_report: dict[str, Any],
        history: list[dict[str, Any]],
        diagnostics: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """The records of a run that starts or resumes; returns the ``run.json`` fields to keep writing.

        A start writes the config, the init report and ``meta``. A resume (``history`` not empty) keeps
        the config and the record of how the run was started, and appends to ``resumes`` how it goes on
        (the epoch, the thread count, the command): a run resumed with another thread count is no longer
        bitwise the uninterrupted run, and its record says so. Both rewrite the metrics to the epochs the
        checkpoint holds (dropping lines of an epoch it does not) and set the status to ``running``.
        """
        previous = self.run_record()
        if history and previous:
            resume = {"from_epoch": len(history)} | {k: meta[k] for k in ("threads", "device", "command") if k in meta}
            meta = {k: v for k, v in previous.items() if k not in ("status", "error")}
            meta["resumes"] = [*previous.get("resumes", []), resume]
        else:
            write_json(self.config_file, config.to_dict())
            write_json(self.init_report_file, init_report)
        write_jsonl(self.metrics_file, history)
        write_jsonl(self.diagnostics_file, diagnostics)
        self.set_status(meta, "running")
        return meta

    def write_signal_at_init(self, rows: list[dict[str, Any]]) -> Path:
        return write_json(self.signal_file, rows)

    @checked_arguments()
    def append_epoch(self, row: dict[str, Any], diagnostics: dict[str, Any] | None = None) -> None:
        """Append an epoch's record (and its diagnostics): each holds its ``"epoch"`` (an int >= 1), which a
        resume, the repair of a damaged run and the reports read."""
        for what, record in (("row", row), ("diagnostics", diagnostics)):
            if record is not None and not is_int(record.get("epoch"), 1):
                raise ValueError(
                    f"RunDir.append_epoch: {what} must hold its 'epoch' (an int >= 1), got {record.get('epoch')!r}"
                )
        append_jsonl(self.metrics_file, row)
        if diagnostics is not None:
            append_jsonl(self.diagnostics_file, diagnostics)

    @checked_arguments()
    def append_diagnostics(self, record: dict[str, Any]) -> None:
        append_jsonl(self.diagnostics_file, record)

    @checked_arguments()
    def set_status(self, meta: dict[str, Any], status: str, **extra: Any) -> Path:
        """Write ``run.json``: ``meta`` plus the status (and e.g. ``error=``)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        return write_json(self.run_file, meta | {"status": status} | extra)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory for one training process: a second one gets :class:`RunDirInUse`.

        An advisory ``flock`` on ``.lock``; the kernel releases it when the process exits, however it
        ends (a SIGKILL leaves nothing to clean up). A run refused before it wrote anything leaves no
        directory behind.
        """
        try:
            check_output_dir(self.path, "run directory")
        except OutputDirError as err:
            raise ConfigError(str(err)) from None
        created = not self.path.exists()
        files = (self.config_file, self.run_file, self.init_report_file, self.metrics_file, self.diagnostics_file)
        folders = [f for f in (*files, self.signal_file, self.checkpoint_file, self.lock_file) if f.is_dir()]
        if folders:
            raise ConfigError(
                f"run directory {self.path}: {', '.join(f.name for f in folders)} should be a file and is a folder; "
                "move it away (or choose another output directory)"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_file, "a+")  # noqa: SIM115 (held for the block)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.seek(0)
                    owner = handle.read().strip() or "another process"
                    raise RunDirInUse(
                        f"run directory {self.path} is in use by {owner}; wait for it to finish (or stop it), "
                        "or choose another output directory"
                    ) from None
                handle.seek(0)
                handle.truncate()
                handle.write(f"process {os.getpid()}\n")
                handle.flush()
            self._remove_stale_temporaries()
            yield
        finally:
            handle.close()
            if created and [p.name for p in self.path.iterdir()] == [self.lock_file.name]:
                self.lock_file.unlink()
                self.path.rmdir()

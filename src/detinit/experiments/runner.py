"""Run every run of a study: sequentially, or in worker processes with one torch thread each."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import threading
import time

from ..contract import checked_arguments
from ..train import RunDir, TrainingDiverged, train
from .study import RunSpec, Study

log = logging.getLogger("detinit.study")


def run_dir(study: Study, spec: RunSpec) -> RunDir:
    """The run directory of one run of a study: ``<study out>/runs/<run id>``."""
    return RunDir(study.out / "runs" / spec.run_id)


def _die_with_parent(poll_seconds: float = 0.5) -> None:
    """Pool initializer: the worker ends itself when the study process dies (even by SIGKILL), so no
    orphan goes on training a run that a re-run of the study would then train twice.

    A daemon thread watches the parent's PID: when the worker is re-parented, it exits at once. (Linux's
    PR_SET_PDEATHSIG would fire when the pool *thread* that started the worker ends, which is at the
    pool's normal close, and a worker killed then hangs ``Pool.join``.) A write in progress is atomic, so
    nothing half-written is left."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="detinit-parent-watch", daemon=True).start()


def _execute(job: tuple[str, str, dict]) -> tuple[str, str, str, float]:
    """Train one run (in a worker process or in-process); never raises, reports the outcome."""
    run_id, out, config_data = job
    from ..train import TrainConfig  # a spawned worker imports here

    start = time.perf_counter()
    try:
        train(TrainConfig.from_dict(config_data), out)
        return run_id, "complete", "", time.perf_counter() - start
    except TrainingDiverged as err:
        return run_id, "diverged", str(err), time.perf_counter() - start
    except Exception as err:  # a broken run must not stop the study; it is reported
        return run_id, "failed", f"{type(err).__name__}: {err}", time.perf_counter() - start


def changed_runs(study: Study) -> dict[str, list[str]]:
    """The runs whose directories hold a run of another config than the study file asks for now (the file was
    edited after they ran), with the keys that differ: they are neither reused nor reported as the study's."""
    changed = {}
    for spec in study.runs:
        keys = run_dir(study, spec).changed_keys(spec.config)
        if keys:
            changed[spec.run_id] = keys
    return changed


@checked_arguments()
def run_study(study: Study) -> dict[str, str]:
    """Run what is not complete yet; returns ``{run_id: status}``. A run whose directory holds another config
    (:func:`changed_runs`) fails alone, with the keys that differ; the others go on."""
    study.out.mkdir(parents=True, exist_ok=True)
    pending = []
    statuses: dict[str, str] = {}
    changed = changed_runs(study)
    for run_id, keys in changed.items():
        statuses[run_id] = "failed"
        log.error(
            "%s: its directory holds a run of another config (keys %s) than the study file asks for now; it is "
            "not reused: move it away (or give the study another out) to run the new settings",
            run_id,
            ", ".join(keys),
        )
    for spec in study.runs:
        if spec.run_id in changed:
            continue
        path = run_dir(study, spec)
        status = path.status()
        if status in ("complete", "diverged"):
            statuses[spec.run_id] = status
            continue
        pending.append((spec, path))
    workers = min(study.workers, len(pending)) or 1  # no idle processes: 8 workers for one run start one
    jobs = []
    for spec, path in pending:
        config = spec.config
        if workers > 1:
            config = dataclasses.replace(config, threads=1, progress=False)
        jobs.append((spec.run_id, str(path.path), config.to_dict()))
    log.info(
        "study %s: %d runs, %d done, %d to run with %d worker(s)",
        study.name,
        len(study.runs),
        len(statuses),
        len(jobs),
        workers,
    )
    if workers == 1:
        results = map(_execute, jobs)
    else:
        pool = mp.get_context("spawn").Pool(workers, initializer=_die_with_parent, maxtasksperchild=1)
        results = pool.imap_unordered(_execute, jobs)
    try:
        for i, (run_id, status, message, seconds) in enumerate(results, 1):
            statuses[run_id] = status
            log.info(
                "[%d/%d] %s: %s in %.0f s%s", i, len(jobs), run_id, status, seconds, f" -- {message}" if message else ""
            )
    finally:
        if workers > 1:
            pool.close()
            pool.join()
    return statuses

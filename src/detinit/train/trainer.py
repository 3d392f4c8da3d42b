"""One training run: a model, a scheme, a dataset, an optimiser, a run directory.

The run directory (its files: :mod:`detinit.train.rundir`) holds everything
needed to read, audit and resume the run; one process at a time trains in it.

Resume: ``train(config, out_dir)`` on a directory with a checkpoint continues
from the last completed epoch (``threads``, ``progress`` and ``tensorboard``
may differ; any other key must match). Everything random in epoch ``e`` is
seeded from ``(data_seed, e)`` (data order, augmentation) or ``(seed, e)``
(dropout, symmetry-breaking noise), and the initialisation from ``init_seed``
(both default to ``seed``), so a study can vary one source of randomness at a
time, and on a CPU with the same thread count a resumed run ends bitwise
identical to an uninterrupted one, however it was killed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..contract import checked_arguments
from ..data import (
    ArrayDataset,
    TokenDataset,
    derived_seed,
    load_dataset,
    make_batches,
    model_shape,
    probe_batch,
    probe_targets,
)
from ..data.batches import BatchIterator, Dataset
from ..diagnostics import initial_weights, measure_diagnostics, signal_at_init
from ..init.apply.end_gain import raw_state_dict
from ..models import create_model, data_kwargs_for
from ..nn import flatten_predictions
from ..symmetry import Mechanism, make_mechanism
from . import distributed, fsdp
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, write_jsonl
from .config import ConfigError, TrainConfig
from .modes import FP32, Modes, resolve_modes
from .param_groups import param_groups
from .rundir import RunDir, RunDirDamaged, config_identity
from .schedule import lr_factor_fn

log = logging.getLogger("detinit.train")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class RunResult:
    """What a finished (or resumed-and-finished) run returns."""

    out_dir: Path
    status: str
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but CUDA is not available on this machine; use device='cpu' or 'auto'")
    return torch.device(name)


@checked_arguments()
def build_model(
    config: TrainConfig,
    dataset: Dataset,
    *,
    device: torch.device | None = None,
    shard: Any = None,
) -> nn.Module:
    """Create and initialise the configured model for ``dataset``: its channels, size and classes for images,
    its vocabulary and context for token windows. With ``device`` it is built on the meta device and
    initialised on ``device``; ``shard`` (e.g. :func:`detinit.train.fsdp.shard_model`) shards it first."""
    try:
        from_data = data_kwargs_for(config.model, model_shape(dataset), config.data)
    except ValueError as err:  # a language model on images, an image model on token windows
        raise ConfigError(str(err)) from None
    clash = {k: v for k, v in config.model_args.items() if k in from_data and v != from_data[k]}
    if clash:  # a model that does not fit its data: targets out of range, inputs of another shape
        key = next(iter(clash))
        raise ConfigError(
            f"model_args.{key}={clash[key]!r}, but data {config.data!r} gives {key}={from_data[key]!r}; drop it "
            "from model_args (the data sets it) or change data_args"
        )
    kwargs = {**from_data, **config.model_args}
    try:
        return create_model(
            config.model,
            init=config.init,
            seed=config.seed_of_init,
            init_options=config.init_options,
            device=device,
            shard=shard,
            **kwargs,
        )
    except ValueError as err:  # model_args or init_options the model or the scheme does not take
        raise ConfigError(f"model {config.model!r} (model_args, init, init_options): {err}") from None


def _run_meta(config: TrainConfig, device: torch.device, dist_info: distributed.DistInfo) -> dict[str, Any]:
    return {
        "task": config.task,
        "seed": config.seed,
        "init_seed": config.seed_of_init,
        "data_seed": config.seed_of_data,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "world_size": dist_info.world_size,
        "parallel": config.parallel if dist_info.joined else None,
        "detinit": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
    }


def _tensorboard(config: TrainConfig, run_dir: RunDir) -> Any:
    if not config.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the tensorboard package is optional
        return None
    return SummaryWriter(str(run_dir.tensorboard_dir))


def _progress(total: int, desc: str, enabled: bool) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


@checked_arguments()
@torch.no_grad()
def evaluate(
    model: nn.Module, data: BatchIterator, dist_info: distributed.DistInfo, modes: Modes = FP32
) -> tuple[float, float]:
    """Mean loss and accuracy per example (per token for sequences) over the whole split (summed over ranks),
    in ``modes`` (autocast and memory format; the model is called as it is, not compiled)."""
    model.eval()
    sums = _Sums(data.device)
    for x, y in data.epoch(0):
        with modes.autocast(x.device):
            logits, y = flatten_predictions(model(modes.inputs(x)), y)
        sums.add(F.cross_entropy(logits.float(), y, reduction="sum"), logits, y)
    loss, acc, count = sums.reduce(dist_info)
    model.train()
    if not count:
        raise ValueError(f"evaluate: data ({type(data).__name__}) holds no example; the mean loss would be 0 / 0")
    return loss, acc


class _Sums:
    """Loss, correct predictions and examples summed over batches on the batches' device, read once at the
    end (no host sync per step: on a GPU a step's ``.item()`` would wait for the step)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device if device.type == "cuda" else torch.device("cpu")
        self.loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self.correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self.count = 0

    def add(self, loss_sum: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """One batch: ``loss_sum`` its summed loss (a 0-dim tensor), ``logits`` and ``targets`` its predictions."""
        self.loss += loss_sum.detach().double()
        self.correct += (logits.argmax(1) == targets).sum()
        self.count += len(targets)

    def reduce(self, dist_info: distributed.DistInfo) -> tuple[float, float, int]:
        """Mean loss, accuracy and examples over every rank (one host sync)."""
        sums = torch.stack([self.loss, self.correct.double(), torch.tensor(self.count, dtype=torch.float64)])
        sums = distributed.all_reduce_sum(sums.to(self.device), dist_info).cpu()
        return float(sums[0] / sums[2]), float(sums[1] / sums[2]), int(sums[2])


def _make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD or AdamW over :func:`param_groups`: 0-dim parameters (scalar biases and gates) get
    ``lr * scalar_lr_factor``, the scales of ``branch_last_norm`` norms ``lr * branch_norm_lr_factor`` and
    the scale of a ``classifier_norm`` ``lr * classifier_norm_lr_factor`` (both start at 0 under ZerO)."""
    groups = param_groups(
        model,
        config.lr,
        scalar_lr_factor=config.scalar_lr_factor,
        branch_norm_lr_factor=config.branch_norm_lr_factor,
        classifier_norm_lr_factor=config.classifier_norm_lr_factor,
    )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
    )


@checked_arguments()
def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = True) -> RunResult:
    """Train as configured, writing (or resuming) the run directory ``out_dir`` (:class:`RunDir`)."""
    config.validate()
    device = resolve_device(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    dist_info = distributed.setup(device.type, sharded=config.parallel == "fsdp")
    if dist_info.joined and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    run_dir = RunDir(out_dir)
    finished = False
    try:
        with run_dir.lock() if dist_info.is_main else contextlib.nullcontext():
            result = _train(config, run_dir, device, dist_info, resume)
        finished = True
        return result
    finally:
        distributed.teardown(dist_info, finished=finished)


@dataclass
class _Run:
    """What the epochs of one run share, built once by :func:`_start`."""

    config: TrainConfig
    run_dir: RunDir
    meta: dict[str, Any]  # the fields of run.json besides the status: seeds, threads, versions, device
    model: nn.Module
    net: nn.Module  # the module that is called: the model, or its DDP / compiled wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    batches: BatchIterator
    test_batches: BatchIterator
    steps_per_epoch: int
    dist_info: distributed.DistInfo
    device: torch.device
    initial: dict[str, torch.Tensor] | None  # weights at init, for rank_update
    modes: Modes = FP32  # bf16 autocast, channels_last, compile (resolved when the run starts or resumes)
    mechanism: Mechanism | None = None
    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def main(self) -> bool:
        """This process writes the run directory (rank 0)."""
        return self.dist_info.is_main

    @property
    def sharded(self) -> bool:
        """The model is sharded with FSDP2 (``parallel: fsdp``): every rank saves and loads its shards."""
        return self.config.parallel == "fsdp"

    def trainer_state(self, epoch: int) -> dict[str, Any]:
        """What a checkpoint holds besides the model and the optimiser."""
        return {
            "run_identity": config_identity(self.config),  # a copy in another run's directory is refused
            "scheduler": self.scheduler.state_dict(),
            "epoch": epoch,
            "history": self.history,
            "diagnostics": self.diagnostics,
        }

    def checkpoint_path(self) -> Path:
        """Where the last epoch's checkpoint is: ``checkpoint.pt``, or the sharded checkpoint's folder."""
        return self.run_dir.sharded_checkpoint_dir if self.sharded else self.run_dir.checkpoint_file

    def has_checkpoint(self) -> bool:
        if self.sharded:
            return fsdp.latest_sharded_checkpoint(self.run_dir.sharded_checkpoint_dir) is not None
        return self.run_dir.checkpoint_file.exists()

    def save_checkpoint(self, epoch: int) -> None:
        """Write the checkpoint of ``epoch`` (rank 0 alone without FSDP, every rank its shards with it)."""
        if self.sharded:
            fsdp.save_sharded_checkpoint(
                self.run_dir.sharded_checkpoint_dir, epoch, self.model, self.optimizer, self.trainer_state(epoch)
            )
        elif self.main:
            with raw_state_dict():  # ZerO's end gains' originals as they are: the resume is bitwise
                state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
            save_checkpoint(self.run_dir.checkpoint_file, state | self.trainer_state(epoch))

    def weights_finite(self) -> bool:
        if self.sharded:
            return fsdp.all_finite(self.model)
        return all(bool(torch.isfinite(p).all()) for p in self.model.parameters())


def _train(
    config: TrainConfig, run_dir: RunDir, device: torch.device, dist_info: distributed.DistInfo, resume: bool
) -> RunResult:
    run_dir.check_config(config)
    if resume and run_dir.is_complete():
        _check_complete(run_dir, config)
        log.info("run %s is already complete; nothing to do", run_dir.path)
        return RunResult(run_dir.path, "complete", run_dir.metrics())
    run, test_set = _start(config, run_dir, device, dist_info)
    started = None
    if resume and run.has_checkpoint():
        _resume(run)
        started = run_dir.run_record().get("modes", {})  # the modes it started in (none recorded: it ran in fp32)
    asked = {"amp": config.amp, "channels_last": config.channels_last, "compile": config.compile}
    run.modes = resolve_modes(asked, run.model, started, sharded=run.sharded, device=device)
    run.modes.apply_(run.model)
    run.meta["modes"] = dataclasses.asdict(run.modes)
    probe = probe_batch(test_set, 256).to(device)  # the fixed batch of every diagnostic of the run
    if run.main:
        run.meta = run_dir.write_start(config, run.meta, run.model.init_report.to_dict(), run.history, run.diagnostics)
        if run.start_epoch == 0 and not run.sharded:  # a sharded model's forward pass needs every rank
            run_dir.write_signal_at_init(signal_at_init(run.model, probe[:64], probe_targets(test_set, 64).to(device)))
    if config.symmetry is not None:
        mechanism = make_mechanism(config.symmetry, seed=config.seed, **config.symmetry_args)
        run.mechanism = None if mechanism.perturbs_once and run.start_epoch > 0 else mechanism.attach(run.model)
    if dist_info.enabled and not run.sharded:
        run.net = nn.parallel.DistributedDataParallel(
            run.model, device_ids=[device.index] if device.type == "cuda" else None
        )
    run.net = run.modes.compiled(run.net)
    if config.diagnostics_every and run.start_epoch == 0:
        run.diagnostics.append(measure_diagnostics(run.model, probe, 0, run.initial))
        if run.main:
            run_dir.append_diagnostics(run.diagnostics[-1])
    writer = _tensorboard(config, run_dir) if run.main else None
    try:
        for epoch in range(run.start_epoch, config.epochs):
            row = _train_epoch(run, epoch)
            if run.sharded:
                fsdp.broadcast_buffers_(run.model)  # one set of BatchNorm statistics for evaluation and checkpoint
            row["test_loss"], row["test_acc"] = evaluate(run.model, run.test_batches, dist_info, run.modes)
            if not math.isfinite(row["test_loss"]):
                _diverged(run, f"the test loss became {row['test_loss']} after epoch {epoch + 1}")
            if not run.weights_finite():
                _diverged(run, f"weights became non-finite in epoch {epoch + 1}")
            run.history.append(row)
            diagnostics = None
            if config.diagnostics_every and (epoch + 1) % config.diagnostics_every == 0:
                diagnostics = measure_diagnostics(run.model, probe, epoch + 1, run.initial)
                run.diagnostics.append(diagnostics)
            run.save_checkpoint(epoch + 1)
            if run.main:
                run_dir.append_epoch(row, diagnostics)
                _log_epoch(run, row, writer)
            distributed.barrier(dist_info)
    finally:
        if run.mechanism is not None:
            run.mechanism.detach()
        if writer is not None:
            writer.close()
    if run.main:
        run_dir.set_status(run.meta, "complete")
    return RunResult(run_dir.path, "complete", run.history)


def _start(
    config: TrainConfig, run_dir: RunDir, device: torch.device, dist_info: distributed.DistInfo
) -> tuple[_Run, ArrayDataset | TokenDataset]:
    """Data, model, optimiser and schedule of a run from its first epoch (and the test set, for the probe)."""
    root = config.data_root
    train_set = load_dataset(
        config.data, "train", root=root, subset=config.train_subset, seed=config.seed_of_data, **config.data_args
    )
    test_set = load_dataset(
        config.data, "test", root=root, subset=config.test_subset, seed=config.seed_of_data, **config.data_args
    )
    if len(train_set) < config.batch_size:
        raise ConfigError(f"batch_size={config.batch_size} is larger than the training set ({len(train_set)})")
    if config.parallel == "fsdp":  # built on meta, sharded, each rank initialising only its shards
        from torch.distributed.device_mesh import init_device_mesh

        mesh = init_device_mesh(device.type, (dist_info.world_size,))
        model = build_model(config, train_set, device=device, shard=lambda m: fsdp.shard_model(m, mesh))
    else:
        model = build_model(config, train_set).to(device)
    initial = initial_weights(model) if config.diagnostics_every else None  # a fresh build is the init, also on resume
    optimizer = _make_optimizer(config, model)
    batches = make_batches(
        train_set,
        config.batch_size,
        shuffle=True,
        drop_last=True,
        augment=config.augment,
        seed=config.seed_of_data,
        device=device,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
        workers=config.data_workers,
    )
    eval_batch = -(-max(config.batch_size, 256) // dist_info.world_size) * dist_info.world_size
    test_batches = make_batches(  # each rank evaluates its shard; evaluate() sums over ranks
        test_set,
        eval_batch,
        device=device,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
        workers=config.data_workers,
    )
    steps_per_epoch = min(len(batches), config.max_steps_per_epoch or len(batches))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor_fn(config, steps_per_epoch))
    run = _Run(
        config,
        run_dir,
        _run_meta(config, device, dist_info),
        model,
        model,
        optimizer,
        scheduler,
        batches,
        test_batches,
        steps_per_epoch,
        dist_info,
        device,
        initial,
    )
    return run, test_set


def _check_complete(run_dir: RunDir, config: TrainConfig) -> None:
    """A complete run's records must be whole before it is reported as complete: metrics.jsonl with a line
    that is not a record, or with fewer epochs than the run, is rewritten from the checkpoint's history (which
    is verified: its digest and the run's identity); where that cannot be done, :class:`RunDirDamaged`."""
    damage = run_dir.damage(config.epochs)
    if damage is None:
        return
    state = None
    if run_dir.checkpoint_file.exists():
        state = load_checkpoint(run_dir.checkpoint_file)
        _check_identity(state, run_dir.checkpoint_file, config)
    if state is None or len(state.get("history", [])) != config.epochs:
        raise RunDirDamaged(
            f"run directory {run_dir.path} says the run is complete, but {damage}, and no checkpoint holds its "
            "history to restore it from; delete the directory to run it again"
        )
    write_jsonl(run_dir.metrics_file, state["history"])
    log.warning("run %s: %s; rewrote metrics.jsonl from the checkpoint's history", run_dir.path, damage)


def _check_identity(state: dict[str, Any], path: Path, config: TrainConfig) -> None:
    """Refuse a checkpoint that another run wrote (its ``run_identity`` is not this run's config's)."""
    found = state.get("run_identity")
    if found != config_identity(config):
        what = (
            "has no run identity (not written by this version of detinit)"
            if found is None
            else ("was written by another run (its config is not this run's)")
        )
        raise CheckpointError(
            f"checkpoint {path} {what}; it cannot be resumed here: delete it (and its .sha256) to restart the "
            "run from epoch 0, or put back this run's own checkpoint"
        )


def _resume(run: _Run) -> None:
    """Load the last completed epoch's checkpoint into ``run``."""
    path = run.checkpoint_path()
    if run.sharded:  # the shards load into the model and optimiser as they are read
        folder = fsdp.latest_sharded_checkpoint(path, verify=True)
        state = fsdp.load_sharded_checkpoint(folder, run.model, run.optimizer)
    else:
        state = load_checkpoint(path, map_location=run.device)
    _check_identity(state, path, run.config)
    try:
        if not run.sharded:
            run.model.load_state_dict(state["model"])
            run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        run.start_epoch, run.history, run.diagnostics = state["epoch"], state["history"], state["diagnostics"]
    except (KeyError, RuntimeError, ValueError) as err:
        raise CheckpointError(
            f"checkpoint {path} does not fit this run's model and optimiser ({type(err).__name__}: "
            f"{str(err)[:300]}); it belongs to another run: choose another output directory"
        ) from None
    log.info("resuming %s from epoch %d", run.run_dir.path, run.start_epoch)


def _log_epoch(run: _Run, row: dict[str, Any], writer: Any) -> None:
    if writer is not None:
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
            writer.add_scalar(key, row[key], row["epoch"])
    unit = batches_unit(run.batches)
    log.info(
        "epoch %d/%d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  lr %.4g  %.0f " + unit + "/s",
        row["epoch"],
        run.config.epochs,
        row["train_loss"],
        row["train_acc"],
        row["test_loss"],
        row["test_acc"],
        row["lr"],
        row[f"{unit}_per_s"],
    )


def _train_epoch(run: _Run, epoch: int) -> dict[str, Any]:
    """One epoch of updates; returns the epoch's training statistics."""
    config, optimizer, steps = run.config, run.optimizer, run.steps_per_epoch
    torch.manual_seed(derived_seed(config.seed, epoch, 2))  # dropout and anything else on the global RNG
    if run.mechanism is not None:
        run.mechanism.reseed(derived_seed(config.seed, epoch, 3))
    run.net.train()
    sums, finite = _Sums(run.device), _FiniteWatch(run.device)
    modes = run.modes
    start = time.perf_counter()
    lr = optimizer.param_groups[0]["lr"]
    with _progress(steps, f"epoch {epoch + 1}/{config.epochs}", config.progress and run.main) as bar:
        for step, (x, y) in enumerate(run.batches.epoch(epoch)):
            if step >= steps:
                break
            lr = optimizer.param_groups[0]["lr"]
            with modes.autocast(run.device):
                logits, y = flatten_predictions(run.net(modes.inputs(x)), y)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
            finite.watch(loss, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if run.sharded:
                fsdp.average_replicated_gradients_(run.model)  # the 0-dim parameters FSDP leaves whole
            optimizer.step()
            run.scheduler.step()
            sums.add(loss.detach().double() * len(y), logits, y)
            if (step + 1) % FINITE_CHECK_STEPS == 0:
                finite.check(run, epoch)
            if bar is not None and hasattr(bar, "update"):
                bar.update(1)
                if step % 10 == 0:  # the progress bar reads the sums: a host sync every 10 steps
                    elapsed = time.perf_counter() - start
                    count = sums.count * run.dist_info.world_size
                    bar.set_postfix(
                        loss=f"{float(sums.loss) / sums.count:.3f}",
                        acc=f"{int(sums.correct) / sums.count:.3f}",
                        per_s=f"{count / max(elapsed, 1e-9):.0f}",
                    )
    finite.check(run, epoch)
    train_loss, train_acc, count = sums.reduce(run.dist_info)
    elapsed = time.perf_counter() - start
    return {
        "epoch": epoch + 1,
        "step": (epoch + 1) * steps,
        "lr": lr,
        "train_loss": train_loss,
        "train_acc": train_acc,
        "seconds": elapsed,
        f"{batches_unit(run.batches)}_per_s": count / elapsed,
    }


FINITE_CHECK_STEPS = 25  # steps between the host's reads of whether a loss became non-finite


class _FiniteWatch:
    """The first step of an epoch whose loss is not finite, kept on the device and read by the host every
    :data:`FINITE_CHECK_STEPS` steps and at the end of the epoch (not after every step, which would wait for
    each step on a GPU). A run that diverges takes at most that many more steps before it stops; the
    checkpoint on disk is still the last good epoch's."""

    def __init__(self, device: torch.device) -> None:
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        self.bad_loss = torch.zeros((), dtype=torch.float32, device=device)

    def watch(self, loss: torch.Tensor, step: int) -> None:
        new = (self.first_bad < 0) & ~torch.isfinite(loss.detach())
        self.first_bad = torch.where(new, step, self.first_bad)
        self.bad_loss = torch.where(new, loss.detach().float(), self.bad_loss)

    def check(self, run: _Run, epoch: int) -> None:
        step = int(self.first_bad)
        if step >= 0:
            _diverged(run, f"loss became {float(self.bad_loss)} at epoch {epoch + 1}, step {step + 1}")


def batches_unit(batches: BatchIterator) -> str:
    """What one training example is: ``"images"``, or ``"tokens"`` for language modelling."""
    return "tokens" if isinstance(batches.dataset, TokenDataset) else "images"


def _diverged(run: _Run, what: str) -> None:
    """Record the run as diverged (``what`` happened) and raise :class:`TrainingDiverged`; the checkpoint
    on disk is the last epoch whose loss and weights were finite."""
    kept = (
        f"the last good checkpoint (epoch {run.history[-1]['epoch']}) is kept in {run.checkpoint_path()}"
        if run.history
        else "no epoch had completed, so there is no checkpoint"
    )
    message = f"training diverged: {what}; {kept}"
    if run.main:
        run.run_dir.set_status(run.meta, "diverged", error=message)
    raise TrainingDiverged(message)

"""One training run: a model, a scheme, a dataset, an optimiser, a run directory.

A run directory holds everything needed to read, audit and resume the run::

    config.json        the resolved configuration
    run.json           seeds (run, init, data), threads, versions, device, world size, status
    init_report.json   what the initialisation did to every parameter
    metrics.jsonl      one line per epoch: losses, accuracies, lr, time, throughput (fsync-ed)
    diagnostics.jsonl  symmetry and rank measures every ``diagnostics_every`` epochs
    checkpoint.pt      model, optimiser, schedule and history at the last completed epoch (atomic)
    tb/                TensorBoard events, when the package is installed

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
import inspect
import json
import logging
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
from ..data import (
    ArrayDataset,
    TokenDataset,
    derived_seed,
    load_dataset,
    make_batches,
    probe_batch,
)
from ..data.batches import BatchIterator
from ..diagnostics import feature_diversity, rank_table
from ..init.schemes import MATRIX_LAYER_TYPES
from ..models import create_model, model_entry
from ..nn import flatten_predictions
from ..symmetry import Mechanism, make_mechanism
from . import distributed
from .checkpoint import append_jsonl, load_checkpoint, read_jsonl, save_checkpoint, write_json, write_jsonl
from .config import ConfigError, TrainConfig
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


def build_model(config: TrainConfig, dataset: ArrayDataset | TokenDataset) -> nn.Module:
    """Create and initialise the configured model for ``dataset``: its channels, size and classes for images,
    its vocabulary and context for token windows."""
    entry = model_entry(config.model)
    tokens = isinstance(dataset, TokenDataset)
    if entry.takes_tokens != tokens:
        kind = "a language model (token ids in)" if entry.takes_tokens else "an image model"
        data_kind = "token windows" if tokens else "images"
        raise ConfigError(
            f"model={config.model!r} is {kind} but data={config.data!r} gives {data_kind}; "
            + ("use data 'kjv' or 'text_file'" if entry.takes_tokens else "use a model such as 'gpt'")
        )
    if tokens:
        kwargs = {**dataset.model_kwargs(), **config.model_args}
    else:
        kwargs = {"num_classes": dataset.num_classes, "in_chans": dataset.in_chans, **config.model_args}
        if "image_size" in inspect.signature(entry.builder).parameters:
            kwargs.setdefault("image_size", dataset.image_size)
    return create_model(
        config.model, init=config.init, seed=config.seed_of_init, init_options=config.init_options, **kwargs
    )


def _run_meta(config: TrainConfig, device: torch.device, dist_info: distributed.DistInfo) -> dict[str, Any]:
    return {
        "seed": config.seed,
        "init_seed": config.seed_of_init,
        "data_seed": config.seed_of_data,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "world_size": dist_info.world_size,
        "detinit": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
    }


def _tensorboard(config: TrainConfig, out: Path) -> Any:
    if not config.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the tensorboard package is optional
        return None
    return SummaryWriter(str(out / "tb"))


def _progress(total: int, desc: str, enabled: bool) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


@torch.no_grad()
def evaluate(model: nn.Module, data: BatchIterator, dist_info: distributed.DistInfo, amp: bool) -> tuple[float, float]:
    """Mean loss and accuracy per example (per token for sequences) over the whole split (summed over ranks)."""
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64)
    for x, y in data.epoch(0):
        with _autocast(amp, x.device):
            logits, y = flatten_predictions(model(x), y)
        sums += torch.tensor(
            [F.cross_entropy(logits.float(), y, reduction="sum").item(), (logits.argmax(1) == y).sum().item(), len(y)],
            dtype=torch.float64,
        )
    sums = distributed.all_reduce_sum(sums.to(_reduce_device(data)), dist_info).cpu()
    model.train()
    return float(sums[0] / sums[2]), float(sums[1] / sums[2])


def _reduce_device(data: BatchIterator) -> torch.device:
    return data.device if data.device.type == "cuda" else torch.device("cpu")


def _autocast(amp: bool, device: torch.device) -> contextlib.AbstractContextManager:
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()


@torch.no_grad()
def measure_diagnostics(
    model: nn.Module, probe: torch.Tensor, epoch: int, initial: dict[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Symmetry and rank measures on a fixed probe batch (model in eval mode, restored after).

    Feature measures need float inputs (images); for token inputs only the
    weight ranks are recorded. ``initial`` (weights at init, by module name)
    adds ``rank_update``, the numerical rank of :math:`W - W_0` per layer.
    """
    was_training = model.training
    model.eval()
    features = feature_diversity(model, probe) if probe.is_floating_point() else []
    ranks = rank_table(model, initial=initial)
    model.train(was_training)
    record: dict[str, Any] = {"epoch": epoch}
    if features:
        record["max_channel_difference"] = max(r.max_channel_difference for r in features)
        record["min_participation_ratio"] = min(r.participation_ratio for r in features)
    record["rank_w_minus_i"] = {r.name: r.rank_w_minus_i for r in ranks if r.rank_w_minus_i is not None}
    record["stable_rank"] = {r.name: r.stable_rank for r in ranks}
    record["numerical_rank"] = {r.name: r.numerical_rank for r in ranks}
    if initial is not None:
        record["rank_update"] = {r.name: r.rank_update for r in ranks}
    return record


def _make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD or AdamW; 0-dim parameters (scalar biases and gates) get ``lr * scalar_lr_factor``, the scales
    of ``branch_last_norm`` layers (0 at init under ZerO, Fixup, zero_init_last) ``lr * branch_norm_lr_factor``."""
    records = model.init_report.records if hasattr(model, "init_report") else []
    end_scales = {r.name for r in records if r.role == "branch_last_norm" and r.name.endswith(".weight")}
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    scalars = [p for _, p in params if p.dim() == 0]
    ends = [p for n, p in params if p.dim() > 0 and n in end_scales]
    groups: list[dict[str, Any]] = [{"params": [p for n, p in params if p.dim() > 0 and n not in end_scales]}]
    if scalars:
        groups.append({"params": scalars, "lr": config.lr * config.scalar_lr_factor})
    if ends:
        groups.append({"params": ends, "lr": config.lr * config.branch_norm_lr_factor})
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
    )


EXECUTION_KEYS = ("threads", "progress", "tensorboard")  # how a run executes, not what it computes


def _check_run_dir(out: Path, config: TrainConfig) -> None:
    """Refuse to resume a run directory that holds a different experiment."""
    saved = out / "config.json"
    if saved.exists():
        defaults = json.loads(json.dumps(TrainConfig().to_dict(), default=str))
        previous = defaults | json.loads(saved.read_text())  # keys added since the run started take their defaults
        current = json.loads(json.dumps(config.to_dict(), default=str))
        changed = sorted(
            k for k in set(previous) | set(current) if k not in EXECUTION_KEYS and previous.get(k) != current.get(k)
        )
        if changed:
            raise ConfigError(
                f"run directory {out} holds a run with a different config (keys {changed}); "
                "resume with the same config or choose another output directory"
            )


def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = True) -> RunResult:
    """Train as configured, writing (or resuming) the run directory ``out_dir``."""
    config.validate()
    out = Path(out_dir)
    device = resolve_device(config.device)
    if (config.amp or config.compile) and device.type != "cuda":
        raise ConfigError("amp and compile are CUDA options; this run is on the CPU (set them to false)")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    dist_info = distributed.setup(device.type)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    try:
        return _train(config, out, device, dist_info, resume)
    finally:
        distributed.teardown(dist_info)


def _train(
    config: TrainConfig, out: Path, device: torch.device, dist_info: distributed.DistInfo, resume: bool
) -> RunResult:
    main = dist_info.is_main
    _check_run_dir(out, config)
    ckpt_path = out / "checkpoint.pt"
    if (
        resume
        and (out / "run.json").exists()
        and json.loads((out / "run.json").read_text()).get("status") == "complete"
    ):
        log.info("run %s is already complete; nothing to do", out)
        return RunResult(out, "complete", read_jsonl(out / "metrics.jsonl"))

    root = config.data_root
    train_set = load_dataset(
        config.data, "train", root=root, subset=config.train_subset, seed=config.seed_of_data, **config.data_args
    )
    test_set = load_dataset(
        config.data, "test", root=root, subset=config.test_subset, seed=config.seed_of_data, **config.data_args
    )
    if len(train_set) < config.batch_size:
        raise ConfigError(f"batch_size={config.batch_size} is larger than the training set ({len(train_set)})")
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

    start_epoch, history, diag_history = 0, [], []
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history, diag_history = state["epoch"], state["history"], state["diagnostics"]
        log.info("resuming %s from epoch %d", out, start_epoch)
    if main:
        write_json(out / "config.json", config.to_dict())
        write_json(out / "init_report.json", model.init_report.to_dict())
        write_jsonl(out / "metrics.jsonl", history)  # drops lines of an epoch the checkpoint does not hold
        write_jsonl(out / "diagnostics.jsonl", diag_history)
        write_json(out / "run.json", _run_meta(config, device, dist_info) | {"status": "running"})

    mechanism: Mechanism | None = None
    if config.symmetry is not None and not (config.symmetry == "weight_noise" and start_epoch > 0):
        mechanism = make_mechanism(config.symmetry, seed=config.seed, **config.symmetry_args).attach(model)
    net: nn.Module = model
    if dist_info.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        net = torch.compile(net)

    probe = probe_batch(test_set, 256).to(device)
    if config.diagnostics_every and start_epoch == 0:
        diag_history.append(measure_diagnostics(model, probe, 0, initial))
        if main:
            append_jsonl(out / "diagnostics.jsonl", diag_history[-1])
    writer = _tensorboard(config, out) if main else None
    try:
        for epoch in range(start_epoch, config.epochs):
            row = _train_epoch(
                config,
                epoch,
                net,
                model,
                optimizer,
                scheduler,
                batches,
                steps_per_epoch,
                mechanism,
                dist_info,
                device,
                out,
                history,
            )
            row["test_loss"], row["test_acc"] = evaluate(model, test_batches, dist_info, config.amp)
            history.append(row)
            if config.diagnostics_every and (epoch + 1) % config.diagnostics_every == 0:
                diag_history.append(measure_diagnostics(model, probe, epoch + 1, initial))
            if main:
                save_checkpoint(
                    ckpt_path,
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "epoch": epoch + 1,
                        "history": history,
                        "diagnostics": diag_history,
                    },
                )
                append_jsonl(out / "metrics.jsonl", row)
                if diag_history and diag_history[-1]["epoch"] == epoch + 1:
                    append_jsonl(out / "diagnostics.jsonl", diag_history[-1])
                if writer is not None:
                    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
                        writer.add_scalar(key, row[key], epoch + 1)
                unit = batches_unit(batches)
                log.info(
                    "epoch %d/%d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  lr %.4g  %.0f " + unit + "/s",
                    epoch + 1,
                    config.epochs,
                    row["train_loss"],
                    row["train_acc"],
                    row["test_loss"],
                    row["test_acc"],
                    row["lr"],
                    row[f"{unit}_per_s"],
                )
            distributed.barrier(dist_info)
    finally:
        if mechanism is not None:
            mechanism.detach()
        if writer is not None:
            writer.close()
    if main:
        write_json(out / "run.json", _run_meta(config, device, dist_info) | {"status": "complete"})
    return RunResult(out, "complete", history)


def _train_epoch(
    config: TrainConfig,
    epoch: int,
    net: nn.Module,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    batches: BatchIterator,
    steps: int,
    mechanism: Mechanism | None,
    dist_info: distributed.DistInfo,
    device: torch.device,
    out: Path,
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """One epoch of updates; returns the epoch's training statistics."""
    torch.manual_seed(derived_seed(config.seed, epoch, 2))  # dropout and anything else on the global RNG
    if mechanism is not None:
        mechanism.reseed(derived_seed(config.seed, epoch, 3))
    net.train()
    sums = torch.zeros(3, dtype=torch.float64)
    start = time.perf_counter()
    lr = optimizer.param_groups[0]["lr"]
    with _progress(steps, f"epoch {epoch + 1}/{config.epochs}", config.progress and dist_info.is_main) as bar:
        for step, (x, y) in enumerate(batches.epoch(epoch)):
            if step >= steps:
                break
            lr = optimizer.param_groups[0]["lr"]
            with _autocast(config.amp, device):
                logits, y = flatten_predictions(net(x), y)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
            if not torch.isfinite(loss):
                _diverged(config, out, epoch, step, float(loss.detach()), history, dist_info, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            sums += torch.tensor(
                [loss.item() * len(y), (logits.argmax(1) == y).sum().item(), len(y)], dtype=torch.float64
            )
            if bar is not None and hasattr(bar, "update"):
                bar.update(1)
                if step % 10 == 0:
                    elapsed = time.perf_counter() - start
                    bar.set_postfix(
                        loss=f"{sums[0] / sums[2]:.3f}",
                        acc=f"{sums[1] / sums[2]:.3f}",
                        per_s=f"{sums[2] * dist_info.world_size / max(elapsed, 1e-9):.0f}",
                    )
    elapsed = time.perf_counter() - start
    sums = distributed.all_reduce_sum(sums.to(device if device.type == "cuda" else "cpu"), dist_info).cpu()
    return {
        "epoch": epoch + 1,
        "step": (epoch + 1) * steps,
        "lr": lr,
        "train_loss": float(sums[0] / sums[2]),
        "train_acc": float(sums[1] / sums[2]),
        "seconds": elapsed,
        f"{batches_unit(batches)}_per_s": float(sums[2]) / elapsed,
    }


def batches_unit(batches: BatchIterator) -> str:
    """What one training example is: ``"images"``, or ``"tokens"`` for language modelling."""
    return "tokens" if isinstance(batches.dataset, TokenDataset) else "images"


def initial_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every Linear / conv weight, by module name (the reference of ``rank_update``)."""
    return {name: m.weight.detach().clone() for name, m in model.named_modules() if isinstance(m, MATRIX_LAYER_TYPES)}


def _diverged(
    config: TrainConfig,
    out: Path,
    epoch: int,
    step: int,
    loss: float,
    history: list[dict[str, Any]],
    dist_info: distributed.DistInfo,
    device: torch.device,
) -> None:
    kept = (
        f"the last good checkpoint (epoch {history[-1]['epoch']}) is kept in {out / 'checkpoint.pt'}"
        if history
        else "no epoch had completed, so there is no checkpoint"
    )
    message = f"training diverged: loss became {loss} at epoch {epoch + 1}, step {step + 1}; {kept}"
    if dist_info.is_main:
        write_json(out / "run.json", _run_meta(config, device, dist_info) | {"status": "diverged", "error": message})
    raise TrainingDiverged(message)

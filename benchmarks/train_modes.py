"""Milliseconds per SGD step of the papers' models and the baselines in each execution mode: fp32 eager,
channels_last, torch.compile, bf16 autocast, and their combinations.

A step is what the trainer does for one batch: forward, cross-entropy (in fp32), zero_grad, backward, the
optimiser's step (SGD with momentum). Each mode builds the model afresh (the model's own scheme, seed 0),
runs ``--warmup`` steps (compilation happens there; their seconds are printed) and reports the median of
``--steps`` timed steps, all on the same batch, in one process, on ``--threads`` threads.

    python benchmarks/train_modes.py                       # every model, every mode
    python benchmarks/train_modes.py --models resnet20 --modes fp32 bf16+cl

The trainer's cost over a bare loop in each mode is a section of benchmarks/run_benchmarks.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from detinit._table import format_table  # noqa: E402
from detinit.argtypes import non_negative_int, positive_int  # noqa: E402
from detinit.models import create_model  # noqa: E402
from detinit.nn import flatten_predictions  # noqa: E402
from detinit.train.modes import MODE_NAMES, Modes, native_bf16  # noqa: E402

# name: (registered model, constructor arguments, batch shape, "images" or "tokens")
MODELS: dict[str, tuple[str, dict, tuple[int, ...], str]] = {
    "resnet20": ("resnet20", {"num_classes": 10, "in_chans": 1}, (128, 1, 28, 28), "images"),
    "zero_resnet18 (AugSkip)": ("zero_resnet18", {"num_classes": 10, "in_chans": 3}, (32, 3, 32, 32), "images"),
    "constnet (WRN-16-4)": ("constnet_16_4", {"num_classes": 10, "in_chans": 3}, (32, 3, 32, 32), "images"),
    "gpt": ("gpt", {"vocab_size": 256, "context": 64}, (32, 64), "tokens"),
    "vit": ("vit", {"num_classes": 10, "in_chans": 1, "image_size": 28}, (128, 1, 28, 28), "images"),
}


def batch(shape: tuple[int, ...], kind: str, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if kind == "tokens":
        tokens = torch.randint(0, classes, (shape[0], shape[1] + 1), generator=g)
        return tokens[:, :-1], tokens[:, 1:]
    return torch.randn(shape, generator=g), torch.randint(0, classes, (shape[0],), generator=g)


def bare_steps(name: str, modes: Modes, warmup: int, steps: int) -> tuple[float, float]:
    """(compile-and-warm-up seconds, median ms a step) of a bare training loop in ``modes``."""
    registered, kwargs, shape, kind = MODELS[name]
    model = create_model(registered, **kwargs)
    x, y = batch(shape, kind, kwargs.get("vocab_size", kwargs.get("num_classes")))
    net = modes.prepare(model)
    x = modes.inputs(x)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step() -> None:
        with modes.autocast(x.device):
            logits, targets = flatten_predictions(net(x), y)
            loss = F.cross_entropy(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    for _ in range(warmup):
        step()
    warm = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return warm, statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), metavar="MODEL")
    parser.add_argument("--modes", nargs="+", default=list(MODE_NAMES), choices=list(MODE_NAMES), metavar="MODE")
    parser.add_argument("--warmup", type=non_negative_int, default=3)
    parser.add_argument("--steps", type=positive_int, default=12)
    parser.add_argument("--threads", type=positive_int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    print(f"torch {torch.__version__}, {args.threads} thread(s), {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {native_bf16(cpu)}")  # fmt: skip
    for name in args.models:
        rows, base = [], None
        for mode in args.modes:
            warm, ms = bare_steps(name, MODE_NAMES[mode], args.warmup, args.steps)
            base = base or ms
            rows.append([mode, f"{ms:.0f}", f"{base / ms:.2f}", f"{warm:.1f}"])
        _, _, shape, _ = MODELS[name]
        print(f"\n{name}, batch {'x'.join(map(str, shape))}")
        print(format_table(["mode", "ms / step", "speed-up", "warm-up s"], rows))


if __name__ == "__main__":
    main()

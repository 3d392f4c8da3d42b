"""Benchmarks: initialisation, the Hadamard transform, the extra transforms in a step, trainer overhead.

    .venv/bin/python benchmarks/run_benchmarks.py [--quick] [--threads N] [--out docs/benchmarks.md]

Each pair is timed in the same run, as the median of repeated measurements after a warm-up.
Prints one table per section and writes them, with the machine and the command, to --out.
Peak extra memory of an initialiser is measured in a fresh subprocess as the growth of the
process's peak resident set size (ru_maxrss) while the initialiser runs on an existing tensor.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from detinit import create_model, initialize  # noqa: E402
from detinit._table import format_table  # noqa: E402
from detinit.argtypes import output_file, positive_int  # noqa: E402
from detinit.data import Batches, load_dataset  # noqa: E402
from detinit.init import hadamard, zero_  # noqa: E402
from detinit.nn import HadamardTransform  # noqa: E402
from detinit.train import TrainConfig, train  # noqa: E402
from detinit.train.modes import MODE_NAMES, Modes  # noqa: E402


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


# ----------------------------------------------------------------------------- initialisation
INIT_SHAPES = [(4096, 4096), (16384, 4096), (512, 512, 3, 3), (4096, 1024), (2048, 512, 3, 3), (1000, 512)]


def _torch_default(w: torch.Tensor) -> None:
    torch.nn.init.kaiming_uniform_(w, a=5**0.5)  # what nn.Linear / nn.Conv2d reset_parameters() do


def bench_init(repeats: int) -> tuple[list[str], list[list[str]]]:
    rows = []
    for shape in INIT_SHAPES:
        w = torch.empty(shape)
        t_zero = median_time(lambda: zero_(w), repeats)
        t_torch = median_time(lambda: _torch_default(w), repeats)
        p, q = shape[0], shape[1]
        rule = "identity" if p == q else ("partial identity" if p < q else "Hadamard block")
        mem = peak_extra_memory(shape)
        weight_mb = w.numel() * 4 / 2**20
        rows.append(
            [
                "x".join(map(str, shape)),
                rule,
                ms(t_zero),
                ms(t_torch),
                f"{t_zero / t_torch:.2f}",
                f"{weight_mb:.1f}",
                f"{mem:.1f}",
            ]
        )
    headers = [
        "weight shape",
        "ZerO case",
        "zero_ ms",
        "kaiming_uniform_ ms (torch default)",
        "ratio",
        "weight MiB",
        "zero_ peak extra MiB",
    ]
    return headers, rows


def peak_extra_memory(shape: tuple[int, ...]) -> float:
    """Growth of peak RSS (MiB) while zero_ runs on an already allocated, touched tensor."""
    code = (
        "import resource, torch; from detinit.init import zero_; "
        f"w = torch.ones({shape}); before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "zero_(w); after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; print((after - before) / 1024)"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip())


def _reset_parameters(model: nn.Module) -> None:
    for module in model.modules():
        if hasattr(module, "reset_parameters") and module is not model:
            module.reset_parameters()


def bench_model_init(repeats: int) -> tuple[list[str], list[list[str]]]:
    rows = []
    for name, kwargs in (("resnet50", {"num_classes": 1000}), ("zero_resnet50_imagenet", {}), ("resnet18", {})):
        model = create_model(name, **kwargs)
        t_zero = median_time(lambda: initialize(model, "zero"), repeats)
        t_torch = median_time(lambda: _reset_parameters(model), repeats)
        t_kaiming = median_time(lambda: initialize(model, "kaiming"), repeats)
        n = sum(p.numel() for p in model.parameters())
        rows.append([name, f"{n / 1e6:.1f} M", ms(t_zero), ms(t_torch), f"{t_zero / t_torch:.2f}", ms(t_kaiming)])
    return [
        "model",
        "parameters",
        "initialize(zero) ms",
        "reset_parameters() ms (torch default)",
        "ratio",
        "initialize(kaiming) ms",
    ], rows


def bench_transformer_init(repeats: int) -> tuple[list[str], list[list[str]]]:
    """GPT-2 small (124 M parameters, vocabulary 50,257, context 1,024, tied head): every scheme against torch."""
    model = create_model("gpt2_small")
    n = sum(p.numel() for p in model.parameters())
    t_torch = median_time(lambda: _reset_parameters(model), repeats)
    rows = []
    for scheme in ("zero", "gpt2", "tfixup", "xavier"):
        t = median_time(lambda: initialize(model, scheme), repeats)
        rows.append([f"gpt2_small ({n / 1e6:.1f} M)", scheme, ms(t), ms(t_torch), f"{t / t_torch:.2f}"])
    return ["model", "scheme", "initialize() ms", "reset_parameters() ms (torch default)", "ratio"], rows


# ----------------------------------------------------------------------------- Hadamard transform
def bench_hadamard(repeats: int, channels: list[int]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for c in channels:
        x = torch.randn(32, c, 8, 8)
        dense = hadamard(c, normalized=True)
        transform = HadamardTransform(c)
        t_fast = median_time(lambda: transform(x), repeats)
        t_dense = median_time(lambda: torch.matmul(x.permute(0, 2, 3, 1), dense).permute(0, 3, 1, 2), repeats)
        t_build_ours = median_time(lambda: hadamard(c, normalized=True), repeats)
        t_build_scipy = median_time(lambda: torch.from_numpy(scipy.linalg.hadamard(c)).float() / c**0.5, repeats)
        rows.append([str(c), ms(t_fast), ms(t_dense), f"{t_dense / t_fast:.2f}", ms(t_build_ours), ms(t_build_scipy)])
    return [
        "channels",
        "fast WHT ms",
        "dense matmul ms",
        "dense / fast",
        "build H: detinit ms",
        "build H: scipy ms",
    ], rows


def bench_extra_transforms(repeats: int) -> tuple[list[str], list[list[str]]]:
    """One SGD step of a ZerO ResNet with and without its fixed Hadamard transforms."""
    rows = []
    for name, in_chans, size, batch in (("zero_resnet20", 1, 28, 128), ("zero_resnet18", 3, 32, 32)):
        x, y = torch.randn(batch, in_chans, size, size), torch.randint(0, 10, (batch,))
        times = {}
        for variant in ("with", "without"):
            model = create_model(name, in_chans=in_chans, init="kaiming")
            if variant == "without":
                for parent in model.modules():
                    for child_name, child in parent.named_children():
                        if isinstance(child, HadamardTransform):
                            setattr(parent, child_name, nn.Identity())
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

            def step() -> None:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()

            times[variant] = median_time(step, repeats)
        overhead = times["with"] / times["without"] - 1
        rows.append(
            [
                f"{name} (batch {batch}, {in_chans}x{size}x{size})",
                ms(times["with"]),
                ms(times["without"]),
                f"{overhead * 100:+.1f} %",
            ]
        )
    return ["network", "step with transforms ms", "step without ms", "overhead"], rows


# ----------------------------------------------------------------------------- trainer overhead
def bench_trainer(steps: int, mode_names: list[str], repeats: int = 5) -> tuple[list[str], list[list[str]]]:
    """What ``detinit train`` adds to a step, in each execution mode, measured where it can be seen.

    On ResNet-20 the trainer's few extra operations a step (the loss and correct-count sums, the non-finite
    watch, the scheduler) are below this machine's 10-30 % noise between runs, so they are measured on the
    MLP 784-784-1024-1024-10 (a step of about a millisecond, the same 128 x 10 logits and the same extra
    work): overhead = median trainer step - median bare step over ``repeats`` alternations of ``4 * steps``
    steps, and it is given as a share of the bare ResNet-20 step in the same mode (median of 3). The
    second of two epochs is timed (the first compiles and warms up)."""
    rows = []
    for name in mode_names:
        modes = MODE_NAMES[name]
        mlp = {"bare": [], "detinit": []}
        for _ in range(repeats):  # alternated, so a slow spell of the machine hits both
            mlp["detinit"].append(_trainer_step_seconds("mnist_mlp", 4 * steps, modes))
            mlp["bare"].append(_bare_step_seconds("mnist_mlp", 4 * steps, modes))
        resnet = statistics.median(_bare_step_seconds("resnet20", steps, modes) for _ in range(3))
        bare, trained = statistics.median(mlp["bare"]), statistics.median(mlp["detinit"])
        overhead = trained - bare
        rows.append(
            [
                name,
                f"{bare * 1e3:.2f}",
                f"{trained * 1e3:.2f}",
                f"{overhead * 1e3:+.3f}",
                f"{resnet * 1e3:.0f}",
                f"{100 * overhead / resnet:+.2f} %",
            ]
        )
    header = [
        "mode",
        "MLP bare ms / step",
        "MLP detinit train ms / step",
        "trainer adds ms / step",
        "ResNet-20 bare ms / step",
        "added to a ResNet-20 step",
    ]
    return header, rows


def _synthetic(steps: int) -> dict[str, int]:
    return {"num_examples": 128 * steps, "image_size": 28}


def _trainer_step_seconds(model: str, steps: int, modes: Modes) -> float:
    """Seconds per step of the second of two epochs of ``detinit train``."""
    config = TrainConfig(
        model=model,
        data="synthetic",
        data_args=_synthetic(steps),
        epochs=2,
        batch_size=128,
        lr=0.05,
        progress=False,
        tensorboard=False,
        test_subset=128,
        schedule="constant",
        amp=modes.amp,
        channels_last=modes.channels_last,
        compile=modes.compile,
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, tmp)
    return 128 / result.final["images_per_s"]


def _bare_step_seconds(model_name: str, steps: int, modes: Modes) -> float:
    """Seconds per step of the second of two epochs of a 20-line loop in ``modes``."""
    data = load_dataset("synthetic", "train", **_synthetic(steps))
    model = create_model(model_name, in_chans=1, num_classes=10)
    net = modes.prepare(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    batches = Batches(data, 128, shuffle=True)
    for epoch in range(2):
        start, n = time.perf_counter(), 0
        for x, y in batches.epoch(epoch):
            with modes.autocast(x.device):
                loss = F.cross_entropy(net(modes.inputs(x)).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += 1
    return (time.perf_counter() - start) / n


KEEP_MARKER = "<!-- notes below this line are written by hand and kept by run_benchmarks.py -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes (a smoke run)")
    parser.add_argument("--threads", type=positive_int, default=torch.get_num_threads())
    parser.add_argument("--out", type=output_file, default="docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 9
    channels = [16, 64, 256] if args.quick else [16, 64, 256, 1024, 4096]
    sections = [
        ("Initialisation of single tensors (CPU, float32)", bench_init(repeats)),
        ("Initialisation of whole models", bench_model_init(max(3, repeats // 3))),
        ("Initialisation of a GPT-2-small-sized Transformer", bench_transformer_init(3)),
        ("Hadamard transform over channels, input (32, C, 8, 8)", bench_hadamard(repeats, channels)),
        (
            "One SGD step of a ZerO ResNet with and without its fixed Hadamard transforms",
            bench_extra_transforms(repeats),
        ),
        (
            "Trainer overhead: batch 128, synthetic 1x28x28 data, in each execution mode",
            bench_trainer(8 if args.quick else 24, ["fp32", "bf16+cl"] if args.quick else list(MODE_NAMES)),
        ),
    ]
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    command = "python benchmarks/run_benchmarks.py " + " ".join(sys.argv[1:])
    lines = [
        "# Benchmarks",
        "",
        f"- machine: {machine}",
        f"- command: `{command.strip()}`",
        f"- date: {time.strftime('%Y-%m-%d')}",
        "- times: median of repeated runs after 2 warm-up runs",
        "",
    ]
    for title, (headers, rows) in sections:
        print(f"\n{title}\n{format_table(headers, rows)}")
        lines += [f"## {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
    out = Path(args.out)
    if out.is_file() and KEEP_MARKER in out.read_text():  # hand-written notes below the marker are kept
        notes = out.read_text().split(KEEP_MARKER, 1)[1]
        lines += ["", KEEP_MARKER + notes.rstrip("\n")]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

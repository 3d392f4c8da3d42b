"""Initialisation speed and peak memory: whole models against a memset, from the meta device, and under FSDP2.

    .venv/bin/python benchmarks/sharded_init.py            # about 3 minutes on 2 CPU cores
    .venv/bin/python benchmarks/sharded_init.py --quick    # a smaller sharded model

Tables (docs/benchmarks.md, "Sharded and meta-device initialisation"):

1. ``initialize(model, "zero")`` on a model already on the CPU, against ``p.zero_()`` on every parameter (the
   least any initialisation can cost: one write of each value). One thread; the two are timed in turn, 11
   pairs, each after a warm-up call: medians of the times, and the median of the pairs' ratios (this VM's
   speed drifts by up to 2x over minutes, which a ratio of separate medians takes in).
   Then the fixed cost per tensor: 200 ``Linear(16, 16)`` layers (400 tensors of 256 and 16 values, where
   the fixed costs are all there is), ``initialize`` against torch's own ``reset_parameters()`` and
   ``nn.init.zeros_``, in microseconds per tensor: the four timed in turn, 11 rounds, medians, and the
   median ratio to ``reset_parameters()`` within a round. Once more with ``Linear(16 + i, 16)``: no two
   layers alike, so ``initialize`` builds a rule for each (it builds one per layer geometry).
   With transformers installed, the same for Hugging Face's GPT-2, whose ``initialize`` also traces a forward
   pass (timed alone too).
2. The same models built on the meta device and materialised by ``initialize(model, "zero", device="cpu")``:
   time, and the growth of the process's peak RSS over the parameters' size (1.0 = no second copy). Each
   row runs in a fresh process, so that its peak is its own.
3. A GPT-2-XL-shaped model (48 blocks, width 1600, vocabulary 50,257: 1.56 B parameters) built on meta,
   sharded with FSDP2 ``fully_shard`` over 1 and 2 gloo processes (one thread each) and initialised with
   ``initialize(model, "zero", device="cpu")``: seconds and peak RSS growth per rank. The first call also
   takes the kernel's fresh pages; ``initialize(model, "zero")`` again on the same pages (median of 3) is
   the fill alone, set against a memset of the rank's shards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from run_benchmarks import median_time  # benchmarks/ is on sys.path when a script there runs

from detinit import create_model, initialize
from detinit._table import format_table
from detinit.models import model_entry

MODELS = ("resnet50", "zero_resnet50_imagenet", "gpt2_small")
XL = {"depth": 48, "width": 1600, "heads": 25, "tie_weights": True}  # GPT-2 XL's shape
QUICK = {"depth": 8, "width": 1024, "heads": 16, "tie_weights": True}


def reset_peak_rss() -> None:
    """Start the peak RSS (VmHWM) afresh at the current RSS (Linux: ``clear_refs`` 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mib() -> float:
    """The peak RSS since :func:`reset_peak_rss` (VmHWM, /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no VmHWM: the process's peak


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def param_mib(model: torch.nn.Module) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


PAIRS = 11  # memset and initialize timed in turn, each after a warm-up call


def memset_row(name: str) -> list[str]:
    model = create_model(name)
    params = list(model.parameters())

    def memset() -> None:
        with torch.no_grad():
            for p in params:
                p.zero_()

    options = model_entry(name).init_options("zero", None)
    memsets, inits = [], []
    for _ in range(PAIRS):  # interleaved, so that a slow spell of the machine slows both alike
        memsets.append(median_time(memset, 1, warmup=1))
        inits.append(median_time(lambda: initialize(model, "zero", **options), 1, warmup=1))
    ratio = statistics.median(i / m for i, m in zip(inits, memsets))
    count = sum(p.numel() for p in params)
    t_memset, t_zero = statistics.median(memsets) * 1e3, statistics.median(inits) * 1e3
    return [name, f"{count / 1e6:.1f} M", len(params), f"{t_memset:.1f}", f"{t_zero:.1f}", f"{ratio:.2f}"]


def hugging_face_row() -> list[str] | None:
    """Hugging Face's GPT-2 (``GPT2LMHeadModel`` from its default config, 124 M; ``None`` without transformers):
    ``initialize`` traces one forward pass to find the roles, then fills; its ``Conv1D`` weights are stored
    ``(in, out)``. Memset, ``initialize(model, "zero")`` and the trace alone (``trace_roles`` on the input
    ``initialize`` infers), timed in turn."""
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
        from transformers.utils import logging as hf_logging
    except ImportError:
        return None
    from detinit.init.roles.example_inputs import infer_example_inputs
    from detinit.init.roles.traced import trace_roles

    hf_logging.set_verbosity_error()
    model = GPT2LMHeadModel(GPT2Config())
    params, example = list(model.parameters()), infer_example_inputs(model)

    def memset() -> None:
        with torch.no_grad():
            for p in params:
                p.zero_()

    times: list[list[float]] = [[], [], []]
    for _ in range(PAIRS):
        for spent, fn in zip(times, (memset, lambda: initialize(model, "zero"), lambda: trace_roles(model, example))):
            spent.append(median_time(fn, 1, warmup=1))
    t_memset, t_init, t_trace = (statistics.median(t) * 1e3 for t in times)
    ratio = statistics.median(i / m for i, m in zip(times[1], times[0]))
    untraced = statistics.median((i - t) / m for i, t, m in zip(*times[1:], times[0]))
    count = sum(p.numel() for p in params)
    return ["hugging face gpt2", f"{count / 1e6:.1f} M", len(params), f"{t_memset:.1f}", f"{t_init:.1f}",
            f"{t_trace:.1f}", f"{ratio:.2f}", f"{untraced:.2f}"]  # fmt: skip


TINY_LAYERS = 200


def tiny_layers(repeated: bool) -> torch.nn.Sequential:
    """``TINY_LAYERS`` small Linear layers: all ``Linear(16, 16)`` (one geometry: ``initialize`` builds one rule,
    as for a deep model's repeated blocks), or ``Linear(16 + i, 16)``, each its own geometry and rule."""
    return torch.nn.Sequential(*[torch.nn.Linear(16 + (0 if repeated else i), 16) for i in range(TINY_LAYERS)])


def per_tensor_rows(repeated: bool = True) -> list[list[str]]:
    """Microseconds per tensor of whole-model initialisers on many tiny layers (fixed costs only)."""
    model = tiny_layers(repeated)
    params = list(model.parameters())

    def torch_reset() -> None:
        for layer in model:
            layer.reset_parameters()

    def torch_zeros() -> None:
        for p in params:
            torch.nn.init.zeros_(p)

    cases = [
        ("torch: reset_parameters() of each layer", torch_reset),
        ("torch: nn.init.zeros_ on each tensor", torch_zeros),
        ("detinit: initialize(model, 'zero')", lambda: initialize(model, "zero")),
        ("detinit: initialize(model, 'kaiming')", lambda: initialize(model, "kaiming")),
    ]
    for _, fn in cases:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(PAIRS):  # in turn, as in memset_row
        for spent, (_, fn) in zip(times, cases):
            spent.append(median_time(fn, 1, warmup=0))
    reference = times[0]
    return [
        [name, f"{statistics.median(spent) * 1e6 / len(params):.1f}",
         f"{statistics.median(t / r for t, r in zip(spent, reference)):.2f}"]
        for (name, _), spent in zip(cases, times)
    ]  # fmt: skip


def meta_row(name: str) -> dict[str, float]:
    """In a fresh process: build ``name`` on meta, materialise and initialise it on the CPU."""
    initialize(torch.nn.Linear(64, 256), "zero")  # first-call allocations are not the model's
    reset_peak_rss()
    before = rss_mib()
    with torch.device("meta"):
        model = model_entry(name).builder()
    start = time.perf_counter()
    initialize(model, "zero", device="cpu", **model_entry(name).init_options("zero", None))
    seconds = time.perf_counter() - start
    return {"ms": seconds * 1e3, "growth": (peak_rss_mib() - before) / param_mib(model), "mib": param_mib(model)}


def _fully_shard(model: torch.nn.Module) -> None:
    from torch.distributed.fsdp import fully_shard

    for block in model.blocks:
        fully_shard(block)
    fully_shard(model)


def _sharded_worker(rank: int, world: int, store: str, shape: dict, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    initialize(torch.nn.Linear(64, 256), "zero")  # first-call allocations are not the model's
    reset_peak_rss()
    before = rss_mib()
    with torch.device("meta"):
        model = model_entry("gpt").builder(vocab_size=50257, context=1024, **shape)
    _fully_shard(model)
    dist.barrier()
    start = time.perf_counter()
    initialize(model, "zero", device="cpu")
    seconds = time.perf_counter() - start
    peak = peak_rss_mib() - before
    shards = [p.to_local() for p in model.parameters()]

    def memset() -> None:
        with torch.no_grad():
            for shard in shards:
                shard.zero_()

    again = median_time(lambda: initialize(model, "zero"), 3, warmup=1)  # the same pages: the fill alone
    row = {
        "rank": rank, "s": seconds, "again": again, "memset": median_time(memset, 3, warmup=1), "peak": peak,
        "local": sum(t.numel() * t.element_size() for t in shards) / 2**20, "total": param_mib(model),
    }  # fmt: skip
    Path(f"{out}.{rank}").write_text(json.dumps(row))
    dist.barrier()
    dist.destroy_process_group()


def sharded_rows(shape: dict) -> list[list[str]]:
    rows = []
    for world in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            out = f"{tmp}/row"
            mp.spawn(_sharded_worker, args=(world, f"{tmp}/store", shape, out), nprocs=world)
            for rank in range(world):
                r = json.loads(Path(f"{out}.{rank}").read_text())
                rows.append([
                    str(world), str(rank), f"{r['total'] / 1024:.2f}", f"{r['local'] / 1024:.2f}",
                    f"{r['s']:.2f}", f"{r['again']:.2f}", f"{r['memset']:.2f}", f"{r['again'] / r['memset']:.2f}",
                    f"{r['peak'] / 1024:.2f}", f"{r['peak'] / r['total']:.2f}",
                ])  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller sharded model")
    parser.add_argument("--meta-row", help=argparse.SUPPRESS)  # internal: one meta-device row, as JSON
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.meta_row:
        print(json.dumps(meta_row(args.meta_row)))
        return 0
    rows = [memset_row(name) for name in MODELS]
    print("whole model, already on the CPU: initialize(zero) against a memset of every parameter (1 thread)")
    headers = ["model", "parameters", "tensors", "memset ms", "initialize(zero) ms", "ratio"]
    print(format_table(headers, rows))
    hugging_face = hugging_face_row()
    if hugging_face is not None:
        print("\na Hugging Face model: initialize traces a forward pass, then fills (1 thread)")
        headers = ["model", "parameters", "tensors", "memset ms", "initialize(zero) ms", "of which trace ms", "ratio",
                   "ratio without the trace"]  # fmt: skip
        print(format_table(headers, [hugging_face]))
    for repeated, layers in ((True, "Linear(16, 16)"), (False, "Linear(16 + i, 16), no geometry repeated")):
        print(f"\nfixed cost per tensor: {TINY_LAYERS} {layers} layers, {2 * TINY_LAYERS} tensors (1 thread)")
        print(format_table(["initialiser", "us per tensor", "/ reset_parameters()"], per_tensor_rows(repeated)))
    meta = []
    for name in MODELS:
        done = subprocess.run(
            [sys.executable, __file__, "--meta-row", name], capture_output=True, text=True, check=True
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        meta.append([name, f"{r['mib']:.0f}", f"{r['ms']:.1f}", f"{r['growth']:.2f}"])
    print("\nbuilt on meta, initialize(zero, device='cpu') in a fresh process")
    print(format_table(["model", "parameters MiB", "ms", "peak RSS growth / parameters"], meta))
    shape = QUICK if args.quick else XL
    print(f"\nGPT {shape} on meta, FSDP2 fully_shard over gloo ranks, initialize(zero, device='cpu')")
    headers = ["ranks", "rank", "model GiB", "rank's shard GiB", "init from meta s", "init again s",
               "memset of shard s", "again / memset", "peak RSS growth GiB", "growth / model"]  # fmt: skip
    print(format_table(headers, sharded_rows(shape)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

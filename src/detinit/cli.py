"""Command line: ``detinit demo | list``.

``detinit demo`` builds a ZerO ResNet, initialises it, and prints what the
initialisation did and what it means at step 0: the per-parameter report,
the zeros-and-ones check, the output at init and which parameters receive a
gradient in the first SGD steps.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from . import __version__
from .diagnostics import gradient_at_init
from .init import check_zero_one, list_schemes
from .models import create_model, list_models, model_entry


def _demo_batch(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch_size, args.in_chans, args.image_size, args.image_size, generator=g)
    return x, torch.randint(0, args.num_classes, (args.batch_size,), generator=g)


def run_demo(args: argparse.Namespace) -> int:
    """Initialise a model and print the report and the step-0 diagnostics."""
    torch.set_num_threads(args.threads)
    model = create_model(args.model, init=args.init, num_classes=args.num_classes, in_chans=args.in_chans,
                         seed=args.seed)
    report = model.init_report
    n_params = sum(p.numel() for p in model.parameters())
    print(f"detinit {__version__} (torch {torch.__version__}) -- {args.model}: {model_entry(args.model).description}")
    print(f"{n_params:,} parameters; input {args.in_chans}x{args.image_size}x{args.image_size}, "
          f"{args.num_classes} classes\n")
    print(report if args.full_report else _short_report(report))
    print()
    print(check_zero_one(model))
    print(check_zero_one(model, mode="official"))

    x, y = _demo_batch(args)
    print(f"\nOne batch of {args.batch_size} standard-normal images (seed {args.seed}), labels uniform:")
    with torch.no_grad():
        logits = model.eval()(x)
    model.train()
    loss = F.cross_entropy(logits, y).item()
    print(f"  max |logit| at init      {logits.abs().max().item():.3g}")
    print(f"  loss at init             {loss:.6f}   (ln {args.num_classes} = {math.log(args.num_classes):.6f})")
    total = len(list(model.parameters()))
    for step in gradient_at_init(model, x, y, steps=3, lr=args.lr):
        moving = step.moving
        names = ", ".join(moving[:4]) + (", ..." if len(moving) > 4 else "")
        print(f"  step {step.step}: {len(moving):3d} of {total} tensors get a non-zero gradient  [{names}]")
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


def run_list(args: argparse.Namespace) -> int:
    print("models:")
    for name in list_models():
        entry = model_entry(name)
        print(f"  {name:24s} default init {entry.default_init:9s} {entry.description}")
    print("schemes: " + ", ".join(list_schemes()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detinit", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"detinit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="initialise a ZerO ResNet and show what the initialisation does")
    demo.add_argument("--model", default="zero_resnet20", choices=list_models(), metavar="NAME")
    demo.add_argument("--init", default=None, choices=list_schemes(), help="scheme (default: the model's own)")
    demo.add_argument("--num-classes", type=int, default=10)
    demo.add_argument("--in-chans", type=int, default=1)
    demo.add_argument("--image-size", type=int, default=28)
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--lr", type=float, default=0.1)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--threads", type=int, default=min(2, torch.get_num_threads()))
    demo.add_argument("--full-report", action="store_true", help="print every parameter's rule and reason")
    demo.set_defaults(func=run_demo)
    listing = sub.add_parser("list", help="list models and schemes")
    listing.set_defaults(func=run_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

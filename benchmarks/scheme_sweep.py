"""Every registered scheme on every model of the beyond-Hugging-Face zoo (benchmarks/model_zoo.py): each call of
``initialize`` either initialises the model or refuses it with a message that names the scheme and what the model
lacks (SkipInit's gates, T-Fixup's attention, Fixup's branches); a crash of any other kind, or a refusal that names
neither, is a broken promise of issue 34 ("no scheme raises on a model that runs its forward pass").

    python benchmarks/scheme_sweep.py     # about 2 minutes on 2 CPU cores

Prints the counts and one line per kind of refusal.
"""

from __future__ import annotations

import collections
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import model_zoo  # noqa: E402

from detinit import initialize  # noqa: E402
from detinit.argtypes import no_options  # noqa: E402
from detinit.init import list_schemes  # noqa: E402
from detinit.init.roles.trace import run_model  # noqa: E402


def outcome(case: model_zoo.Case, scheme: str) -> tuple[str, str]:
    """``("initialised", "")``, ``("refused", message)`` or ``("crashed", error)`` for one scheme on one case."""
    try:
        initialize(model_zoo.build(case), scheme, example_inputs=case.inputs(0))
    except (ValueError, TypeError) as err:  # detinit's refusals; one that names no scheme is a crash
        named = scheme in str(err) or "scheme" in str(err)
        return ("refused", str(err)) if named else ("crashed", f"{type(err).__name__}: {err}")
    except Exception as err:  # noqa: BLE001 (anything else is a crash, said as such)
        return "crashed", f"{type(err).__name__}: {err}"
    return "initialised", ""


def main() -> int:
    no_options(__doc__)
    warnings.simplefilter("ignore")  # the reports' own warnings (untraced parts) are not what is counted here
    schemes = sorted(list_schemes())
    counts: collections.Counter[str] = collections.Counter()
    kinds: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (result, scheme) -> (model, message)
    models = 0
    for case in model_zoo.cases():
        try:
            with torch.no_grad():
                run_model(model_zoo.build(case), case.inputs(0))
        except Exception:  # noqa: BLE001 (a model that does not build or run is not counted, as in the zoo)
            continue
        models += 1
        for scheme in schemes:
            result, message = outcome(case, scheme)
            counts[result] += 1
            if message:
                kinds.setdefault((result, scheme), []).append((case.name, message))
    print(f"{len(schemes)} schemes x {models} models: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for (result, scheme), found in sorted(kinds.items()):
        shown = {message[:90]: name for name, message in reversed(found)}  # one model for each distinct message
        for start, name in list(shown.items())[:3]:
            print(f"  {result:8s} {scheme:9s} {len(found):3d} models, e.g. {name}: {start}...")
    return 1 if counts["crashed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())

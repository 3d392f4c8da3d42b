"""argparse value types shared by ``detinit``'s command line and the scripts in ``benchmarks/``.

Each type checks one kind of value before any work starts and raises
:class:`argparse.ArgumentTypeError` saying what is allowed; argparse puts the flag's name in front
(``error: argument --steps: 0 must be >= 1``) and exits with status 2, no traceback.

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> _ = parser.add_argument("--steps", type=positive_int, default=10)
>>> parser.parse_args(["--steps", "3"]).steps
3
>>> positive_int("0")
Traceback (most recent call last):
    ...
argparse.ArgumentTypeError: 0 must be >= 1
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from .atomic import OutputDirError, check_output_dir, check_output_file
from .contract import checked_arguments
from .values import SEEDS, is_seed

__all__ = [
    "existing_file",
    "no_options",
    "non_negative_int",
    "output_file",
    "output_folder",
    "pair",
    "positive_float",
    "positive_int",
    "random_seed",
]


def _int(text: str, low: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if low is not None and value < low:
        raise argparse.ArgumentTypeError(f"{value} must be >= {low}")
    return value


@checked_arguments()
def positive_int(text: str) -> int:
    """An integer >= 1 (a count of steps, workers, threads, seeds)."""
    return _int(text, 1)


@checked_arguments()
def non_negative_int(text: str) -> int:
    """An integer >= 0 (a limit where 0 means none, warm-up steps)."""
    return _int(text, 0)


@checked_arguments()
def random_seed(text: str) -> int:
    """A random seed: the library's seed contract, an integer in [0, 2**32) (torch's CPU generator keeps 32 bits,
    so seed 2**32 would draw what seed 0 draws; :func:`detinit.values.is_seed`)."""
    value = _int(text)
    if not is_seed(value):
        raise argparse.ArgumentTypeError(f"{value} is not a seed; a seed is {SEEDS}")
    return value


@checked_arguments()
def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


def _output(check: Callable[[str, str], Path], text: str, what: str) -> Path:
    try:
        return check(text, what)
    except OutputDirError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


@checked_arguments()
def output_file(text: str) -> Path:
    """A file the command may create or replace (:func:`detinit.atomic.check_output_file`)."""
    return _output(check_output_file, text, "the path")


@checked_arguments()
def output_folder(text: str) -> Path:
    """A folder the command may create or write into (:func:`detinit.atomic.check_output_dir`)."""
    return _output(check_output_dir, text, "the path")


@checked_arguments()
def existing_file(text: str) -> Path:
    """A file that exists (a README to update, a file to read)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is {'a folder' if path.is_dir() else 'not there'}; give a file")
    return path


@checked_arguments()
def pair(text: str) -> tuple[str, str]:
    """``A:B``, two non-empty names joined by one colon."""
    first, colon, second = text.partition(":")
    if not colon or not first or not second or ":" in second:
        raise argparse.ArgumentTypeError(f"{text!r} is not of the form A:B (two names and one colon)")
    return first, second


@checked_arguments()
def no_options(doc: str | None) -> argparse.Namespace:
    """Parse a script's command line that takes no options: ``--help`` prints the first line of ``doc``, and
    any argument is an error (a typo is not silently ignored while the script runs for minutes)."""
    return argparse.ArgumentParser(description=(doc or "").strip().split("\n")[0]).parse_args()

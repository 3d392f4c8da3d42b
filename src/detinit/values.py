"""What counts as an integer and as a number in a range, for every check of a value a user gives (config
keys, scheme options, dataset and layer arguments): one definition, so a ``True`` is never taken for 1 and
a NaN never passes a range check. The callers word their own errors, with :func:`interval` for the range.

>>> is_int(3, low=1), is_int(True), is_int(2.0)
(True, False, False)
>>> is_number(0.5, 0, 1), is_number(float("nan")), is_number(0, 0, open_low=True)
(True, False, False)
>>> interval(0, 1), interval(0.0), interval(0, open_low=True)
('[0, 1]', '[0, inf)', '(0, inf)')
>>> is_seed(2**32 - 1), is_seed(2**32), is_seed(-1)
(True, False, False)
"""

from __future__ import annotations

import math


def is_int(value: object, low: int | None = None) -> bool:
    """An ``int`` (not a ``bool``), at least ``low`` where one is given."""
    return isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)


SEEDS = "an int in [0, 2**32)"  # what is_seed accepts, for the callers' errors


def is_seed(value: object) -> bool:
    """An ``int`` in ``[0, 2**32)``: torch's CPU generator keeps only the low 32 bits of a seed, so seed
    ``2**32`` would draw exactly what seed 0 draws (and a negative one what its 32-bit wrap draws)."""
    return is_int(value, 0) and value < 2**32  # type: ignore[operator]


def is_number(value: object, low: float = -math.inf, high: float = math.inf, *, open_low: bool = False) -> bool:
    """A finite ``int`` or ``float`` (not a ``bool``) in ``[low, high]``, ``(low, high]`` with ``open_low``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return False
    return (value > low if open_low else value >= low) and value <= high


def interval(low: float, high: float = math.inf, *, open_low: bool = False) -> str:
    """The range of :func:`is_number` as text: ``[0, 1]``, ``(0, inf)``."""
    return f"{'(' if open_low else '['}{low:g}, {high:g}{']' if math.isfinite(high) else ')'}"

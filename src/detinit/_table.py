"""Fixed-width text tables for reports and the CLI."""

from __future__ import annotations

from collections.abc import Sequence


def format_cell(value: object) -> str:
    """Floats with 4 significant digits, everything else as ``str``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "-"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, a dashed rule under the header.

    >>> print(format_table(["a", "bb"], [[1, 0.5], ["xyz", None]]))
    a    bb
    ---  ---
    1    0.5
    xyz  -
    """
    cells = [[format_cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h)) for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * max(w, 3) for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)

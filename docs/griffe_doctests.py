"""A griffe extension for the API reference: the doctests written in the prose of a docstring (``>>>`` lines and
their output, up to a blank line) become fenced ``pycon`` code blocks, as they would be in an "Examples:" section,
instead of Markdown blockquotes. The docstrings themselves are unchanged (pytest runs them as doctests)."""

from __future__ import annotations

import re
from typing import Any

import griffe

PROMPT = re.compile(r"^(\s*)>>> ")


def fence_doctests(text: str) -> str:
    r"""``text`` with each run of doctest lines (a ``>>>`` line, its ``...`` lines and its output) fenced.

    >>> fence_doctests("Sum.\n\n>>> 1 + 1\n2\n\nEnd.").split("\n")
    ['Sum.', '', '```pycon', '>>> 1 + 1', '2', '```', '', 'End.']
    """
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        match = PROMPT.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent, block = match.group(1), []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        out += [f"{indent}```pycon", *(indent + line for line in block), f"{indent}```"]
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the prose doctests of every object's docstring when griffe loads it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>> " in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)

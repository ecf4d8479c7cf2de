"""Plain-text tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from journeysim._util.format import number

__all__ = ['format_table', 'fmt']


def fmt(x: Any) -> str:
    """Readable number (:func:`journeysim._util.format.number`); text as it is."""
    if isinstance(x, str):
        return x
    try:
        float(x)
    except (TypeError, ValueError):
        return "-" if x is None else str(x)
    return number(x)


def _numeric(x: Any) -> bool:
    """A number, or text that shows one (``+1,234 [...]``, ``€5``, ``12%``): right-aligned."""
    if not isinstance(x, str):
        return True
    return x == "-" or (bool(x) and (x[0].isdigit() or x[0] in "+-€$£¥" and len(x) > 1))


def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], title: str | None = None,
                 notes: Sequence[str] = ()) -> str:
    """Align ``rows`` under ``headers``; text left, numbers right; ``notes`` (footnotes) below.

    >>> print(format_table([["tv", 1234.5]], ["channel", "spend"]))
    channel  spend
    -------  -----
    tv       1,234
    """
    cells = [[fmt(c) for c in r] for r in rows]
    numeric = [bool(rows) and all(_numeric(r[i]) if i else not isinstance(r[i], str) for r in rows)
               for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(vals):
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(vals, widths))).rstrip()

    out = []
    if title:
        out.append(title)
    out.append(line(list(headers)))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells)
    out.extend(notes)
    return "\n".join(out)

"""Plain-text tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ['format_table', 'fmt']


def fmt(x: Any) -> str:
    """Readable number: thousands separators, 3 significant decimals for small values."""
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if v != v:
        return "nan"
    if abs(v) >= 1000 or (v == int(v) and abs(v) < 1e15):
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:,.1f}"
    return f"{v:.3g}"


def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], title: str | None = None) -> str:
    """Align ``rows`` under ``headers``; text left, numbers right.

    >>> print(format_table([["tv", 1234.5]], ["channel", "spend"]))
    channel  spend
    -------  -----
    tv       1,234
    """
    cells = [[fmt(c) for c in r] for r in rows]
    numeric = [all(not isinstance(r[i], str) for r in rows) if rows else False for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(vals):
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(vals, widths))).rstrip()

    out = []
    if title:
        out.append(title)
    out.append(line(list(headers)))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells)
    return "\n".join(out)

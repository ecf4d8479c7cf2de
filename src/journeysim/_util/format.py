"""Numbers for people: the one place that turns a value into the text a person reads.

Every table the command line prints, every axis of a figure and the HTML report format their
numbers here, so that a count, an amount of money, a share and an interval look the same
everywhere: thousands separators, no scientific notation for ordinary sizes, a currency where money
is meant, percentages as percentages.

>>> number(192843.2), number(0.004123), number(12.34)
('192,843', '0.00412', '12.3')
>>> money(6718.4, "EUR"), money(-6718.4, "€"), money(6718.4), money(2.3e-13)
('6,718 EUR', '-€6,718', '6,718', '0')
>>> percent(0.1234), percent(0.1234, 1)
('12%', '12.3%')
>>> interval(192843, 186012, 200231, sig=4)
'192,800 [186,000, 200,200]'
>>> interval(-6718, -10020, -3110, signed=True, sig=4)
'-6,718 [-10,020, -3,110]'
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ['number', 'money', 'percent', 'interval', 'value', 'currency_affix', 'currency_label', 'KINDS']

#: What a value is, for :func:`value`: a plain number, money, a share shown as a percentage, a ratio.
KINDS = ("number", "money", "percent", "ratio")

_MISSING = "-"


def _is_missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def _round_sig(v: float, sig: int | None) -> float:
    if not sig or v == 0 or not math.isfinite(v):
        return v
    k = sig - 1 - math.floor(math.log10(abs(v)))
    return round(v, k) if k < 0 else v


def number(x: Any, *, digits: int = 3, signed: bool = False, sig: int | None = None, trim: bool = False) -> str:
    """A readable number: ``192,843``; ``12.3``; ``0.00412``.

    Values of 100 and more are whole numbers with thousands separators (rounded to ``sig``
    significant digits if given); smaller ones keep ``digits`` significant digits in fixed
    notation. Scientific notation only for sizes no person counts in (below 1e-8 or from 1e15).
    ``signed``: a leading ``+`` on positive values (for changes); ``trim``: no trailing zeros
    (``1.5``, not ``1.50``: for axis ticks).
    """
    if _is_missing(x):
        return _MISSING if x is None else "nan"
    if isinstance(x, str):
        return x
    v = float(x)
    if math.isinf(v):
        return ("+" if signed and v > 0 else "") + ("∞" if v > 0 else "-∞")
    sign = "+" if signed and v > 0 else ""
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e15 or a < 1e-8:
        return f"{v:+.{digits - 1}e}" if signed else f"{v:.{digits - 1}e}"
    if a >= 100 or (v == int(v)):
        r = _round_sig(v, sig)
        return sign + f"{r:,.0f}"
    decimals = max(0, digits - 1 - math.floor(math.log10(a)))
    text = f"{v:,.{decimals}f}"
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    return sign + text


def currency_affix(currency: str | None) -> tuple[str, str]:
    """(prefix, suffix): a symbol (``€``, ``$``) goes before the amount, a code (``EUR``) after it."""
    if not currency:
        return "", ""
    c = str(currency).strip()
    if c.isalpha() and len(c) > 1:
        return "", f" {c}"
    return c, ""


def money(x: Any, currency: str | None = None, *, signed: bool = False, sig: int | None = None) -> str:
    """An amount of money: ``€6,718``, ``6,718 EUR``, or a plain ``6,718`` without a currency."""
    if _is_missing(x):
        return number(x)
    pre, suf = currency_affix(currency)
    v = float(x)
    if abs(v) < 0.005:  # (less than a cent: numerically zero, e.g. an optimiser's 2e-13)
        v = 0.0
    body = number(abs(v), sig=sig) if abs(v) >= 100 else number(abs(v), digits=3)
    sign = "-" if v < 0 else ("+" if signed and v > 0 else "")
    return f"{sign}{pre}{body}{suf}"


def currency_label(currency: str | None) -> str:
    """The unit of money for an axis label or a column header: ``EUR``, ``€``, or ``currency units``."""
    return str(currency).strip() if currency else "currency units"


def percent(x: Any, digits: int = 0, *, signed: bool = False) -> str:
    """A share as a percentage: ``0.1234`` -> ``12%``."""
    if _is_missing(x):
        return number(x)
    return f"{float(x):{'+' if signed else ''}.{digits}%}"


def value(x: Any, kind: str = "number", currency: str | None = None, *, signed: bool = False,
          sig: int | None = None) -> str:
    """``x`` formatted as a ``kind`` (one of :data:`KINDS`)."""
    if kind == "money":
        return money(x, currency, signed=signed, sig=sig)
    if kind == "percent":
        return percent(x, signed=signed)
    if kind == "ratio":
        return number(x, digits=3, signed=signed)
    return number(x, signed=signed, sig=sig)


def interval(mean: Any, lower: Any, upper: Any, kind: str = "number", currency: str | None = None, *,
             signed: bool = False, sig: int | None = 4) -> str:
    """``mean [lower, upper]`` with every part formatted alike (``signed``: ``+`` on gains)."""
    f = lambda v: value(v, kind, currency, signed=signed, sig=sig)  # noqa: E731
    return f"{f(mean)} [{f(lower)}, {f(upper)}]"

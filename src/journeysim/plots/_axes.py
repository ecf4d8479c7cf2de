"""Tick labels that read as the tables do (:mod:`journeysim._util.format`)."""

from __future__ import annotations

from matplotlib.ticker import FuncFormatter

from journeysim._util.format import currency_affix, number, percent

__all__ = ['axis_formatter']


def axis_formatter(kind: str = "number", currency: str | None = None) -> FuncFormatter:
    """A tick formatter: thousands separators, no offset and no 1e5, percentages as ``25%``.

    Money ticks carry a currency symbol (``€5,000``) but not a code: put that in the axis label
    (:func:`journeysim._util.format.currency_label`).

    >>> axis_formatter()(2.5e6, 0), axis_formatter("money", "€")(1500.0, 0), axis_formatter("percent")(0.25, 0)
    ('2,500,000', '€1,500', '25%')
    """
    if kind == "percent":
        return FuncFormatter(lambda v, _pos: percent(v))
    if kind == "money":
        pre, _ = currency_affix(currency)
        return FuncFormatter(lambda v, _pos: ("-" if v < 0 else "") + pre + number(abs(v), trim=True))
    return FuncFormatter(lambda v, _pos: number(v, trim=True))

"""Media plans: weekly spend per channel over a horizon.

A :class:`Plan` is a labelled ``(week, channel)`` array of spend. It is built from a scenario's
``plan:`` section, a plan file (YAML or CSV), or relative to another plan.

>>> p = Plan.constant({"tv": 700.0, "search": 70.0}, weeks=4)
>>> p.total
3080.0
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from journeysim.errors import InputError, did_you_mean
from journeysim.model.dynamics import Structure

__all__ = ['Plan', 'read_plan_csv']


@dataclass(frozen=True)
class Plan:
    """Weekly spend ``(weeks, channels)``; the name labels it in comparisons."""

    spend: np.ndarray
    channels: tuple[str, ...]
    name: str = "plan"
    controls: Mapping[str, np.ndarray] | None = None  # demand controls over the plan's weeks (raw values)

    def __post_init__(self):
        s = np.asarray(self.spend, dtype=float)
        if s.ndim != 2 or s.shape[1] != len(self.channels):
            raise InputError(f"spend must be (weeks, {len(self.channels)} channels), got shape {s.shape}", self.name)
        if not np.all(np.isfinite(s)):
            raise InputError("spend has missing or infinite values", self.name)
        if np.any(s < 0):
            w, c = np.argwhere(s < 0)[0]
            raise InputError(f"negative spend {s[w, c]:g} for '{self.channels[c]}' in week {w + 1}", self.name)
        s.setflags(write=False)
        object.__setattr__(self, "spend", s)

    @classmethod
    def constant(cls, weekly: Mapping[str, float], weeks: int, name: str = "plan") -> Plan:
        """The same weekly spend every week."""
        chans = tuple(weekly)
        return cls(np.tile(np.array([float(weekly[c]) for c in chans]), (weeks, 1)), chans, name)

    @property
    def weeks(self) -> int:
        return self.spend.shape[0]

    @property
    def total(self) -> float:
        return float(self.spend.sum())

    def by_channel(self) -> dict[str, float]:
        """Total spend per channel."""
        return {c: float(v) for c, v in zip(self.channels, self.spend.sum(axis=0))}

    def aligned(self, channels: Sequence[str], weeks: int | None = None, where: str | None = None) -> np.ndarray:
        """Spend as ``(weeks, len(channels))`` in the given channel order.

        Channels of the plan that are not in ``channels`` are an error; channels missing from the
        plan get zero spend. ``weeks`` (if given) must not exceed the plan; the plan is cut to it.
        """
        where = where or self.name
        for c in self.channels:
            if c not in channels:
                raise InputError(f"unknown channel '{c}'" + did_you_mean(c, channels)
                                 + f"; the scenario's channels are {', '.join(channels) or 'none'}", where)
        n = self.weeks if weeks is None else weeks
        if n > self.weeks:
            raise InputError(f"the plan covers {self.weeks} weeks but {n} are needed", where)
        out = np.zeros((n, len(channels)))
        for j, c in enumerate(self.channels):
            out[:, channels.index(c)] = self.spend[:n, j]
        return out

    def with_name(self, name: str) -> Plan:
        return Plan(self.spend, self.channels, name, self.controls)


def read_plan_csv(path: str | Path, start: dt.date | None = None, name: str | None = None) -> Plan:
    """Read a plan CSV: a ``week`` (1, 2, ...) or ``date`` column and ``spend_<channel>`` columns.

    Rows must be consecutive weeks without gaps or duplicates; values non-negative numbers.
    """
    import pandas as pd

    path = Path(path)
    where = str(path)
    if not path.exists():
        raise InputError("file not found", where)
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for malformed CSV
        raise InputError(f"cannot read CSV: {exc}", where) from None
    df.columns = [str(c).strip() for c in df.columns]
    spend_cols = [c for c in df.columns if c.startswith("spend_")]
    if not spend_cols:
        raise InputError("no spend_<channel> columns", where)
    if "date" in df.columns:
        dates = pd.to_datetime(df["date"], errors="coerce")
        bad = dates.isna()
        if bad.any():
            raise InputError(f"row {int(np.argmax(bad)) + 2}, column date: '{df['date'][bad].iloc[0]}' is not a date", where)
        gaps = dates.diff().dt.days.iloc[1:]
        if (gaps != 7).any():
            i = int(np.argmax((gaps != 7).to_numpy())) + 1
            problem = "duplicated" if gaps.iloc[i - 1] == 0 else "not 7 days after the previous row (a missing or out-of-order week)"
            raise InputError(f"row {i + 2}, column date: {dates.iloc[i].date()} is {problem}", where)
    elif "week" in df.columns:
        wk = pd.to_numeric(df["week"], errors="coerce")
        expected = np.arange(1, len(df) + 1)
        if wk.isna().any() or not np.array_equal(wk.to_numpy(), expected):
            i = int(np.argmax(wk.isna().to_numpy() | (wk.to_numpy() != expected)))
            raise InputError(f"row {i + 2}, column week: expected week {i + 1}, found '{df['week'].iloc[i]}'", where)
    controls = {}
    for col in [c for c in df.columns if c.startswith("control_")]:
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = ~np.isfinite(vals.to_numpy(dtype=float))
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"row {i + 2}, column {col}: '{df[col].iloc[i]}' is not a number", where)
        controls[col[len("control_"):]] = vals.to_numpy(dtype=float)
    spend = np.empty((len(df), len(spend_cols)))
    for j, col in enumerate(spend_cols):
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = vals.isna() | (vals < 0) | np.isinf(vals)
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raw = df[col].iloc[i]
            what = ("value is missing" if pd.isna(raw) else f"'{raw}' is not a finite number" if np.isinf(vals.iloc[i])
                    else f"'{raw}' is not a non-negative number")
            raise InputError(f"row {i + 2}, column {col}: {what}", where)
        spend[:, j] = vals.to_numpy()
    return Plan(spend, tuple(c[len("spend_"):] for c in spend_cols), name or path.stem, controls or None)




def check_plan(plan: Plan, structure: Structure, weeks: int, where: str) -> Plan:
    spend = plan.aligned(structure.channels, None, where)
    owned = structure.owned_volume > 0
    for j in np.flatnonzero(owned & (spend.sum(axis=0) > 0)):
        raise InputError(f"'{structure.channels[j]}' is an owned channel (volume); it takes no spend", where)
    if spend.shape[0] < weeks:
        raise InputError(f"the plan covers {spend.shape[0]} weeks; the horizon is {weeks} weeks", where)
    return Plan(spend, structure.channels, plan.name, _check_controls(plan.controls, structure, weeks, where))


def _check_controls(controls, structure: Structure, weeks: int, where: str):
    """A plan's demand controls: names of the scenario's ``demand.controls``, a value every week."""
    if not controls:
        return None
    known = structure.demand.controls if structure.demand is not None else ()
    out = {}
    for c, v in controls.items():
        if c not in known:
            raise InputError(f"unknown demand control '{c}'" + did_you_mean(c, known) + "; the scenario's controls are "
                             + (", ".join(known) if known else "none (it has no demand.controls)"), where)
        x = np.asarray(v, float).reshape(-1)
        if x.size == 1:
            x = np.full(weeks, float(x[0]))
        if x.size < weeks:
            raise InputError(f"control '{c}' has {x.size} weekly values; the horizon is {weeks} weeks", where)
        if not np.all(np.isfinite(x)):
            raise InputError(f"control '{c}' has a missing or infinite value", where)
        out[c] = x
    return out

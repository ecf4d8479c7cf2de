"""Demand that moves: yearly seasonality, a trend and outside drivers, on the journey's transitions.

A scenario's ``demand:`` section multiplies the base hazards of chosen transitions (by default
those into a purchase stage) by

    m(t) = exp( sum_j (a_j sin(2 pi j y_t) + b_j cos(2 pi j y_t))   yearly seasonality, order J
                + c * (t - t_mid) / 52.18                           trend, per year
                + sum_x g_x z_x(t)                                   controls, per standard deviation
                + sum_h k_h 1[iso week of t in W_h]                  holidays, the same weeks every year
                + l(t)                                               latent demand (optional)
                + u_t )                                              weekly demand shocks (optional)

where ``y_t`` is the calendar year-fraction of week ``t``'s middle (so a cycle fitted on 2023-2024
continues into 2025 on the same dates), ``t_mid`` the middle of the scenario's horizon, and
``z_x`` a control column of the observed CSV standardised over the history (a price index, a
competitor promotion flag, a holiday flag, a category demand index). A holiday ``h`` is a set
of ISO weeks of the year ``W_h`` (Black Friday's week, the two weeks before Christmas), read from
the calendar, so it recurs in every forecast without a column. The coefficients are parameters like any other (``demand.season.sin1``, ``demand.trend``,
``demand.control.price``, ``demand.holiday.black_friday``):
the scenario gives their values (zero by default) and calibration learns them. The optional latent
demand ``l(t)`` is a random walk on the log scale for what nothing observed explains: a knot every
``every`` weeks, linear between knots, standard-normal steps (``demand.latent.1`` ...) scaled to
``sd`` a week, centred over the horizon. It keeps a fit from crediting channels with slow
swings of demand, and beyond the history it goes on as a random walk, so forecasts carry that
uncertainty (:meth:`Demand.with_future`). The optional weekly shocks ``u_t = sd * z_t``
(``demand.shock.1`` ... one standard-normal ``z_t`` per week of the history) are noise in the
flows rather than in the measurements: a week when more people are in market moves every KPI the
journey links, in that week and after it, so co-movement that a channel's spend happens to share
with demand is not all credited to the channel. Beyond the history they are zero (their mean);
plans compared on the same draws share them.

Every engine applies the multiplier through
:func:`journeysim.model.dynamics.edge_multipliers`, so agents, twin and likelihood agree. Beyond
the history (a forecast), seasonality and trend extrapolate; a control takes the value a plan
gives it or, without one, its recent level (the mean of the last :data:`RECENT_WEEKS` weeks).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from journeysim.errors import InputError

__all__ = ['Demand', 'compile_demand', 'read_controls', 'RECENT_WEEKS', 'WEEKS_PER_YEAR']

#: Weeks per year, for the trend's unit and the yearly cycle.
WEEKS_PER_YEAR = 365.25 / 7.0
#: Weeks whose mean is a control's level where neither the history nor a plan gives it.
RECENT_WEEKS = 13
_EPOCH = dt.date(2000, 1, 1).toordinal()


@dataclass(frozen=True)
class Demand:
    """A compiled ``demand:`` section (see the module's docstring).

    ``edges (E,)`` is 1 for the transitions it multiplies; coefficients are ordered as
    :attr:`names` (sines and cosines by harmonic, the trend, the controls). ``table (W_c, X)``
    holds the controls standardised, week by week from ``start``; ``mean`` and ``sd`` are the
    history's, used to standardise plan values; ``level (X,)`` is the standardised value beyond
    the table.
    """

    edges: np.ndarray
    start: dt.date
    horizon: int
    order: int
    trend: bool
    controls: tuple[str, ...]
    signs: tuple[str, ...]
    table: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    level: np.ndarray
    holidays: tuple[str, ...] = ()  # names of the holiday terms
    holiday_weeks: tuple[tuple[int, ...], ...] = ()  # each one's ISO weeks of the year
    holiday_signs: tuple[str, ...] = ()
    latent_sd: float = 0.0  # weekly sd of the latent log-level's random walk (0: no latent demand)
    latent_every: int = 4  # weeks between its knots
    shock_sd: float = 0.0  # sd of a week's shock to the log-level (0: no weekly shocks)
    future: int = 0  # knots after the horizon's (a forecast's random continuation; not parameters)

    @property
    def latent_knots(self) -> int:
        """Random-walk steps over the horizon (parameters ``demand.latent.1`` ...)."""
        return int(np.ceil(max(self.horizon - 1, 1) / self.latent_every)) if self.latent_sd > 0 else 0

    @property
    def shock_weeks(self) -> int:
        """Weekly shocks over the horizon (parameters ``demand.shock.1`` ...)."""
        return self.horizon if self.shock_sd > 0 else 0

    @property
    def names(self) -> tuple[str, ...]:
        """The coefficients calibration learns (the latent steps after the horizon are not among them)."""
        out = []
        for j in range(1, self.order + 1):
            out += [f"demand.season.sin{j}", f"demand.season.cos{j}"]
        if self.trend:
            out.append("demand.trend")
        out += [f"demand.control.{c}" for c in self.controls]
        out += [f"demand.holiday.{h}" for h in self.holidays]
        out += [f"demand.shock.{k}" for k in range(1, self.shock_weeks + 1)]
        out += [f"demand.latent.{k}" for k in range(1, self.latent_knots + 1)]  # (last: the future steps follow)
        return tuple(out)

    @property
    def size(self) -> int:
        """Coefficients in :attr:`Params.demand`: the named ones, then the future latent steps."""
        return len(self.names) + self.future

    def with_future(self, steps: int) -> Demand:
        """A copy with ``steps`` more latent random-walk steps after the horizon (for forecasts)."""
        return replace(self, future=int(steps)) if self.latent_sd > 0 else self

    def forecast_note(self) -> str:
        """What a forecast assumes of demand beyond the history, in words."""
        parts = []
        if self.order:
            parts.append(f"the yearly seasonality ({self.order} harmonic{'s' if self.order > 1 else ''}) continues")
        if self.trend:
            parts.append("the trend goes on")
        if self.latent_sd > 0:
            parts.append("the latent demand goes on as a random walk (its spread widens the intervals)")
        if self.shock_sd > 0:
            parts.append("weekly demand shocks at their mean, zero")
        if self.holidays:
            parts.append(f"{', '.join(self.holidays)} in the same weeks of the year")
        if self.controls:
            parts.append(f"{', '.join(self.controls)} held at {'their' if len(self.controls) > 1 else 'its'} "
                         f"mean of the last {RECENT_WEEKS} weeks")
        return "demand beyond the history: " + "; ".join(parts) if parts else ""

    def design(self, weeks) -> np.ndarray:
        """The ``(n, J)`` design rows of weeks ``weeks`` (counted from ``start``; any integers)."""
        w = np.asarray(weeks, float).reshape(-1)
        cols = []
        if self.order:
            y = (self.start.toordinal() - _EPOCH + 7.0 * w + 3.5) / 365.25
            for j in range(1, self.order + 1):
                cols += [np.sin(2 * np.pi * j * y), np.cos(2 * np.pi * j * y)]
        if self.trend:
            cols.append((w - (self.horizon - 1) / 2.0) / WEEKS_PER_YEAR)
        if self.controls:
            idx = w.astype(int)
            inside = (idx >= 0) & (idx < self.table.shape[0])
            z = np.where(inside[:, None], self.table[np.clip(idx, 0, max(self.table.shape[0] - 1, 0))]
                         if self.table.shape[0] else 0.0, self.level[None, :])
            cols += list(z.T)
        if self.holidays:
            iso = _iso_week(self.start.toordinal() + 7 * w.astype(np.int64) + 3)  # (of each week's middle)
            cols += [np.isin(iso, weeks).astype(float) for weeks in self.holiday_weeks]
        if self.shock_weeks:
            idx = w.astype(np.int64)
            cols += list((self.shock_sd * (idx[None, :] == np.arange(self.shock_weeks)[:, None])).astype(float))
        n = self.latent_knots + self.future
        if n:
            # step k moves the log-level linearly between knots k - 1 and k: a piecewise-linear random walk
            # (standard normal steps scaled to its sd over a knot interval), centred over the horizon
            e = float(self.latent_every)
            scale = self.latent_sd * np.sqrt(e)
            hist = np.arange(self.horizon, dtype=float)
            for k in range(1, n + 1):
                col = np.clip((w - (k - 1) * e) / e, 0.0, 1.0)
                centre = np.clip((hist - (k - 1) * e) / e, 0.0, 1.0).mean()
                cols.append(scale * (col - centre))
        return np.column_stack(cols) if cols else np.zeros((len(w), 0))

    def with_controls(self, values: dict[str, np.ndarray], start: dt.date | None, where: str) -> Demand:
        """A copy whose control table is ``values`` (raw weekly values from ``start``), standardised
        over those weeks; refuses a missing, non-finite or constant control."""
        cols, mean, sd = [], [], []
        for c in self.controls:
            if c not in values:
                raise InputError(f"no column '{c}' for the demand control '{c}' (demand.controls.{c})", where)
            x = np.asarray(values[c], float)
            if not np.all(np.isfinite(x)):
                i = int(np.argmax(~np.isfinite(x)))
                raise InputError(f"row {i + 2}, column {c}: a demand control needs a number every week", where)
            s = float(x.std())
            if s == 0:
                raise InputError(f"column {c}: the control never changes, so its effect cannot be learned; "
                                 f"remove demand.controls.{c}", where)
            cols.append(x)
            mean.append(float(x.mean()))
            sd.append(s)
        if cols:
            table = (np.column_stack(cols) - np.array(mean)) / np.array(sd)
            level = table[-RECENT_WEEKS:].mean(axis=0)
        else:
            table, level = np.zeros((0, 0)), np.zeros(0)
        return replace(self, start=start or self.start, table=table, mean=np.array(mean), sd=np.array(sd),
                       level=level)

    def extended(self, raw: dict[str, np.ndarray], first_week: int) -> Demand:
        """A copy whose table also covers weeks ``first_week ...`` with the raw control values of a
        plan (standardised with the history's mean and sd); controls not in ``raw`` keep their level."""
        if not self.controls or not raw:
            return self
        n = max(len(v) for v in raw.values())
        W0 = self.table.shape[0]
        new = np.repeat(self.level[None, :], max(first_week + n, W0), axis=0)
        new[:W0] = self.table
        for j, c in enumerate(self.controls):
            if c in raw:
                new[first_week:first_week + len(raw[c]), j] = (np.asarray(raw[c], float) - self.mean[j]) / self.sd[j]
        return replace(self, table=new)


def _iso_week(ordinals: np.ndarray) -> np.ndarray:
    """ISO week numbers of proleptic Gregorian day ordinals (as ``date.isocalendar()[1]``, vectorised):
    the week of a day is that of its week's Thursday, counted from the Thursday's 1 January."""
    thursday = ordinals - (ordinals - 1) % 7 + 3  # (ordinal 1, 1 January of year 1, is a Monday)
    day = (thursday - dt.date(1970, 1, 1).toordinal()).astype("datetime64[D]")
    jan1 = day.astype("datetime64[Y]").astype("datetime64[D]")
    return (day - jan1).astype(np.int64) // 7 + 1


def compile_demand(spec, journey, horizon: int, start: dt.date, base_dir: Path | None,
                   where: str) -> tuple[Demand | None, np.ndarray]:
    """The :class:`Demand` of a scenario's ``demand:`` section (``None`` without one) and the
    scenario's values of its coefficients (``(J,)``). Control columns are read from the scenario's
    ``data:`` file when it has one (a fit or forecast standardises them over its own data instead).
    """
    ds = spec.demand
    if ds is None:
        return None, np.zeros(0)
    E = journey.n_edges
    edges = np.zeros(E)
    if ds.transitions:
        for name in ds.transitions:
            try:
                edges[journey.edge_index(name)] = 1.0
            except InputError as e:
                raise InputError(e.problem, f"{where}: demand.transitions") from None
    else:
        edges[np.asarray(journey.purchase_edges, bool)] = 1.0
    season = ds.seasonality
    order = season.order if season is not None else 0
    values = []
    if order:
        coef = list(season.coefficients or [])
        if coef and len(coef) != 2 * order:
            raise InputError(f"{len(coef)} coefficients given; order {order} has {2 * order} "
                             "(sin1, cos1, sin2, cos2, ...)", f"{where}: demand.seasonality.coefficients")
        values += coef or [0.0] * (2 * order)
    if ds.trend is not None:
        values.append(ds.trend.value)
    values += [c.value for c in ds.controls.values()]
    values += [h.value for h in ds.holidays.values()]
    controls = tuple(ds.controls)
    d = Demand(edges=edges, start=start, horizon=horizon, order=order, trend=ds.trend is not None,
               controls=controls, signs=tuple(c.sign for c in ds.controls.values()),
               table=np.zeros((0, len(controls))), mean=np.zeros(len(controls)), sd=np.ones(len(controls)),
               level=np.zeros(len(controls)), holidays=tuple(ds.holidays),
               holiday_weeks=tuple(tuple(h.weeks) for h in ds.holidays.values()),
               holiday_signs=tuple(h.sign for h in ds.holidays.values()), latent_sd=ds.latent.sd if ds.latent else 0.0,
               latent_every=ds.latent.every if ds.latent else 4, shock_sd=ds.shocks.sd if ds.shocks else 0.0)
    values += [0.0] * (d.shock_weeks + d.latent_knots)
    if controls and spec.data and base_dir is not None:
        path = base_dir / spec.data
        if path.exists():
            vals, first = read_controls(path, controls)
            d = d.with_controls(vals, first, str(path))
    return d, np.array(values, float)


def read_controls(path: Path, controls: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dt.date | None]:
    """The control columns of a weekly CSV, and its first date (``None`` without a ``date`` column)."""
    import pandas as pd

    try:
        df = pd.read_csv(path, encoding="utf-8-sig")
    except Exception as exc:  # pandas raises many types for malformed CSV
        raise InputError(f"cannot read CSV: {exc}", str(path)) from None
    df.columns = [str(c).strip() for c in df.columns]
    out = {}
    for c in controls:
        if c not in df.columns:
            raise InputError(f"no column '{c}' for the demand control (demand.controls.{c})", str(path))
        out[c] = pd.to_numeric(df[c], errors="coerce").to_numpy(float)
    first = pd.to_datetime(df["date"], errors="coerce").iloc[0].date() if "date" in df.columns and len(df) else None
    return out, first

"""Observed weekly data: read, check against the scenario, and map KPI columns to the model.

The CSV has a ``date`` column (consecutive weeks), ``spend_<channel>`` columns, optional
``impressions_<channel>`` columns, and KPI columns that the scenario's ``observations:`` section
maps to what they measure. Every problem is an :class:`~journeysim.InputError` naming the file,
the row (as numbered in the file, header = row 1) and the column.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from journeysim.errors import InputError, did_you_mean
from journeysim.model.plan import Plan
from journeysim.model.schema import ObservationSpec

__all__ = ['ObservedData', 'read_observed', 'check_observation', 'check_observations', 'Observation', 'DEFAULT_LIKELIHOOD']


DEFAULT_LIKELIHOOD = {"share": "binomial", "revenue": "normal"}


@dataclass(frozen=True)
class Observation:
    """One observed KPI series and what it measures."""

    column: str
    measures: str
    stages: tuple[str, ...]
    likelihood: str
    values: np.ndarray  # (weeks,) float, NaN where missing
    sample_size: np.ndarray | None  # (weeks,) for share
    scale: float

    @property
    def observed(self) -> np.ndarray:
        """Boolean mask of weeks with a value."""
        return ~np.isnan(self.values)


@dataclass(frozen=True)
class ObservedData:
    """Observed weeks: dates, the plan actually run, optional impressions, KPI observations."""

    dates: pd.DatetimeIndex
    plan: Plan
    impressions: np.ndarray | None  # (weeks, C) weekly touches where observed, NaN otherwise
    observations: tuple[Observation, ...]
    source: str
    controls: dict = field(default_factory=dict)  # demand control column -> (weeks,) values

    def head(self, weeks: int) -> ObservedData:
        """The first ``weeks`` weeks."""
        from dataclasses import replace as _replace

        obs = tuple(_replace(o, values=o.values[:weeks],
                             sample_size=None if o.sample_size is None else o.sample_size[:weeks])
                    for o in self.observations)
        return ObservedData(self.dates[:weeks], Plan(self.plan.spend[:weeks], self.plan.channels, self.plan.name),
                            None if self.impressions is None else self.impressions[:weeks], obs, self.source,
                            {k: v[:weeks] for k, v in self.controls.items()})

    @property
    def weeks(self) -> int:
        return len(self.dates)


def _numeric(df: pd.DataFrame, col: str, where: str, allow_missing: bool, non_negative: bool = True) -> np.ndarray:
    raw = df[col]
    vals = pd.to_numeric(raw, errors="coerce")
    bad_text = vals.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad_text.any():
        i = int(np.argmax(bad_text.to_numpy()))
        raise InputError(f"row {i + 2}, column {col}: '{raw.iloc[i]}' is not a number", where)
    if not allow_missing and vals.isna().any():
        i = int(np.argmax(vals.isna().to_numpy()))
        raise InputError(f"row {i + 2}, column {col}: value is missing", where)
    if non_negative and (vals < 0).any():
        i = int(np.argmax((vals < 0).to_numpy()))
        raise InputError(f"row {i + 2}, column {col}: {vals.iloc[i]:g} is negative", where)
    out = vals.to_numpy(dtype=float)
    if np.isinf(out).any():
        i = int(np.argmax(np.isinf(out)))
        raise InputError(f"row {i + 2}, column {col}: value is infinite", where)
    return out


def read_observed(path: str | Path, scenario, *, ignore_columns: tuple[str, ...] = ()) -> ObservedData:
    """Read and check a weekly observed CSV against a scenario.

    Parameters
    ----------
    path
        The CSV file.
    scenario
        The :class:`~journeysim.Scenario` whose channels and ``observations`` give the columns meaning.
    ignore_columns
        Columns to leave out on purpose (any other unmapped column is an error).
    """
    path = Path(path)
    where = str(path)
    if not path.exists():
        raise InputError("file not found", where)
    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except Exception as exc:
        raise InputError(f"cannot read CSV: {exc}", where) from None
    # pandas renames a repeated header ('x', 'x.1'): check the header as written
    import csv

    with path.open(newline="") as fh:
        header = [h.strip() for h in next(csv.reader(fh), [])]
    seen = set()
    for h in header:
        if h in seen:
            raise InputError(f"column '{h}' appears twice", where)
        seen.add(h)
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise InputError("no data rows", where)
    if "date" not in df.columns:
        raise InputError("no 'date' column" + did_you_mean("date", df.columns), where)

    with warnings.catch_warnings():  # (pandas warns when one bad cell stops it inferring the format)
        warnings.simplefilter("ignore", UserWarning)
        dates = pd.to_datetime(df["date"], errors="coerce")
    if dates.isna().any():
        i = int(np.argmax(dates.isna().to_numpy()))
        raise InputError(f"row {i + 2}, column date: '{df['date'].iloc[i]}' is not a date", where)
    dup = dates.duplicated()
    if dup.any():
        i = int(np.argmax(dup.to_numpy()))
        raise InputError(f"row {i + 2}, column date: {dates.iloc[i].date()} is duplicated", where)
    gaps = dates.diff().dt.days.to_numpy()[1:]
    if np.any(gaps != 7):
        i = int(np.argmax(gaps != 7)) + 1
        if gaps[i - 1] < 0:
            problem = "earlier than the previous row (dates must be in order)"
        elif gaps[i - 1] % 7 == 0:
            problem = f"{int(gaps[i - 1] // 7) - 1} missing week(s) before this row"
        else:
            problem = f"{int(gaps[i - 1])} days after the previous row; weeks must be 7 days apart"
        raise InputError(f"row {i + 2}, column date: {dates.iloc[i].date()}: {problem}", where)

    st = scenario.structure
    channels = st.channels
    check_observations(scenario)
    used = {"date"} | set(ignore_columns)
    spend = np.zeros((len(df), len(channels)))
    impressions = None
    for col in df.columns:
        for prefix in ("spend_", "impressions_"):
            if col.startswith(prefix):
                ch = col[len(prefix):]
                if ch not in channels:
                    raise InputError(f"column {col}: unknown channel '{ch}'" + did_you_mean(ch, channels)
                                     + f"; the scenario's channels are {', '.join(channels)}", where)
                j = channels.index(ch)
                if prefix == "spend_":
                    spend[:, j] = _numeric(df, col, where, allow_missing=False)
                    if st.cost_per_touch[j] == 0 and np.any(spend[:, j] > 0):
                        i = int(np.argmax(spend[:, j] > 0))
                        raise InputError(f"row {i + 2}, column {col}: '{ch}' is an owned channel (volume: touches "
                                         f"per week); it takes no spend (leave the column out)", where)
                else:
                    if impressions is None:
                        impressions = np.full((len(df), len(channels)), np.nan)
                    impressions[:, j] = _numeric(df, col, where, allow_missing=False)
                used.add(col)
    paid = st.cost_per_touch > 0
    missing_spend = [c for j, c in enumerate(channels) if paid[j] and f"spend_{c}" not in df.columns]
    if missing_spend:
        raise InputError(f"no spend column for paid channel(s) {', '.join(missing_spend)} "
                         f"(expected spend_{missing_spend[0]})", where)

    controls = {}
    for c in (st.demand.controls if st.demand is not None else ()):
        if c not in df.columns:
            raise InputError(f"no column '{c}' for the demand control demand.controls.{c}"
                             + did_you_mean(c, df.columns), where)
        controls[c] = _numeric(df, c, where, allow_missing=False, non_negative=False)
        used.add(c)
    obs = []
    for i, spec in enumerate(scenario.spec.observations):
        obs.append(_observation(df, spec, scenario, where, f"observations[{i}]"))
        used.add(spec.column)
        if isinstance(spec.sample_size, str):
            used.add(spec.sample_size)
    for col in df.columns:
        if col not in used:
            cols = [o.column for o in scenario.spec.observations]
            raise InputError(
                f"column '{col}' maps to nothing: add it to the scenario's observations (measures: entries, share, "
                f"purchases, new_customers, referrals or revenue), name it spend_<channel> or impressions_<channel>, "
                f"or ignore it on purpose" + did_you_mean(col, cols), where)
    if not obs:
        raise InputError("the scenario has no observations: section mapping KPI columns of the data", where)
    plan = Plan(spend, channels, "observed")
    return ObservedData(pd.DatetimeIndex(dates), plan, impressions, tuple(obs), where, controls)


def check_observation(spec: ObservationSpec, stages, where: str, key: str) -> str:
    """Check one ``observations:`` entry against the journey's stages; return its likelihood.

    Needs no data: ``journeysim validate`` runs it on the scenario alone, :func:`read_observed` again.
    """
    for s in spec.stages:
        if s not in stages:
            raise InputError(f"{key}.stages: unknown stage '{s}'" + did_you_mean(s, stages), where)
    if spec.measures in ("entries", "share") and not spec.stages:
        raise InputError(f"{key}: measures '{spec.measures}' needs the stages it counts (stages: [...])", where)
    lik = spec.likelihood or DEFAULT_LIKELIHOOD.get(spec.measures, "negbin")
    if spec.measures == "share" and lik != "binomial":
        raise InputError(f"{key}: a share is observed with the binomial likelihood, not {lik}", where)
    if spec.measures != "share" and lik == "binomial":
        raise InputError(f"{key}: the binomial likelihood is for survey shares (measures: share)", where)
    if spec.measures == "share" and spec.sample_size is None:
        raise InputError(f"{key}: a share needs sample_size (a number or a column)", where)
    return lik


def check_observations(scenario) -> None:
    """Check the scenario's whole ``observations:`` section against its journey (no data needed)."""
    where = str(scenario.source) if scenario.source else "scenario"
    seen: dict[str, int] = {}
    for i, spec in enumerate(scenario.spec.observations):
        key = f"observations[{i}]"
        check_observation(spec, scenario.structure.stages, where, key)
        if spec.column in seen:
            raise InputError(f"{key}: column '{spec.column}' is already observed by observations[{seen[spec.column]}]",
                             where)
        seen[spec.column] = i


def _observation(df, spec: ObservationSpec, scenario, where: str, key: str) -> Observation:
    stages = scenario.structure.stages
    if spec.column not in df.columns:
        raise InputError(f"{key}: column '{spec.column}' is not in the data" + did_you_mean(spec.column, df.columns), where)
    lik = check_observation(spec, stages, where, key)
    values = _numeric(df, spec.column, where, allow_missing=True)
    n = None
    if spec.measures == "share":
        if isinstance(spec.sample_size, str):
            if spec.sample_size not in df.columns:
                raise InputError(f"{key}.sample_size: column '{spec.sample_size}' is not in the data", where)
            n = _numeric(df, spec.sample_size, where, allow_missing=True)
        else:
            n = np.full(len(df), float(spec.sample_size))
        ok = ~np.isnan(values)
        if np.any(values[ok] > 1):
            i = int(np.argmax(ok & (values > 1)))
            raise InputError(f"row {i + 2}, column {spec.column}: {values[i]:g} is a share, it must be within 0..1", where)
        if np.any(np.isnan(n[ok])) or np.any(n[ok] <= 0):
            i = int(np.argmax(ok & (np.isnan(n) | (n <= 0))))
            raise InputError(f"row {i + 2}: a share is observed but its sample size is missing or zero", where)
    if lik == "ar1":
        ok = ~np.isnan(values)
        if np.any(values[ok] <= 0):
            i = int(np.flatnonzero(ok)[np.argmax(values[ok] <= 0)])
            raise InputError(f"row {i + 2}, column {spec.column}: {values[i]:g} cannot be observed with likelihood "
                             f"ar1 (errors on the log scale need values above 0; use negbin)", where)
    elif lik in ("poisson", "negbin"):
        ok = ~np.isnan(values)
        frac = values[ok] != np.round(values[ok])
        if np.any(frac):
            i = int(np.flatnonzero(ok)[np.argmax(frac)])
            raise InputError(f"row {i + 2}, column {spec.column}: {values[i]:g} is not a whole count "
                             f"(use likelihood: normal for non-count data)", where)
    return Observation(spec.column, spec.measures, tuple(spec.stages), lik, values, n, spec.scale)

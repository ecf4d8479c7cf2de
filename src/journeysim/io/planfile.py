"""Plan files: weekly spend over a forecast horizon, absolute or relative to a baseline.

A plan file is YAML (or a CSV with ``spend_<channel>`` columns). Absolute spend::

    name: flat
    weekly: {tv: 60000, search: 9000}          # the same every week
    spend: {social: [5000, 5000, 8000, ...]}   # or one value per week of the horizon

Relative to the baseline (by default the average weekly spend of the last 13 observed weeks)::

    name: tv-to-search
    changes:
      - move: {from: tv, to: search, share: 0.3}   # 30% of tv's spend goes to search
      - scale: {social: 1.2}                       # social +20%
      - total: 1.1                                 # everything +10% (mix kept)
      - set: {display: 0}                          # weekly spend set outright
        weeks: [1, 6]                              # optionally only in some horizon weeks

Changes apply in order. A plan may also set the scenario's demand controls over the horizon
(``controls: {promo: [0, 1, 0, ...], price_index: 0.97}``, or ``control_<name>`` CSV columns);
controls a plan does not set are held at their recent level. Every problem (unknown channel, negative spend, a horizon the plan does
not cover) is an :class:`~journeysim.InputError` naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, ValidationError, model_validator

from journeysim.errors import InputError, did_you_mean
from journeysim.model.plan import Plan, read_plan_csv
from journeysim.model.schema import Strict

__all__ = ['baseline_plan', 'load_plan', 'PlanFileSpec', 'BASELINE_WEEKS']


#: Weeks of observed spend averaged into the default baseline.
BASELINE_WEEKS = 13


class MoveSpec(Strict):
    """Move a share of one channel's spend to another (same money)."""

    from_: str = Field(alias="from")
    to: str
    share: float = Field(ge=0, le=1)


class ChangeSpec(Strict):
    """One change to the plan; exactly one of ``scale``, ``move``, ``total``, ``set``."""

    scale: dict[str, float] | None = None
    move: MoveSpec | None = None
    total: float | None = Field(None, ge=0)
    set: dict[str, float] | None = None
    weeks: tuple[int, int] | int | None = Field(None, description="horizon week (1-based) or [first, last]")

    @model_validator(mode="after")
    def _one_op(self):
        ops = [k for k in ("scale", "move", "total", "set") if getattr(self, k) is not None]
        if len(ops) != 1:
            raise ValueError("each change needs exactly one of scale, move, total, set"
                             + (f" (found {', '.join(ops)})" if ops else ""))
        for k in ("scale", "set"):
            for c, v in (getattr(self, k) or {}).items():
                if v < 0:
                    raise ValueError(f"{k}.{c} is {v}; must be >= 0")
        return self


class PlanFileSpec(Strict):
    """A whole plan file."""

    name: str | None = None
    description: str = ""
    weekly: dict[str, float] | None = None
    spend: dict[str, float | list[float]] | None = None
    csv: str | None = None
    changes: list[ChangeSpec] = Field(default_factory=list)
    controls: dict[str, float | list[float]] = Field(
        default_factory=dict, description="demand controls over the horizon (a number, or one per week)")

    @model_validator(mode="after")
    def _non_negative(self):
        for c, v in (self.weekly or {}).items():
            if v < 0:
                raise ValueError(f"weekly.{c} is {v}; spend must be >= 0")
        for c, v in (self.spend or {}).items():
            for i, x in enumerate(v if isinstance(v, list) else [v]):
                if x < 0:
                    raise ValueError(f"spend.{c} is {x} in week {i + 1}; spend must be >= 0")
        return self


def baseline_plan(scenario, data, horizon: int, *, weeks: int = BASELINE_WEEKS) -> Plan:
    """Continue the average weekly spend of the last ``weeks`` observed weeks over ``horizon`` weeks."""
    spend = data.plan.aligned(scenario.structure.channels)
    avg = spend[-min(weeks, spend.shape[0]):].mean(axis=0)
    return Plan(np.tile(avg, (horizon, 1)), scenario.structure.channels, "baseline")


def load_plan(source: Any, scenario, *, baseline: Plan, horizon: int, name: str | None = None) -> Plan:
    """A :class:`Plan` over ``horizon`` weeks from a file path, a mapping or a Plan.

    ``"baseline"`` (or ``None``) gives the baseline itself.
    """
    channels = scenario.structure.channels
    if source is None or (isinstance(source, str) and source == "baseline"):
        return baseline.with_name(name or "baseline")
    if isinstance(source, Plan):
        return _fit_horizon(source, channels, horizon, source.name).with_name(name or source.name)
    if isinstance(source, Mapping):
        return _from_spec(_validate(dict(source), name or "plan"), channels, baseline, horizon, None, name or "plan",
                          name)
    path = Path(source)
    where = str(path)
    if not path.exists():
        raise InputError("plan file not found", where)
    if path.suffix.lower() == ".csv":
        plan = read_plan_csv(path, name=name or path.stem)
        return _fit_horizon(plan, channels, horizon, where)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise InputError("a plan file is .yaml/.yml or .csv", where)
    from journeysim._util.yaml import read_yaml

    raw = read_yaml(path, "a plan file", "name:, weekly:, spend:, changes:")
    spec = _validate(raw, where)
    return _from_spec(spec, channels, baseline, horizon, path.parent, where, name or spec.name or path.stem)


def _validate(raw: dict, where: str) -> PlanFileSpec:
    from journeysim._util.yaml import format_validation

    try:
        return PlanFileSpec.model_validate(raw)
    except ValidationError as exc:
        raise InputError(format_validation(exc), where) from None


def _channel(c: str, channels, key: str, paid: np.ndarray | None = None) -> int:
    if c not in channels:
        raise InputError(f"unknown channel '{c}'" + did_you_mean(c, channels)
                         + f"; the scenario's channels are {', '.join(channels)}", key)
    j = channels.index(c)
    if paid is not None and not paid[j]:
        raise InputError(f"'{c}' is an owned channel (volume); it takes no spend", key)
    return j


def _fit_horizon(plan: Plan, channels, horizon: int, where: str) -> Plan:
    if plan.weeks < horizon:
        raise InputError(f"the plan covers {plan.weeks} weeks; the forecast horizon is {horizon} weeks", where)
    return Plan(plan.aligned(channels, horizon, where=where), tuple(channels), plan.name, plan.controls)


def _from_spec(spec: PlanFileSpec, channels, baseline: Plan, horizon: int, base_dir: Path | None, where: str,
               name: str | None) -> Plan:
    absolute = spec.weekly is not None or spec.spend is not None or spec.csv is not None
    spend = np.zeros((horizon, len(channels))) if absolute else baseline.aligned(channels, horizon).copy()
    controls = {}
    if spec.csv is not None:
        p = (base_dir or Path.cwd()) / spec.csv
        from_csv = _fit_horizon(read_plan_csv(p), channels, horizon, f"{where}: csv ({spec.csv})")
        spend += from_csv.spend
        controls.update(from_csv.controls or {})
    controls.update(spec.controls)
    for c, v in (spec.weekly or {}).items():
        spend[:, _channel(c, channels, f"{where}: weekly.{c}")] = v
    for c, v in (spec.spend or {}).items():
        key = f"{where}: spend.{c}"
        j = _channel(c, channels, key)
        if isinstance(v, list):
            if len(v) < horizon:
                raise InputError(f"{len(v)} weekly values given; the forecast horizon is {horizon} weeks", key)
            spend[:, j] = v[:horizon]
        else:
            spend[:, j] = v
    for i, ch in enumerate(spec.changes):
        key = f"{where}: changes[{i}]"
        rows = _weeks(ch.weeks, horizon, f"{key}.weeks")
        if ch.scale is not None:
            for c, f in ch.scale.items():
                spend[rows, _channel(c, channels, f"{key}.scale.{c}")] *= f
        elif ch.set is not None:
            for c, v in ch.set.items():
                spend[rows, _channel(c, channels, f"{key}.set.{c}")] = v
        elif ch.total is not None:
            spend[rows] *= ch.total
        else:
            a = _channel(ch.move.from_, channels, f"{key}.move.from")
            b = _channel(ch.move.to, channels, f"{key}.move.to")
            moved = spend[rows, a] * ch.move.share
            spend[rows, a] -= moved
            spend[rows, b] += moved
    return Plan(spend, tuple(channels), name or spec.name or "plan", controls or None)


def _weeks(weeks, horizon: int, key: str):
    if weeks is None:
        return slice(None)
    first, last = (weeks, weeks) if isinstance(weeks, int) else weeks
    if not 1 <= first <= last <= horizon:
        raise InputError(f"weeks {first}..{last} are not inside the horizon 1..{horizon}", key)
    return slice(first - 1, last)

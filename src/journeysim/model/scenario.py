"""Scenario files: YAML in, a frozen, checked :class:`Scenario` out.

This is the one boundary where raw input is validated. Past it, code receives typed, frozen
objects with numpy arrays, never dicts. Every problem is an :class:`~journeysim.InputError` naming
the file, the key path and the problem, with a did-you-mean hint for misspelt names.

>>> sc = load_scenario({"market": {"population": 1000, "agents": 100, "weeks": 4}})
>>> sc.structure.stages[:3]
('unaware', 'aware', 'considering')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from journeysim._util.yaml import format_validation, read_yaml
from journeysim.errors import InputError, did_you_mean
from journeysim.model.delivery import learn_delivery, with_delivery
from journeysim.model.demand import compile_demand
from journeysim.model.dynamics import Params, Structure
from journeysim.model.journey import Journey, parse_edge, template
from journeysim.model.lifttests import check_lift_tests
from journeysim.model.plan import Plan, check_plan, read_plan_csv
from journeysim.model.schema import (
    ChannelSpec,
    JourneySpec,
    ScenarioSpec,
    TargetingSpec,
)

__all__ = ['Scenario', 'load_scenario', 'validate_file', 'WOM', 'DEFAULT_RATES']


#: Name of the word-of-mouth touch source (after the channels in every ``K`` axis).
WOM = "word_of_mouth"

#: Daily base hazards a template starts from; scenario and persona ``rates`` override them.
DEFAULT_RATES: dict[str, dict[str, float]] = {
    "default": {
        "unaware->aware": 0.0005, "aware->unaware": 0.01, "aware->considering": 0.002,
        "considering->aware": 0.03, "considering->purchased": 0.01, "purchased->loyal": 0.03,
        "purchased->aware": 0.004, "purchased->unaware": 0.001, "loyal->purchased": 0.008,
        "loyal->aware": 0.002, "loyal->advocate": 0.002, "advocate->loyal": 0.01,
        "advocate->purchased": 0.008,
    },
    "funnel3": {"unaware->interested": 0.001, "interested->unaware": 0.01,
                "interested->customer": 0.01, "customer->interested": 0.02},
    "subscription": {
        "unaware->aware": 0.0005, "aware->unaware": 0.01, "aware->trial": 0.002, "trial->aware": 0.05,
        "trial->subscribed": 0.04, "subscribed->churned": 0.003, "subscribed->advocate": 0.002,
        "advocate->subscribed": 0.01, "advocate->churned": 0.001, "churned->aware": 0.005,
        "churned->subscribed": 0.001,
    },
    "extended": {
        "unaware->aware": 0.0005, "aware->unaware": 0.01, "aware->considering": 0.002,
        "considering->aware": 0.03, "considering->deciding": 0.02, "deciding->considering": 0.03,
        "deciding->purchased": 0.03, "purchased->using": 0.2, "using->evaluating": 0.05,
        "evaluating->loyal": 0.03, "evaluating->aware": 0.01, "loyal->purchased": 0.008,
        "loyal->advocate": 0.002, "loyal->aware": 0.002, "advocate->loyal": 0.01, "advocate->purchased": 0.008,
    },
    "bass": {"potential->adopter": 0.0},
}


@dataclass(frozen=True)
class Scenario:
    """A checked scenario: the journey, the numeric structure and parameters, the plan.

    Build one with :func:`load_scenario`; derive variants with :meth:`replace`.
    """

    spec: ScenarioSpec
    source: Path | None
    journey: Journey
    structure: Structure
    params: Params
    plan: Plan

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def seed(self) -> int:
        return self.spec.market.seed

    @property
    def weeks(self) -> int:
        return self.spec.market.weeks

    @property
    def start(self) -> dt.date:
        return self.spec.market.start

    @property
    def channels(self) -> tuple[str, ...]:
        return self.structure.channels

    @property
    def personas(self) -> tuple[str, ...]:
        return self.structure.personas

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def replace(self, *, agents: int | None = None, seed: int | None = None, weeks: int | None = None,
                population: float | None = None, plan: Plan | None = None, params: Params | None = None) -> Scenario:
        """A copy with other market settings, plan or parameters (the structure is rebuilt)."""
        market = self.spec.market
        upd = {k: v for k, v in dict(agents=agents, seed=seed, weeks=weeks, population=population).items() if v is not None}
        new = self
        if upd:
            m = market.model_dump()
            m.update(upd)
            raw = self.spec.model_dump(by_alias=True, exclude_unset=False)
            raw["market"] = m
            if weeks is not None:
                raw["events"] = _clip_events(raw.get("events", []), weeks)
            if weeks is not None and plan is None:
                plan = _resize_plan(self.plan, weeks)
            new = _compile(_validate(raw, self._where()), self.source, plan_override=plan or self.plan)
        elif plan is not None:
            new = replace(self, plan=check_plan(plan, self.structure, self.weeks, "plan"))
        if params is not None:
            new = replace(new, params=params)
        return new

    def with_data(self, data) -> Scenario:
        """The scenario with what observed data (:class:`~journeysim.io.observed.ObservedData`)
        tells about it: its demand controls and calendar, standardised over that history, and the
        delivery curves of channels with observed impressions (:mod:`journeysim.model.delivery`).
        The scenario itself when neither applies."""
        st = self.structure
        d = st.demand
        if d is not None:
            start = data.dates[0].date() if len(data.dates) else None
            st = replace(st, demand=d.with_controls(dict(getattr(data, "controls", {}) or {}), start, data.source))
        curves = learn_delivery(self, data)
        if curves:
            st = with_delivery(st, curves)
        return self if st is self.structure else replace(self, structure=st)

    def over(self, data, *, agents: int | None = None) -> Scenario:
        """The scenario over an observed history: its weeks, the spend actually run and the data's
        demand controls (:meth:`with_data`). Its demand terms stay the scenario's own (the horizon
        their trend and latent knots were laid on does not change with the history's length)."""
        weeks = data.weeks if data.weeks != self.weeks else None
        new = self.replace(weeks=weeks, plan=data.plan, agents=agents)
        if self.structure.demand is not None:
            new = replace(new, structure=replace(new.structure, demand=self.structure.demand),
                          params=replace(new.params, demand=self.params.demand))
        return new.with_data(data)

    def _where(self) -> str:
        return str(self.source) if self.source else "scenario"


def _clip_events(events: list[dict], weeks: int) -> list[dict]:
    """Events cut to a shorter horizon: those starting after it are dropped."""
    out = []
    for ev in events:
        w = ev["weeks"]
        first, last = (w, w) if isinstance(w, int) else w
        if first <= weeks:
            out.append({**ev, "weeks": [first, min(last, weeks)]})
    return out


def _resize_plan(plan: Plan, weeks: int) -> Plan:
    if weeks <= plan.weeks:
        return Plan(plan.spend[:weeks], plan.channels, plan.name)
    reps = np.vstack([plan.spend, np.repeat(plan.spend[-1:], weeks - plan.weeks, axis=0)])
    return Plan(reps, plan.channels, plan.name)


# ---------------------------------------------------------------------------------------------
# loading


def load_scenario(source: str | Path | Mapping[str, Any], **overrides) -> Scenario:
    """Read, validate and compile a scenario.

    Parameters
    ----------
    source
        A YAML file path, or the same content as a mapping.
    **overrides
        Market settings to change after loading: ``agents``, ``seed``, ``weeks``, ``population``.

    Raises
    ------
    InputError
        Whatever is wrong, with the file, key path and problem.
    """
    if isinstance(source, Mapping):
        raw, path, where = dict(source), None, "scenario"
    else:
        path = Path(source)
        where = str(path)
        raw = read_yaml(path)
    spec = _validate(raw, where)
    sc = _compile(spec, path)
    if any(v is not None for v in overrides.values()):
        sc = sc.replace(**overrides)
    return sc


def validate_file(path: str | Path) -> Scenario:
    """Check a scenario file; return the scenario or raise :class:`InputError`."""
    return load_scenario(path)


def _validate(raw: dict, where: str) -> ScenarioSpec:
    try:
        return ScenarioSpec.model_validate(raw)
    except ValidationError as exc:
        raise InputError(format_validation(exc), where) from None


# ---------------------------------------------------------------------------------------------
# compiling names into arrays


def _compile(spec: ScenarioSpec, path: Path | None, plan_override: Plan | None = None) -> Scenario:
    where = str(path) if path else "scenario"

    def err(msg, key):
        return InputError(msg, f"{where}: {key}")

    # journey
    js = spec.journey
    if isinstance(js, str):
        js = JourneySpec(template=js)
    if js.template is not None:
        journey = template(js.template, f"{where}: journey.template")
        if js.purchase_stages:
            journey = Journey(journey.stages, journey.edges, tuple(js.purchase_stages))
        defaults = DEFAULT_RATES.get(js.template, {})
    else:
        try:
            journey = Journey(tuple(js.stages), tuple(parse_edge(e, "journey.transitions") for e in js.transitions),
                              tuple(js.purchase_stages or ()))
        except InputError as e:
            raise err(e.problem, e.where or "journey") from None
        defaults = {}
    S, E = journey.n_stages, journey.n_edges
    edges = journey.edge_names

    def edge_idx(name, key):
        try:
            return journey.edge_index(name)
        except InputError as e:
            raise err(e.problem, key) from None

    def stage_idx(name, key):
        try:
            return journey.stage_index(name)
        except InputError as e:
            raise err(e.problem, key) from None

    # personas
    personas = tuple(spec.personas)
    P = len(personas)
    share = np.array([spec.personas[p].share for p in personas])
    if abs(share.sum() - 1.0) > 1e-6:
        raise err(f"persona shares add up to {share.sum():.6g}, not 1", "personas")
    value = np.array([spec.personas[p].value for p in personas])

    base = np.zeros((P, E))
    for name, r in defaults.items():
        base[:, journey.edge_index(name)] = r
    for name, r in (js.rates or {}).items():
        base[:, edge_idx(name, f"journey.rates.{name}")] = r
    for i, p in enumerate(personas):
        for name, r in spec.personas[p].rates.items():
            base[i, edge_idx(name, f"personas.{p}.rates.{name}")] = r

    def shares(d: Mapping[str, float], key: str) -> np.ndarray:
        v = np.zeros(S)
        for name, x in d.items():
            v[stage_idx(name, f"{key}.{name}")] = x
        if abs(v.sum() - 1.0) > 1e-6:
            raise err(f"stage shares add up to {v.sum():.6g}, not 1", key)
        return v

    initial = np.zeros((P, S))
    glob = shares(js.initial, "journey.initial") if js.initial else np.eye(S)[0]
    for i, p in enumerate(personas):
        pi = spec.personas[p].initial
        initial[i] = shares(pi, f"personas.{p}.initial") if pi else glob

    # channels and word of mouth: K = C + 1 sources
    channels = tuple(spec.channels)
    if WOM in channels:
        raise err(f"'{WOM}' is reserved for the word_of_mouth section", f"channels.{WOM}")
    C = len(channels)
    K = C + 1
    sources = channels + (WOM,)
    targeting = np.ones((K, P, S))
    beta = np.zeros((K, E))
    carry = np.zeros(K)
    fhalf = np.full(K, np.inf)
    cap = np.full(K, np.inf)
    cost = np.zeros(C)
    volume = np.zeros(C)

    def fill_targeting(k: int, t: TargetingSpec, key: str):
        pw = np.full(P, t.others if t.personas else 1.0)
        for name, x in t.personas.items():
            if name not in personas:
                raise err(f"unknown persona '{name}'" + did_you_mean(name, personas), f"{key}.personas.{name}")
            pw[personas.index(name)] = x
        sw = np.full(S, t.others if t.stages else 1.0)
        for name, x in t.stages.items():
            sw[stage_idx(name, f"{key}.stages.{name}")] = x
        w = pw[:, None] * sw[None, :]
        if w.max() <= 0:
            raise err("targets nobody (every weight is zero)", key)
        targeting[k] = w / w.max()

    def fill_effects(k: int, effects: Mapping[str, float], key: str):
        for name, b in effects.items():
            beta[k, edge_idx(name, f"{key}.{name}")] = b

    for k, c in enumerate(channels):
        ch: ChannelSpec = spec.channels[c]
        key = f"channels.{c}"
        fill_targeting(k, ch.targeting, f"{key}.targeting")
        fill_effects(k, ch.effects, f"{key}.effects")
        carry[k] = ch.carryover
        fhalf[k] = ch.saturation if ch.saturation is not None else np.inf
        cap[k] = ch.cap if ch.cap is not None else np.inf
        if ch.volume is not None:
            volume[k] = ch.volume
        cost[k] = ch.cost_per_touch

    wom = spec.word_of_mouth
    wom_from = np.zeros(S)
    wom_rate = 0.0
    if wom is not None:
        fill_targeting(C, wom.targeting, "word_of_mouth.targeting")
        fill_effects(C, wom.effects, "word_of_mouth.effects")
        carry[C] = wom.carryover
        wom_rate = wom.rate
        for name, x in wom.from_.items():
            wom_from[stage_idx(name, f"word_of_mouth.from.{name}")] = x

    affinity = np.ones((K, P))
    for i, p in enumerate(personas):
        for name, a in spec.personas[p].affinity.items():
            if name not in sources:
                raise err(f"unknown channel '{name}'" + did_you_mean(name, sources), f"personas.{p}.affinity.{name}")
            affinity[sources.index(name), i] = a

    # events
    W = spec.market.weeks
    edge_mult = np.ones((W, P, E))
    chan_mult = np.ones((W, K, P))
    for j, ev in enumerate(spec.events):
        key = f"events[{j}] ({ev.name})"
        first, last = (ev.weeks, ev.weeks) if isinstance(ev.weeks, int) else ev.weeks
        if not (1 <= first <= last <= W):
            raise err(f"weeks {first}..{last} are not inside the horizon 1..{W}", f"{key}.weeks")
        pmask = np.ones(P, bool)
        if ev.personas is not None:
            pmask[:] = False
            for name in ev.personas:
                if name not in personas:
                    raise err(f"unknown persona '{name}'" + did_you_mean(name, personas), f"{key}.personas")
                pmask[personas.index(name)] = True
        sl = slice(first - 1, last)
        for name, m in ev.multiply.items():
            e = edge_idx(name, f"{key}.multiply.{name}")
            edge_mult[sl, pmask, e] *= m
        for name, m in ev.channels.items():
            if name not in sources:
                raise err(f"unknown channel '{name}'" + did_you_mean(name, sources), f"{key}.channels.{name}")
            chan_mult[sl, sources.index(name), pmask] *= m

    check_lift_tests(spec, journey.stages, channels, where)
    demand, demand_values = compile_demand(spec, journey, W, spec.market.start, path.parent if path else None, where)

    stage_order = np.arange(S)
    first_purchase = min(journey.stages.index(s) for s in journey.purchase_stages)
    structure = Structure(
        stages=journey.stages, edges=edges, personas=personas, channels=channels,
        src=journey.src, dst=journey.dst, src_matrix=journey.src_matrix, dst_matrix=journey.dst_matrix,
        purchase_edges=journey.purchase_edges, customer_stages=stage_order >= first_purchase,
        persona_share=share, value=value, targeting=targeting, affinity=affinity,
        cost_per_touch=cost, owned_volume=volume, wom_from=wom_from,
        edge_multiplier=edge_mult, channel_multiplier=chan_mult,
        population=float(spec.market.population), agents=int(spec.market.agents),
        dt=1 if spec.market.step == "day" else 7, demand=demand,
    )
    params = Params(base=base, beta=beta, carryover=carry, fhalf=fhalf, wom_rate=np.float64(wom_rate), initial=initial,
                    demand=demand_values, cap=cap)
    plan = plan_override if plan_override is not None else _plan_from_spec(spec, structure, path)
    plan = check_plan(plan, structure, W, f"{where}: plan")
    return Scenario(spec=spec, source=path, journey=journey, structure=structure, params=params, plan=plan)


def _plan_from_spec(spec: ScenarioSpec, structure: Structure, path: Path | None) -> Plan:
    W = spec.market.weeks
    channels = structure.channels
    where = str(path) if path else "scenario"
    ps = spec.plan
    spend = np.zeros((W, len(channels)))
    if ps.csv is not None:
        base = path.parent if path else Path.cwd()
        plan = read_plan_csv(base / ps.csv, name="plan")
        if plan.weeks < W:
            raise InputError(f"{ps.csv} covers {plan.weeks} weeks; the market horizon is {W} weeks", f"{where}: plan.csv")
        spend += plan.aligned(channels, W, where=f"{where}: plan.csv ({ps.csv})")
    for c, v in ps.spend.items():
        key = f"{where}: plan.spend.{c}"
        if c not in channels:
            raise InputError(f"unknown channel '{c}'" + did_you_mean(c, channels), key)
        if isinstance(v, list):
            if len(v) != W:
                raise InputError(f"{len(v)} weekly values given; the horizon is {W} weeks (give one number for a constant spend)", key)
            spend[:, channels.index(c)] = v
        else:
            spend[:, channels.index(c)] = v
    return Plan(spend, channels, "plan")

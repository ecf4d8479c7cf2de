"""Generate the example observed datasets from the scenarios' own parameters (the truth).

For each example scenario: run the agent engine with the parameters written in the file, map its
weekly outputs to the observed KPI columns (``observations:``) and add observation noise. Writes
``data/<name>_observed.csv`` (the data a fit sees) and ``data/<name>_truth.json`` (the values of
the uncertain parameters that generated it).

A scenario with demand controls (``demand.controls``) reads them from its observed CSV, so they
cannot come from the simulation: :data:`CONTROLS` holds each one's weekly series (the business's
calendar, the same for every seed). The agents run with them standardised over the horizon, as a
fit standardises the CSV's columns, and the CSV gets them as columns.

    python scenarios/make_data.py            # all examples
    python scenarios/make_data.py retail     # one
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from journeysim.engine.simulation import Simulation
from journeysim.inference.priors import build_space
from journeysim.model.observe import expected_kpi, sample_kpi, weekly_arrays
from journeysim.model.rng import stream
from journeysim.model.scenario import load_scenario

HERE = Path(__file__).parent
EXAMPLES = ("retail", "subscription", "funnel3", "shop", "funnel3_demand")


def _flags(weeks: int, on: tuple[int, ...]) -> np.ndarray:
    """A 0/1 weekly flag over ``weeks`` weeks, 1 in weeks ``on`` (counted from 0)."""
    return np.isin(np.arange(weeks), on).astype(float)


#: Weekly values of the demand controls of the examples that have some: scenario -> column -> values.
#: funnel3_demand's promotions: ten weeks of 78, off the display bursts (weeks 4-7 and 16-19 of
#: each 26-week block), so their effect is not confounded with display's.
CONTROLS = {
    "funnel3_demand": {"promo": _flags(78, (10, 11, 24, 36, 37, 50, 51, 62, 63, 75))},
}


def with_controls(sc, name: str):
    """``sc`` with the demand controls of :data:`CONTROLS` standardised over its horizon (``sc`` itself
    without demand controls); refuses a scenario whose controls are not in :data:`CONTROLS`."""
    d = sc.structure.demand
    if d is None or not d.controls:
        return sc
    values = {c: np.asarray(v, float)[:sc.weeks] for c, v in CONTROLS.get(name, {}).items()}
    new = d.with_controls(values, sc.start, f"make_data.CONTROLS[{name!r}]")
    return replace(sc, structure=replace(sc.structure, demand=new))


def observed_frame(sc, ds, seed: int) -> pd.DataFrame:
    """The observed weekly table a business would see of simulation ``ds``: dates, spend of the paid
    channels, and each ``observations:`` column with observation noise (stream ``seed``)."""
    arrays = weekly_arrays(ds)
    rng = stream(seed, "observation-noise")
    st = sc.structure
    cols = {"date": [d.date().isoformat() for d in pd.DatetimeIndex(ds.time.values)]}
    for c, ch in enumerate(st.channels):
        if st.cost_per_touch[c] > 0:
            cols[f"spend_{ch}"] = np.round(sc.plan.spend[:, c], 2)
    d = st.demand
    for j, c in enumerate(d.controls if d is not None else ()):
        cols[c] = np.round(d.table[:len(cols["date"]), j] * d.sd[j] + d.mean[j], 10)  # the raw values again
    for obs in sc.spec.observations:
        mask = np.array([s in obs.stages for s in st.stages], float)
        mu = expected_kpi(np, arrays, obs.measures, mask, st.population, obs.scale)
        lik = obs.likelihood or ("binomial" if obs.measures == "share" else "negbin")
        if lik == "binomial":
            y = sample_kpi(rng, mu, "binomial", sample_size=np.full(mu.shape, obs.sample_size))
            y = np.where(np.arange(mu.size) % 4 == 3, np.round(y, 5), np.nan)  # a monthly survey
        else:
            y = sample_kpi(rng, mu, lik)
        cols[obs.column] = y
    return pd.DataFrame(cols)


def make(name: str, out_dir: Path = HERE / "data", seed: int | None = None) -> pd.DataFrame:
    sc = with_controls(load_scenario(HERE / f"{name}.yaml"), name)
    seed = sc.seed if seed is None else seed
    df = observed_frame(sc, Simulation(sc, seed=seed).run(), seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_dir / f"{name}_observed.csv", index=False)
    space = build_space(sc)
    truth = dict(zip(space.names, space.values_of(sc.params).tolist()))
    (out_dir / f"{name}_truth.json").write_text(json.dumps({"scenario": f"{name}.yaml", "seed": seed,
                                                            "truth": truth}, indent=2) + "\n")
    return df


if __name__ == "__main__":
    for n in sys.argv[1:] or EXAMPLES:
        df = make(n)
        print(f"{n}: {len(df)} weeks, columns {', '.join(df.columns)}")

"""What makes each KPI over the history: base, seasonality, trend, controls, latent demand and each channel.

The model is not additive (channels and demand multiply hazards, people move through stages), so
each part is measured as a counterfactual: the fitted twin over the history minus the same twin
with that part switched off (a channel's effects set to zero, owned channels included; a demand
term's coefficients set to zero), per posterior draw; the base is what is left (with word of mouth). The same counterfactuals give each part's
contribution to the people entering every stage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from journeysim.inference.posterior import Fit, posterior_params
from journeysim.io.observed import ObservedData
from journeysim.model.observe import expected_kpi, weekly_arrays

__all__ = ['decompose', 'decomposition_table']


def _parts(scenario) -> list[tuple[str, str, object]]:
    """``(label, kind, what)``: demand groups (indices of their coefficients), then paid channels."""
    st = scenario.structure
    d = st.demand
    out = []
    if d is not None:
        names = d.names
        groups = (("seasonality", [j for j, n in enumerate(names) if n.startswith("demand.season.")]),
                  ("trend", [j for j, n in enumerate(names) if n == "demand.trend"]),
                  ("latent demand", [j for j, n in enumerate(names) if n.startswith("demand.latent.")]),
                  ("demand shocks", [j for j, n in enumerate(names) if n.startswith("demand.shock.")]))
        out += [(label, "demand", idx) for label, idx in groups if idx]
        for c in d.controls:
            out.append((c, "demand", [names.index(f"demand.control.{c}")]))
        for h in d.holidays:
            out.append((h.replace("_", " "), "demand", [names.index(f"demand.holiday.{h}")]))
    for k, c in enumerate(st.channels):
        out.append((c, "channel", k))
    return out


def decompose(scenario, fit: Fit, data: ObservedData, *, max_draws: int = 40) -> xr.Dataset:
    """Per KPI and week, each part's contribution (posterior mean over ``max_draws`` draws).

    Returns a Dataset with ``<column> (part, time)`` for every observed KPI (parts: ``total``,
    ``base`` and the parts of :func:`_parts`) and ``entries (part, time, stage)``.
    """
    from journeysim.twin.run import Twin

    sc = scenario.with_data(data)
    params, _ = posterior_params(sc, fit, max_draws=max_draws)
    n = np.asarray(params.wom_rate).shape[0]
    hist = sc.over(data)
    parts = _parts(sc)
    V = 1 + len(parts)
    wide = params.broadcast((n,))
    pv = {k: (None if x is None else np.broadcast_to(x, (V,) + np.shape(x)).copy()) for k, x in wide.as_dict().items()}
    for v, (_, kind, what) in enumerate(parts, start=1):
        if kind == "channel":
            pv["beta"][v, :, what, :] = 0.0  # (v, draw, source, edge)
        else:
            pv["demand"][v, :, what] = 0.0
    from journeysim.model.dynamics import Params

    spend = np.asarray(data.plan.aligned(sc.structure.channels), float)
    ds = Twin(hist, params=Params(**pv), plan=spend).run(batch_dims=("part", "draw"))
    arrays = weekly_arrays(ds)
    st = sc.structure
    labels = ["total"] + [p[0] for p in parts]
    out = {}
    for obs in data.observations:
        mask = np.array([s in obs.stages for s in st.stages], float)
        mu = expected_kpi(np, arrays, obs.measures, mask, st.population, obs.scale).mean(axis=1)  # (V, W)
        contrib = mu[0][None] - mu[1:]
        out[obs.column] = (("part", "time"), np.vstack([mu[:1], (mu[0] - contrib.sum(axis=0))[None], contrib]))
    ent = ds.entries.sum("persona").mean("draw").values  # (V, W, S)
    out["entries"] = (("part", "time", "stage"), np.concatenate([ent[:1], (ent[0] - (ent[0][None] - ent[1:]).sum(0))[None],
                                                                 ent[0][None] - ent[1:]]))
    return xr.Dataset(out, coords={"part": [labels[0], "base", *labels[1:]], "time": data.dates,
                                   "stage": list(st.stages)},
                      attrs={"note": "each part: the fitted twin minus the twin without it; base: what is left; "
                                     "posterior mean"})


def decomposition_table(dec: xr.Dataset) -> pd.DataFrame:
    """Share of each KPI's total over the history that each part makes (rows: parts; columns: KPIs)."""
    cols = [v for v in dec.data_vars if v != "entries"]
    rows = {}
    for c in cols:
        x = dec[c].sum("time")
        total = float(x.sel(part="total"))
        rows[c] = {str(p): float(x.sel(part=p)) / total if total else np.nan for p in dec.part.values if p != "total"}
    return pd.DataFrame(rows)

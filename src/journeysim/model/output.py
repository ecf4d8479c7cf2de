"""Weekly records of a run, labelled as an ``xarray.Dataset`` (the same layout for every engine).

Variables (people, not agents; flows summed over the week, stocks at its end):

===================  ============================  ==============================================
variable             dims                          meaning
===================  ============================  ==============================================
``stage_size``       time, persona, stage          people in each stage at the end of the week
``flow``             time, persona, transition     people taking each transition during the week
``entries``          time, persona, stage          people entering each stage during the week
``purchases_new``    time, persona                 first purchases (new customers)
``purchases_repeat`` time, persona                 purchases by people who had bought before
``purchases``        time, persona                 all purchases
``revenue``          time, persona                 purchases times value
``impressions``      time, channel                 touches delivered (impressions, clicks, visits)
``reach``            time, channel                 people touched at least once that week
``spend``            time, channel                 money spent
``referrals``        time                          recommendations made (word of mouth)
===================  ============================  ==============================================
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from journeysim.model.dynamics import Structure

__all__ = ['WeeklyRecord', 'to_dataset', 'summarize', 'save_dataset']


class WeeklyRecord:
    """Accumulators of one run, ``(weeks, ...)`` arrays in people."""

    def __init__(self, weeks: int, st: Structure, batch: tuple[int, ...] = ()):
        P, S, E, C = len(st.personas), len(st.stages), len(st.edges), len(st.channels)
        z = lambda *shape: np.zeros(batch + (weeks,) + shape)  # noqa: E731
        self.stage_size = z(P, S)
        self.flow = z(P, E)
        self.purchases_new = z(P)
        self.purchases_repeat = z(P)
        self.revenue = z(P)
        self.impressions = z(C)
        self.reach = z(C)
        self.spend = z(C)
        self.referrals = z()


def to_dataset(rec: WeeklyRecord, scenario, *, engine: str, plan_name: str = "plan", start_day: int = 0,
               batch_dims: tuple[str, ...] = (), batch_coords: dict | None = None,
               attrs: dict[str, Any] | None = None) -> xr.Dataset:
    """Label a :class:`WeeklyRecord` as a Dataset with ``time`` (week start dates) and names."""
    st = scenario.structure
    weeks = rec.flow.shape[len(batch_dims)]
    start_day = int((attrs or {}).get("start_day", start_day))
    t0 = pd.Timestamp(scenario.start) + pd.Timedelta(days=start_day)
    time = pd.date_range(t0, periods=weeks, freq="7D")
    b = tuple(batch_dims)
    dims = {
        "stage_size": b + ("time", "persona", "stage"),
        "flow": b + ("time", "persona", "transition"),
        "purchases_new": b + ("time", "persona"),
        "purchases_repeat": b + ("time", "persona"),
        "revenue": b + ("time", "persona"),
        "impressions": b + ("time", "channel"),
        "reach": b + ("time", "channel"),
        "spend": b + ("time", "channel"),
        "referrals": b + ("time",),
    }
    data = {k: (d, getattr(rec, k)) for k, d in dims.items()}
    coords = {"time": time, "persona": list(st.personas), "stage": list(st.stages),
              "transition": list(st.edges), "channel": list(st.channels), **(batch_coords or {})}
    ds = xr.Dataset(data, coords=coords)
    ds["entries"] = xr.dot(ds.flow, xr.DataArray(st.dst_matrix, dims=("transition", "stage"),
                                                 coords={"transition": list(st.edges), "stage": list(st.stages)}),
                           dim="transition")
    ds["purchases"] = ds.purchases_new + ds.purchases_repeat
    units = {"stage_size": "people", "flow": "people/week", "entries": "people/week", "purchases": "purchases/week",
             "purchases_new": "purchases/week", "purchases_repeat": "purchases/week", "revenue": "currency/week",
             "impressions": "touches/week", "reach": "people/week", "spend": "currency/week",
             "referrals": "recommendations/week"}
    for k, u in units.items():
        ds[k].attrs["units"] = u
    ds.attrs.update({"scenario": scenario.name, "engine": engine, "plan": plan_name,
                     "population": float(st.population), "created_by": "journeysim"})
    for k, v in (attrs or {}).items():
        ds.attrs[k] = v if isinstance(v, (int, float, str)) else str(v)
    return ds


def summarize(ds: xr.Dataset) -> dict[str, Any]:
    """Headline totals of a single run as plain numbers (for printing and ``summary.json``)."""
    tot = lambda v: float(ds[v].sum())  # noqa: E731
    spend = tot("spend")
    revenue = tot("revenue")
    purchases = tot("purchases")
    new = tot("purchases_new")
    last = ds.stage_size.isel(time=-1).sum("persona")
    first = ds.stage_size.isel(time=0).sum("persona")
    out = {
        "scenario": ds.attrs.get("scenario"),
        "engine": ds.attrs.get("engine"),
        "weeks": int(ds.sizes["time"]),
        "start": str(pd.Timestamp(ds.time.values[0]).date()),
        "population": ds.attrs.get("population"),
        "spend": spend,
        "purchases": purchases,
        "new_customers": new,
        "repeat_purchases": tot("purchases_repeat"),
        "revenue": revenue,
        "referrals": tot("referrals"),
        # (all revenue over all spend: not ROAS, which is incremental revenue / incremental spend)
        "revenue_per_spend": revenue / spend if spend > 0 else None,
        "spend_per_new_customer": spend / new if new > 0 else None,
        "stage_size_first_week": {s: float(first.sel(stage=s)) for s in ds.stage.values},
        "stage_size_last_week": {s: float(last.sel(stage=s)) for s in ds.stage.values},
        "by_channel": {
            c: {"spend": float(ds.spend.sel(channel=c).sum()),
                "impressions": float(ds.impressions.sel(channel=c).sum()),
                "mean_weekly_reach": float(ds.reach.sel(channel=c).mean())}
            for c in ds.channel.values
        },
    }
    return out


def save_dataset(ds: xr.Dataset, path) -> None:
    """Write netCDF atomically (a temporary file renamed into place)."""
    from journeysim._util.files import atomic_path

    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")

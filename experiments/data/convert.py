"""Turn the public example datasets into journeysim's observed-data format.

journeysim reads a weekly CSV with a ``date`` column, ``spend_<channel>`` columns, optional
``impressions_<channel>`` columns and KPI columns mapped by a scenario's ``observations:`` (see
``src/journeysim/data.py``). This script writes those files from the raw copies kept next to it:

``meridian``
    ``meridian_geo_full_funnel_data.csv`` (20 geos x 156 weeks) summed over geos to one national
    weekly series -> ``meridian_funnel_observed.csv`` with ``spend_/impressions_`` of
    ``awareness_video``, ``performance_display``, ``performance_native``, ``branded_queries``
    (``BrandedGQV_control``) and ``conversions``, both rounded to whole counts, and
    ``generic_queries`` (``GenericGQV_control``: the category's search demand), a demand control.
``robyn``
    ``robyn_dt_simulated_weekly.csv`` (208 weeks) renamed -> ``robyn_observed.csv`` with
    ``spend_`` of tv, ooh, print, facebook, search; ``spend_newsletter`` = the newsletter's
    weekly sends (priced at 1 per send in the scenario, so its weekly volume is part of the
    plan) and ``revenue``. Facebook impressions and search clicks are left out: their ratio to
    spend varies by week, and journeysim's forecasts and posterior predictive run from spend
    (CPM / CPC of the scenario are the data's averages).
    Robyn's context variables become demand controls of the scenario's ``demand:`` section:
    ``competitor_sales`` (``competitor_sales_B``) and ``events`` (1 in event weeks).

Usage::

    python experiments/data/convert.py            # both
    python experiments/data/convert.py meridian
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from journeysim._util.files import write_text
from journeysim.errors import InputError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

MERIDIAN_CHANNELS = {"AwarenessVideo": "awareness_video", "PerformanceDisplay": "performance_display",
                     "PerformanceNative": "performance_native"}


def _require(df: pd.DataFrame, cols, where: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", where)


def meridian(src: Path = HERE / "meridian_geo_full_funnel_data.csv",
             out: Path = HERE / "meridian_funnel_observed.csv") -> pd.DataFrame:
    """National weekly series from Meridian's geo full-funnel data (sum over geos)."""
    raw = pd.read_csv(src)
    cols = ["geo", "time", "BrandedGQV_control", "conversions", "population"]
    cols += [f"{k}_{x}" for k in MERIDIAN_CHANNELS for x in ("spend", "impression")]
    _require(raw, cols, str(src))
    geos = raw["geo"].nunique()
    per_week = raw.groupby("time").size()
    if (per_week != geos).any():
        raise InputError(f"week {per_week.index[np.argmax(per_week != geos)]} lacks some geos", str(src))
    nat = raw.drop(columns=["geo"]).groupby("time", sort=True).sum(numeric_only=True)
    df = pd.DataFrame({"date": pd.to_datetime(nat.index).strftime("%Y-%m-%d")})
    for k, name in MERIDIAN_CHANNELS.items():
        df[f"spend_{name}"] = np.round(nat[f"{k}_spend"].to_numpy(), 2)
        df[f"impressions_{name}"] = np.round(nat[f"{k}_impression"].to_numpy())
    df["branded_queries"] = np.round(nat["BrandedGQV_control"].to_numpy())
    df["conversions"] = np.round(nat["conversions"].to_numpy())
    if "GenericGQV_control" in nat.columns:  # category demand: a control of the scenario's demand: section
        df["generic_queries"] = np.round(nat["GenericGQV_control"].to_numpy())
    write_text(df.to_csv(index=False), out)
    return df


def meridian_population(src: Path = HERE / "meridian_geo_full_funnel_data.csv") -> float:
    """Total population of the 20 geos (the national market size)."""
    raw = pd.read_csv(src)
    return float(raw.groupby("geo")["population"].first().sum())


def robyn(src: Path = HERE / "robyn_dt_simulated_weekly.csv", out: Path = HERE / "robyn_observed.csv") -> pd.DataFrame:
    """Robyn's simulated weekly data in journeysim's format, with its context variables as demand
    controls: ``competitor_sales`` (Robyn's ``competitor_sales_B``, which moves with the category's
    demand) and ``events`` (1 in the weeks Robyn marks with an event, else 0)."""
    raw = pd.read_csv(src)
    _require(raw, ["DATE", "revenue", "tv_S", "ooh_S", "print_S", "facebook_I", "search_clicks_P", "search_S",
                   "competitor_sales_B", "facebook_S", "newsletter", "events"], str(src))
    df = pd.DataFrame({"date": pd.to_datetime(raw["DATE"]).dt.strftime("%Y-%m-%d")})
    for ch in ("tv", "ooh", "print", "facebook", "search"):
        df[f"spend_{ch}"] = np.round(raw[f"{ch}_S"].to_numpy(float), 2)
    # sends priced at 1 each (cpm 1000 in the scenario): the newsletter's weekly volume becomes
    # a plan column that forecasts can replay (owned channels have a constant volume)
    df["spend_newsletter"] = np.round(raw["newsletter"].to_numpy(float))
    df["competitor_sales"] = np.round(raw["competitor_sales_B"].to_numpy(float))
    df["events"] = (raw["events"].fillna("na").astype(str).str.strip() != "na").astype(int)
    df["revenue"] = np.round(raw["revenue"].to_numpy(float), 2)
    write_text(df.to_csv(index=False), out)
    return df


def main(argv: list[str]) -> int:
    which = argv or ["meridian", "robyn"]
    for name in which:
        if name == "meridian":
            df = meridian()
            print(f"meridian: {len(df)} weeks, population {meridian_population():,.0f} -> {HERE / 'meridian_funnel_observed.csv'}")
        elif name == "robyn":
            df = robyn()
            print(f"robyn: {len(df)} weeks -> {HERE / 'robyn_observed.csv'}")
        else:
            print(f"unknown dataset '{name}': use meridian or robyn", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Peer side of the journeysim vs PyMC-Marketing study on the ground-truth worlds.

PyMC-Marketing's media-mix model is fitted, the way a new user would set it up, on each world's
weekly history (target: purchases):

* channels: ``spend_tv, spend_social, spend_search, spend_display`` (currency per week, so the
  budget optimiser works in the same units as the plans);
* geometric adstock (``l_max`` 8 weeks) followed by logistic saturation, default priors;
* yearly seasonality with 2 Fourier modes;
* controls: a linear trend (weeks since the first observed week / history length) plus the
  world's observed controls (``promo``, ``price_index``) when present;
* nutpie NUTS sampler when available (else PyMC's default).

Then, for every what-if plan of the world, the delta in total purchases over the 34 forecast
weeks versus the baseline plan is forecast with a 90% interval (per posterior draw, plan and
baseline share the draw), and PyMC-Marketing's budget optimiser is asked to split the baseline's
26-week budget across the four channels.  Both are scored against the world's exact truth.

    python experiments/peer_mmm.py                              # 3 worlds, seed 0, 2 x 500 draws
    python experiments/peer_mmm.py --worlds segments --seeds 0 1 --draws 200 --tune 200

Writes ``experiments/results/peer_mmm/<world>_seed<k>.json`` and prints a table per world.
Run from the repository root.  No journeysim import here: this is the peer only.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeysim.planning.optimization import MAX_CHANGE  # the same limit for both optimisers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "results" / "peer_mmm"
if str(ROOT) not in sys.path:  # allow `python experiments/peer_mmm.py` from the repo root
    sys.path.insert(0, str(ROOT))

CHANNELS = ("tv", "social", "search", "display")
SPEND = [f"spend_{c}" for c in CHANNELS]
KNOWN_CONTROLS = ("promo", "price_index")  # observed controls a world may provide
TARGET = "purchases"
L_MAX = 8
N_FOURIER = 2
N_PLAN = 26  # weeks of a plan; the remaining forecast weeks carry the baseline
Q_LO, Q_HI = 0.05, 0.95  # 90% interval


# --------------------------------------------------------------------------------------------
# fitting


@dataclass
class PeerFit:
    """A fitted PyMC-Marketing MMM plus what is needed to build its inputs for new weeks."""

    mmm: Any
    controls: list[str]  # world controls used (subset of KNOWN_CONTROLS); "trend" is added on top
    t0: pd.Timestamp  # first observed week (origin of the trend)
    n_history: int
    sampler: str
    draws: int
    tune: int
    chains: int
    fit_seconds: float
    divergences: int
    max_rhat: float
    min_ess_bulk: float
    target_scale: float = field(repr=False, default=1.0)

    def summary(self) -> dict:
        """JSON-able description of the fit."""
        return {"sampler": self.sampler, "draws": self.draws, "tune": self.tune, "chains": self.chains,
                "controls": ["trend", *self.controls], "fit_seconds": self.fit_seconds,
                "divergences": self.divergences, "max_rhat": self.max_rhat, "min_ess_bulk": self.min_ess_bulk}


def _design(df: pd.DataFrame, t0: pd.Timestamp, n_history: int, controls: list[str],
            spend: list[str] | None = None) -> pd.DataFrame:
    """Model inputs X: date, spend columns, the linear trend and the world's controls.

    The trend is weeks since ``t0`` divided by the history length, so it runs 0..1 over the
    history and continues (beyond 1) by date in the forecast.  Controls are not scaled by
    PyMC-Marketing, hence the normalisation.
    """
    X = pd.DataFrame({"date": pd.to_datetime(df["date"])})
    for col in spend or SPEND:
        X[col] = df[col].to_numpy(dtype=float)
    X["trend"] = ((X["date"] - t0).dt.days / 7.0) / n_history
    for col in controls:
        X[col] = df[col].to_numpy(dtype=float)
    return X.reset_index(drop=True)


def _diagnostics(mmm) -> tuple[int, float, float]:
    """Divergences, max r-hat and min bulk ESS over the model's free parameters."""
    import arviz as az

    idata = mmm.idata
    names = [rv.name for rv in mmm.model.free_RVs if rv.name in idata.posterior]
    summ = az.summary(idata, var_names=names, kind="diagnostics")
    div = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    return div, float(summ["r_hat"].max()), float(summ["ess_bulk"].min())


def _target_scale(mmm) -> float:
    return float(np.asarray(mmm.get_scales_as_xarray()["target_scale"]).squeeze())


def fit_peer(history: pd.DataFrame, *, seed: int, draws: int = 500, tune: int = 500, chains: int = 2,
             target: str = TARGET, spend: list[str] | None = None) -> PeerFit:
    """Fit PyMC-Marketing's MMM (multidimensional API, no extra dims) on ``history``'s ``target``
    (default the worlds' purchases) with the ``spend`` columns (default the worlds' four)."""
    import importlib.util

    from pymc_marketing.mmm import GeometricAdstock, LogisticSaturation
    from pymc_marketing.mmm.multidimensional import MMM

    logging.getLogger("pymc").setLevel(logging.ERROR)  # silence "Sampling: []" on every predictive call
    controls = [c for c in KNOWN_CONTROLS if c in history.columns]
    t0 = pd.Timestamp(history["date"].iloc[0])
    spend = list(spend or SPEND)
    X = _design(history, t0, len(history), controls, spend)
    y = pd.Series(history[target].to_numpy(dtype=float), name=target)

    def build():
        return MMM(date_column="date", channel_columns=spend, target_column=target,
                   adstock=GeometricAdstock(l_max=L_MAX), saturation=LogisticSaturation(),
                   control_columns=["trend", *controls], yearly_seasonality=N_FOURIER)

    kwargs = {"draws": draws, "tune": tune, "chains": chains, "cores": min(chains, 2), "random_seed": seed,
              "progressbar": False}
    samplers = (["nutpie"] if importlib.util.find_spec("nutpie") else []) + ["pymc"]
    for i, sampler in enumerate(samplers):
        mmm = build()
        t_start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mmm.fit(X, y, nuts_sampler=sampler, **kwargs)
        except Exception as exc:  # nutpie missing a feature on this version: fall back to PyMC's NUTS
            if i == len(samplers) - 1:
                raise
            print(f"  sampler {sampler} failed ({type(exc).__name__}: {exc}); falling back", flush=True)
            continue
        seconds = time.perf_counter() - t_start
        break
    div, rhat, ess = _diagnostics(mmm)
    return PeerFit(mmm=mmm, controls=controls, t0=t0, n_history=len(history), sampler=sampler, draws=draws,
                   tune=tune, chains=chains, fit_seconds=seconds, divergences=div, max_rhat=rhat,
                   min_ess_bulk=ess, target_scale=_target_scale(mmm))


# --------------------------------------------------------------------------------------------
# forecasting


def _forecast_draws(fit: PeerFit, history: pd.DataFrame, plan_df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per posterior draw: totals over the plan's weeks of expected purchases and of media contribution.

    The model is evaluated on history + plan concatenated (so adstock carries over from the end of
    the history, and seasonality/trend continue by date), and the plan's weeks are taken.  The
    expected purchases are the model mean: intercept + media + controls + seasonality (no
    observation noise).  Draws are in the posterior's (chain, draw) order, so totals of different
    plans line up draw by draw.
    """
    import arviz as az

    mmm = fit.mmm
    full = pd.concat([history[["date", *SPEND, *fit.controls]], plan_df[["date", *SPEND, *fit.controls]]],
                     ignore_index=True)
    X = _design(full, fit.t0, fit.n_history, fit.controls)
    n_fc = len(plan_df)
    var_names = ["channel_contribution", "control_contribution", "yearly_seasonality_contribution"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp = mmm.sample_posterior_predictive(X, extend_idata=False, combined=True, include_last_observations=False,
                                             var_names=var_names, random_seed=0, progressbar=False)

    def weekly(name):  # (sample, date) in scaled target units, other dims summed out
        da = pp[name]
        da = da.sum([d for d in da.dims if d not in ("sample", "date")])
        return np.asarray(da.transpose("sample", "date").values)

    media = weekly("channel_contribution")
    other = weekly("control_contribution") + weekly("yearly_seasonality_contribution")
    intercept = np.asarray(az.extract(mmm.idata, var_names="intercept_contribution").values).reshape(-1)
    assert media.shape[1] == len(X) and intercept.shape[0] == media.shape[0]
    scale = fit.target_scale
    sl = slice(len(X) - n_fc, None)
    return {"media": media[:, sl].sum(axis=1) * scale,
            "mean": (media[:, sl].sum(axis=1) + other[:, sl].sum(axis=1) + intercept * n_fc) * scale}


def in_sample_check(fit: PeerFit, history: pd.DataFrame, baseline_df: pd.DataFrame) -> float:
    """Max relative gap, over the history weeks, between the fitted media contribution and the one
    re-computed through the forecast path (history + baseline concatenated, so the data differ from
    the training data and PyMC really recomputes).  ~0 means same scaling and same draw order."""
    import arviz as az

    full = pd.concat([history[["date", *SPEND, *fit.controls]], baseline_df[["date", *SPEND, *fit.controls]]],
                     ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp = fit.mmm.sample_posterior_predictive(_design(full, fit.t0, fit.n_history, fit.controls),
                                                 extend_idata=False, combined=True,
                                                 var_names=["channel_contribution"], random_seed=0, progressbar=False)
    pp = pp["channel_contribution"] if hasattr(pp, "data_vars") else pp  # one variable: a DataArray
    a = np.asarray(pp.sum("channel").transpose("sample", "date").values)[:, :fit.n_history]
    post = az.extract(fit.mmm.idata, var_names="channel_contribution").sum("channel")
    b = np.asarray(post.transpose("sample", "date").values)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def _interval(x: np.ndarray) -> dict:
    lo, med, hi = np.quantile(x, [Q_LO, 0.5, Q_HI])
    return {"mean": float(np.mean(x)), "median": float(med), "lo90": float(lo), "hi90": float(hi)}


def forecast_peer(fit: PeerFit, history: pd.DataFrame, plan_df: pd.DataFrame, baseline_df: pd.DataFrame) -> dict:
    """Delta in total purchases over the plan's weeks versus the baseline, with a 90% interval.

    Plan and baseline are evaluated the same way on the same posterior draws; the delta is taken
    per draw, then summarised.
    """
    if len(plan_df) != len(baseline_df) or list(plan_df["date"]) != list(baseline_df["date"]):
        raise ValueError("plan and baseline must cover the same forecast weeks")
    p = _forecast_draws(fit, history, plan_df)
    b = _forecast_draws(fit, history, baseline_df)
    delta = p["mean"] - b["mean"]
    return {"delta": _interval(delta), "media_delta": _interval(p["media"] - b["media"]),
            "plan_total": float(p["mean"].mean()), "baseline_total": float(b["mean"].mean()),
            "pct_of_baseline": float(100 * delta.mean() / b["mean"].mean()), "n_draws": int(delta.size)}


# --------------------------------------------------------------------------------------------
# budget optimisation


def weekly_pattern(baseline_df: pd.DataFrame, n_plan: int = N_PLAN) -> np.ndarray:
    """(n_plan, 4) weekly pattern of the baseline per channel, columns summing to 1.

    Same rule as the worlds' ``World._pattern`` (a channel with no baseline spend is spread
    evenly), so a share vector maps to the same plan for the peer and for ``true_optimum``.
    """
    base = baseline_df[SPEND].to_numpy(dtype=float)[:n_plan]
    tot = base.sum(axis=0)
    return np.where(tot > 0, base / np.where(tot > 0, tot, 1.0), 1.0 / n_plan)


def plan_from_shares(baseline_df: pd.DataFrame, shares: np.ndarray, total_budget: float,
                     n_plan: int = N_PLAN) -> pd.DataFrame:
    """The worlds' 34-week plan layout: ``n_plan`` weeks of ``shares * total_budget`` spread with the
    baseline's weekly pattern per channel, then the baseline's remaining weeks; controls as baseline."""
    plan = baseline_df.copy().reset_index(drop=True)
    spend = weekly_pattern(baseline_df, n_plan) * (np.asarray(shares, dtype=float)[None, :] * total_budget)
    plan.loc[: n_plan - 1, SPEND] = np.round(spend, 2)
    return plan


def optimize_peer(fit: PeerFit, history: pd.DataFrame, baseline_df: pd.DataFrame, total_budget: float,
                  max_change: float | None = None) -> dict:
    """PyMC-Marketing's budget optimiser for ``total_budget`` over the first 26 forecast weeks.

    ``MultiDimensionalBudgetOptimizerWrapper.optimize_budget`` takes a per-period budget and a
    fixed ``budget_distribution_over_period`` per channel, so "26 weeks of this budget with the
    baseline's weekly pattern" is expressed directly: budget = total / 26 per week, distribution =
    the baseline's weekly pattern.  It maximises the posterior-mean media contribution over the
    26 weeks plus the adstock tail (starting from zero carryover, as the optimiser does).  The
    recommended split is then turned into a 34-week plan and evaluated with ``forecast_peer``
    against the baseline (the promised gain). ``max_change`` (as journeysim's ``optimize``): each
    channel's budget within ``1 -/+ max_change`` times its baseline share (``budget_bounds``);
    ``None``: PyMC-Marketing's default, anything from nothing to the whole budget.
    """
    import xarray as xr
    from pymc_marketing.mmm.multidimensional import (
        MultiDimensionalBudgetOptimizerWrapper,
    )

    dates = pd.to_datetime(baseline_df["date"]).iloc[:N_PLAN]
    t_start = time.perf_counter()
    wrapper = MultiDimensionalBudgetOptimizerWrapper(model=fit.mmm, start_date=str(dates.iloc[0].date()),
                                                     end_date=str(dates.iloc[-1].date()))
    if wrapper.num_periods != N_PLAN:
        raise RuntimeError(f"optimiser window has {wrapper.num_periods} periods, expected {N_PLAN}")
    dist = xr.DataArray(weekly_pattern(baseline_df), dims=("date", "channel"),
                        coords={"date": np.arange(N_PLAN), "channel": list(SPEND)})
    base_tot = baseline_df[SPEND].to_numpy(dtype=float)[:N_PLAN].sum(axis=0)
    bounds = None
    if max_change is not None:
        week = base_tot / base_tot.sum() * total_budget / N_PLAN
        bounds = xr.DataArray(np.column_stack([(1 - max_change) * week, (1 + max_change) * week]),
                              dims=("channel", "bound"), coords={"channel": list(SPEND), "bound": ["lower", "upper"]})
    failure = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimal, res = wrapper.optimize_budget(budget=total_budget / N_PLAN, budget_bounds=bounds,
                                                   budget_distribution_over_period=dist)
        per_week = np.asarray(optimal.sel(channel=list(SPEND)).values, dtype=float)
        shares = np.clip(per_week, 0, None)
        shares = shares / shares.sum()
    except Exception as exc:  # (MinimizeException): a user gets no recommendation and keeps the baseline split
        failure = f"{type(exc).__name__}: {exc}"
        print(f"  optimiser failed ({failure}); scored as keeping the baseline split", flush=True)
        res, shares = None, base_tot / base_tot.sum()
    seconds = time.perf_counter() - t_start
    plan = plan_from_shares(baseline_df, shares, total_budget)
    promised = forecast_peer(fit, history, plan, baseline_df)
    return {"budget": float(total_budget),
            "shares": {c: float(s) for c, s in zip(CHANNELS, shares)},
            "baseline_shares": {c: float(s) for c, s in zip(CHANNELS, base_tot / base_tot.sum())},
            "spend": {c: float(s * total_budget) for c, s in zip(CHANNELS, shares)},
            "promised_gain": promised["delta"], "promised_gain_pct": promised["pct_of_baseline"],
            "optimizer_success": failure is None and bool(getattr(res, "success", True)),
            "optimizer_message": failure or str(getattr(res, "message", "")),
            "optimizer_seconds": seconds, "plan": plan}


# --------------------------------------------------------------------------------------------
# scoring against the worlds


def run_world(name: str, seed: int, draws: int, tune: int, chains: int) -> dict:
    """Fit, forecast every plan, optimise, and score everything against the world's truth."""
    from experiments.worlds import make

    world = make(name, seed=seed)
    history = world.history()
    plans = world.plans()
    baseline = plans["baseline"]
    print(f"[{name} seed {seed}] fitting ({chains} x {draws} draws, {tune} tune)...", flush=True)
    fit = fit_peer(history, seed=seed, draws=draws, tune=tune, chains=chains)
    print(f"  fit {fit.fit_seconds:.0f} s ({fit.sampler}), divergences {fit.divergences}, "
          f"max r-hat {fit.max_rhat:.3f}", flush=True)

    mismatch = in_sample_check(fit, history, baseline)
    t_fc = time.perf_counter()
    rows = []
    for pname, plan in plans.items():
        if pname == "baseline":
            continue
        truth = world.truth(plan)
        f = forecast_peer(fit, history, plan, baseline)
        t, base = truth["delta_purchases"], truth["purchases"]["baseline"]
        d = f["delta"]
        rows.append({"plan": pname, "truth": t, "truth_pct": truth["pct_purchases"], "baseline_purchases": base,
                     "peer": d["mean"], "peer_median": d["median"], "lo90": d["lo90"], "hi90": d["hi90"],
                     "peer_baseline_total": f["baseline_total"],
                     "error_pct": 100 * (d["mean"] - t) / base,
                     "covered": bool(d["lo90"] <= t <= d["hi90"]),
                     "sign_right": bool(np.sign(d["mean"]) == np.sign(t))})
    forecast_seconds = time.perf_counter() - t_fc

    budget = float(baseline[SPEND].to_numpy(dtype=float)[:N_PLAN].sum())
    true_opt = world.true_optimum(budget)
    opt, limited = (optimize_peer(fit, history, baseline, budget, max_change=m) for m in (None, MAX_CHANGE))
    for o in (opt, limited):
        o.update(world.score_allocation(o.pop("plan"), o["promised_gain"], true_opt))

    err = np.array([r["error_pct"] for r in rows])
    summary = {"mae_pct": float(np.mean(np.abs(err))), "coverage_90": float(np.mean([r["covered"] for r in rows])),
               "sign_accuracy": float(np.mean([r["sign_right"] for r in rows])), "n_plans": len(rows),
               "regret_pct": opt["regret_pct"], "fit_seconds": fit.fit_seconds,
               "forecast_seconds": forecast_seconds, "in_sample_predictive_mismatch": mismatch}
    import pymc
    import pymc_marketing

    return {"world": name, "seed": seed, "tool": "pymc_marketing",
            "versions": {"pymc_marketing": pymc_marketing.__version__, "pymc": pymc.__version__},
            "model": {"target": TARGET, "channels": list(SPEND), "adstock": f"geometric(l_max={L_MAX})",
                      "saturation": "logistic", "yearly_fourier_modes": N_FOURIER, "priors": "default"},
            "fit": fit.summary(), "summary": summary, "plans": rows, "optimizer": opt,
            "optimizer_max_change": {**limited, "max_change": MAX_CHANGE}}


def table(res: dict) -> str:
    """Plain-text table of one world's results."""
    s, o = res["summary"], res["optimizer"]
    lines = [(f"== {res['world']} seed {res['seed']} (fit {res['fit']['fit_seconds']:.0f} s, "
              f"{res['fit']['sampler']}, div {res['fit']['divergences']}, r-hat {res['fit']['max_rhat']:.3f}) =="),
             f"{'plan':<18}{'truth':>10}{'peer':>10}{'90% interval':>24}{'err %base':>11}{'cov':>5}{'sign':>6}"]
    for r in res["plans"]:
        lines.append(f"{r['plan']:<18}{r['truth']:>10.0f}{r['peer']:>10.0f}"
                     f"{'[' + format(r['lo90'], '.0f') + ', ' + format(r['hi90'], '.0f') + ']':>24}"
                     f"{r['error_pct']:>11.2f}{'y' if r['covered'] else 'n':>5}{'y' if r['sign_right'] else 'n':>6}")
    lines.append(f"MAE {s['mae_pct']:.2f}% of baseline | coverage {s['coverage_90']:.0%} | "
                 f"sign {s['sign_accuracy']:.0%}")
    sh = " ".join(f"{c} {o['shares'][c]:.2f}" for c in CHANNELS)
    tsh = " ".join(f"{c} {o['true_optimum_shares'][c]:.2f}" for c in CHANNELS)
    pg = o["promised_gain"]
    lines.append(f"optimiser: shares {sh} (true optimum {tsh})")
    lines.append(f"  promised gain {pg['mean']:.0f} [{pg['lo90']:.0f}, {pg['hi90']:.0f}], "
                 f"true gain of its allocation {o['true_gain_of_allocation']:.0f}, "
                 f"true optimum gain {o['true_optimum_gain']:.0f}, regret {o['regret_pct']:.2f}% of baseline")
    if "optimizer_max_change" in res:
        m = res["optimizer_max_change"]
        lines.append(f"  within {m['max_change']:.0%} of the baseline mix: shares "
                     + " ".join(f"{c} {m['shares'][c]:.2f}" for c in CHANNELS)
                     + f", true gain {m['true_gain_of_allocation']:.0f}, regret {m['regret_pct']:.2f}% of baseline")
    return "\n".join(lines)


def main(argv=None) -> int:
    from experiments.worlds import WORLDS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worlds", nargs="+", default=["brand_equity", "segments", "latent_demand"], choices=sorted(WORLDS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for name in args.worlds:
            res = run_world(name, seed, args.draws, args.tune, args.chains)
            path = args.out / f"{name}_seed{seed}.json"
            path.write_text(json.dumps(res, indent=1))
            print(table(res), flush=True)
            print(f"  -> {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

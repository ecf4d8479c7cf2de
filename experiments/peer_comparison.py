"""Peer comparison: journeysim against PyMC-Marketing's media-mix model.

Two questions, on the same inputs for both tools:

**Real data.** Fit time and fit quality (R^2, MAPE, 90% band coverage of the posterior
predictive) on Meridian's full-funnel data (national weekly; target: conversions) and Robyn's
weekly data (target: revenue). journeysim's numbers come from ``experiments/realdata.py``
(``experiments/results/realdata_<name>.json``); PyMC-Marketing's MMM is fitted here with
geometric adstock, logistic saturation and two yearly Fourier modes (Robyn: competitor sales as
a control, as Robyn uses it).

**Budget shifts with known truth.** ``scenarios/retail.yaml`` is run by the agent engine with
its own parameters (the truth) for 104 weeks; that run gives the observed data (the same as
``scenarios/data/retail_observed.csv``, re-generated and checked here). From the end state of that
run, the engine runs the next 26 weeks under a baseline plan (average weekly spend of the
history) and under budget shifts, with common random numbers, averaged over replications: the
true incremental orders of each shift. Both tools are fitted on the 104 observed weeks and
forecast the same shifts; we report each tool's error against the truth and whether its 90%
interval covers it. PyMC-Marketing gets the scenario's scheduled events (competitor promotion,
product launch) as control columns.

    python experiments/peer_comparison.py                  # 2 chains x 500 draws (about 1 h)
    python experiments/peer_comparison.py --quick          # smoke run (tiny sampler settings)

Writes ``experiments/results/peer_comparison.json`` and ``peer_comparison.md``. Needs the
``experiments`` extra (``pip install -e ".[experiments]"``, which brings pymc-marketing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "scenarios"))

from realdata import fit_quality, forecast_shifts, interval, shifted_spend  # noqa: E402

from journeysim._util.files import write_json, write_text
from journeysim.engine.simulation import Simulation
from journeysim.inference.checks import posterior_predictive
from journeysim.inference.posterior import load_fit
from journeysim.inference.sampling import calibrate
from journeysim.io.observed import read_observed
from journeysim.model.plan import Plan
from journeysim.model.scenario import load_scenario

HORIZON = 26
TOOLS = {"journeysim": "journeysim", "pymc_marketing": "PyMC-Marketing",
         "pymc_marketing_tvi": "PyMC-Marketing + time-varying intercept"}
SHIFTS = {
    "tv -30%": {"scale": {"tv": 0.7}},
    "search +30%": {"scale": {"search": 1.3}},
    "move 20% tv -> social": {"move": ("tv", "social", 0.2)},
    "social +50%": {"scale": {"social": 1.5}},
}


# ---------------------------------------------------------------------------------------------
# the truth: agent engine with the scenario's own parameters


def make_truth(replications: int, work: Path) -> dict:
    """Observed history (checked against the shipped example data) and true shift effects."""
    import make_data  # scenarios/make_data.py

    sc = load_scenario(ROOT / "scenarios" / "retail.yaml")
    W = sc.weeks
    t0 = time.perf_counter()
    sim = Simulation(sc, seed=sc.seed)
    sim.run()
    state = sim.state_
    # the observed data of this run, made exactly as the example data are
    df = make_data.make("retail", out_dir=work, seed=sc.seed)
    shipped = pd.read_csv(ROOT / "scenarios" / "data" / "retail_observed.csv")
    same = df.shape == shipped.shape and np.allclose(df.drop(columns="date").to_numpy(float),
                                                     shipped.drop(columns="date").to_numpy(float), equal_nan=True)
    data_path = HERE / "data" / "retail_peer_observed.csv"
    write_text(df.to_csv(index=False), data_path)
    chans = sc.structure.channels
    hist = sc.plan.aligned(chans)
    base = np.tile(hist.mean(axis=0), (HORIZON, 1))
    plans = {"baseline": base, **{s: shifted_spend(base, chans, spec) for s, spec in SHIFTS.items()}}
    fut = sc.replace(weeks=HORIZON)
    totals = {p: [] for p in plans}
    for r in range(replications):
        for p, spend in plans.items():
            ds = Simulation(fut, plan=Plan(spend, chans, p), seed=sc.seed, replication=r, initial_state=state,
                            start_day=W * 7).run()
            totals[p].append(float(ds.purchases.sum()))
    effects = {}
    for s in SHIFTS:
        d = np.array(totals[s]) - np.array(totals["baseline"])
        effects[s] = {"effect": float(d.mean()), "mc_se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None,
                      "spend_change": float(plans[s].sum() - base.sum())}
    return {"data": str(data_path.relative_to(ROOT)), "same_as_shipped_example": bool(same),
            "weeks": W, "horizon": HORIZON, "replications": replications, "agents": sc.structure.agents,
            "baseline_orders": float(np.mean(totals["baseline"])), "effects": effects, "plans": plans,
            "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------------------
# journeysim


def journeysim_retail(truth: dict, draws: int, tune: int, chains: int, seed: int, work: Path,
                      max_draws: int, reuse: Path | None = None) -> dict:
    """Fit (or reuse a fit of) the retail scenario on the truth's history; forecast the shifts.

    ``reuse``: the ``--out`` directory of ``journeysim fit scenarios/retail.yaml`` on the same
    data (valid when the re-generated history equals the shipped example data).
    """
    sc = load_scenario(ROOT / "scenarios" / "retail.yaml")
    data = read_observed(ROOT / truth["data"], sc)
    if reuse is not None:
        if not truth["same_as_shipped_example"]:
            raise SystemExit("--journeysim-fit: the re-generated data differ from the shipped example; refit instead")
        fit = load_fit(reuse, sc)
        wall = None
    else:
        fit_dir = work / "journeysim_retail_fit"
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = calibrate(sc, data, draws=draws, tune=tune, chains=chains, seed=seed)
        wall = time.perf_counter() - t0
        fit.save(fit_dir)
        fit = load_fit(fit_dir, sc)
    ppc = posterior_predictive(sc, fit, data, max_draws=max_draws, seed=seed)
    fc = forecast_shifts(fit, sc, data, truth["plans"], max_draws=max_draws)
    forecasts = {}
    for s in SHIFTS:
        d = fc[s]["purchases"].sum(axis=1) - fc["baseline"]["purchases"].sum(axis=1)
        forecasts[s] = interval(d)
    q = fit_quality(ppc)
    return {"fit_seconds": fit.info["seconds"], "fit_wall_seconds": wall, "max_rhat": fit.info["max_rhat"],
            "sampler": {k: fit.info.get(k) for k in ("chains", "draws", "sampler", "seed")},
            "reused_fit": str(reuse) if reuse is not None else None,
            "min_ess_bulk": fit.info["min_ess_bulk"], "divergences": fit.info["divergences"],
            "converged": fit.converged, "fit_quality_orders": q.get("orders"), "forecasts": forecasts}


# ---------------------------------------------------------------------------------------------
# PyMC-Marketing


def pmm_model(channels, target, controls=None, seasonality=None, time_varying_intercept=False):
    """PyMC-Marketing's MMM: geometric adstock (8 weeks) then logistic saturation, default priors."""
    from pymc_marketing.mmm import GeometricAdstock, LogisticSaturation
    from pymc_marketing.mmm.multidimensional import MMM

    return MMM(date_column="date", channel_columns=list(channels), target_column=target,
               adstock=GeometricAdstock(l_max=8), saturation=LogisticSaturation(),
               control_columns=list(controls) if controls else None, yearly_seasonality=seasonality,
               time_varying_intercept=time_varying_intercept)


def pmm_fit(mmm, X: pd.DataFrame, y: pd.Series, draws, tune, chains, seed) -> float:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmm.fit(X, y, draws=draws, tune=tune, chains=chains, cores=min(chains, 2), nuts_sampler="nutpie",
                random_seed=seed, progressbar=False)
    return time.perf_counter() - t0


def _target_scale(mmm) -> float:
    return float(np.asarray(mmm.get_scales_as_xarray()["target_scale"]).squeeze())


def pmm_quality(mmm, X: pd.DataFrame, y: np.ndarray, seed: int) -> dict:
    """R^2, MAPE and 90% band coverage of PyMC-Marketing's posterior predictive on the history."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp = mmm.sample_posterior_predictive(X, extend_idata=False, combined=True, random_seed=seed,
                                             progressbar=False)
    if hasattr(pp, "data_vars"):
        pp = pp[mmm.output_var]
    rep = np.asarray(pp.transpose("sample", "date").values) * _target_scale(mmm)
    yhat = rep.mean(axis=0)
    lo, hi = np.quantile(rep, [0.05, 0.95], axis=0)
    resid = y - yhat
    return {"weeks": int(len(y)), "r2": float(1 - np.sum(resid**2) / np.sum((y - y.mean()) ** 2)),
            "mape": float(np.mean(np.abs(resid) / np.abs(y))), "coverage_90": float(np.mean((y >= lo) & (y <= hi))),
            "corr": float(np.corrcoef(y, yhat)[0, 1])}


def pmm_effects(mmm, X_future: dict[str, pd.DataFrame], seed: int) -> dict:
    """Incremental target per posterior sample of each future plan versus ``baseline``."""
    scale = _target_scale(mmm)
    totals = {}
    for name, X in X_future.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cc = mmm.sample_posterior_predictive(X, extend_idata=False, combined=True, include_last_observations=True,
                                                 var_names=["channel_contribution"], random_seed=seed,
                                                 progressbar=False)
        arr = cc["channel_contribution"] if hasattr(cc, "data_vars") else cc
        totals[name] = np.asarray(arr.sum([d for d in arr.dims if d != "sample"]).values) * scale
    return {s: interval(totals[s] - totals["baseline"]) for s in X_future if s != "baseline"}


def pmm_retail(truth: dict, draws, tune, chains, seed, time_varying_intercept: bool = False) -> dict:
    """PyMC-Marketing on the truth's history (orders), and its forecasts of the shifts.

    ``time_varying_intercept``: let the baseline drift (PyMC-Marketing's HSGP intercept), as a
    practitioner would for a series whose level moves without media (here: the journey settling
    from its initial state)."""
    df = pd.read_csv(ROOT / truth["data"], parse_dates=["date"])
    sc = load_scenario(ROOT / "scenarios" / "retail.yaml")
    chans = [c for c in sc.structure.channels if f"spend_{c}" in df.columns]
    cols = [f"spend_{c}" for c in chans]
    W = len(df)
    week = np.arange(1, W + 1)
    X = df[["date"] + cols].copy()
    # the scenario's scheduled events, as PyMC-Marketing controls
    X["promo"] = ((week >= 60) & (week <= 62)).astype(float)
    X["launch"] = ((week >= 80) & (week <= 104)).astype(float)
    y = df["orders"].astype(float)
    mmm = pmm_model(cols, "orders", controls=["promo", "launch"], time_varying_intercept=time_varying_intercept)
    seconds = pmm_fit(mmm, X, y, draws, tune, chains, seed)
    q = pmm_quality(mmm, X, y.to_numpy(), seed)
    future_dates = pd.date_range(df["date"].iloc[-1] + pd.Timedelta(days=7), periods=HORIZON, freq="7D")
    Xf = {}
    all_chans = sc.structure.channels
    for name, spend in truth["plans"].items():
        f = pd.DataFrame({"date": future_dates})
        for c in chans:
            f[f"spend_{c}"] = spend[:, all_chans.index(c)]
        f["promo"] = 0.0
        f["launch"] = 0.0
        Xf[name] = f
    effects = pmm_effects(mmm, Xf, seed)
    rhat, ess, div = _pmm_diagnostics(mmm)
    return {"fit_seconds": seconds, "max_rhat": rhat, "min_ess_bulk": ess, "divergences": div,
            "fit_quality_orders": q, "forecasts": effects}


def _pmm_diagnostics(mmm):
    import arviz as az

    post = mmm.idata.posterior
    names = [v for v in post.data_vars if post[v].dims[:2] == ("chain", "draw") and "contribution" not in v
             and v not in ("mu", "intercept_contribution")]
    names = [v for v in names if post[v].size <= 50 * post.sizes["chain"] * post.sizes["draw"]]
    summ = az.summary(mmm.idata, var_names=names, kind="diagnostics")
    div = int(mmm.idata.sample_stats["diverging"].sum()) if "diverging" in mmm.idata.sample_stats else 0
    return float(summ["r_hat"].max()), float(summ["ess_bulk"].min()), div


def pmm_realdata(name: str, draws, tune, chains, seed) -> dict:
    if name == "meridian":
        df = pd.read_csv(HERE / "data" / "meridian_funnel_observed.csv", parse_dates=["date"])
        target, controls = "conversions", None
        cols = [c for c in df.columns if c.startswith("spend_")]
        X = df[["date"] + cols].copy()
    else:
        df = pd.read_csv(HERE / "data" / "robyn_observed.csv", parse_dates=["date"])
        raw = pd.read_csv(HERE / "data" / "robyn_dt_simulated_weekly.csv")
        target, controls = "revenue", ["competitor_sales"]
        cols = [c for c in df.columns if c.startswith("spend_")]
        X = df[["date"] + cols].copy()
        X["competitor_sales"] = raw["competitor_sales_B"].to_numpy(float) / raw["competitor_sales_B"].mean()
    y = df[target].astype(float)
    mmm = pmm_model(cols, target, controls=controls, seasonality=2)
    seconds = pmm_fit(mmm, X, y, draws, tune, chains, seed)
    q = pmm_quality(mmm, X, y.to_numpy(), seed)
    rhat, ess, div = _pmm_diagnostics(mmm)
    return {"fit_seconds": seconds, "max_rhat": rhat, "min_ess_bulk": ess, "divergences": div,
            "target": target, "fit_quality": q}


def journeysim_realdata(name: str) -> dict | None:
    path = RESULTS / f"realdata_{name}.json"
    if not path.exists():
        return None
    r = json.loads(path.read_text())
    kpi = "conversions" if name == "meridian" else "revenue"
    return {"fit_seconds": r["fit"]["seconds"], "max_rhat": r["fit"]["max_rhat"], "min_ess_bulk": r["fit"]["min_ess_bulk"],
            "divergences": r["fit"]["divergences"], "target": kpi, "fit_quality": r["fit_quality"].get(kpi),
            "source": str(path.relative_to(ROOT)), "sampler": r["sampler"]}


# ---------------------------------------------------------------------------------------------
# report


def score(forecasts: dict, truth: dict) -> dict:
    """Error of each forecast against the true effect, and whether its 90% interval covers it.

    ``covered_mc`` also allows for the Monte Carlo error of the truth itself: each side of the
    interval is widened to ``sqrt(half_width^2 + (1.645 mc_se)^2)``.
    """
    rows = {}
    for s, f in forecasts.items():
        t = truth["effects"][s]["effect"]
        se = truth["effects"][s].get("mc_se") or 0.0
        lo = f["mean"] - np.hypot(f["mean"] - f["lo90"], 1.645 * se)
        hi = f["mean"] + np.hypot(f["hi90"] - f["mean"], 1.645 * se)
        rows[s] = {"true": t, "forecast": f["mean"], "lo90": f["lo90"], "hi90": f["hi90"], "error": f["mean"] - t,
                   "abs_rel_error": abs(f["mean"] - t) / abs(t) if t else None,
                   "covered": bool(f["lo90"] <= t <= f["hi90"]), "covered_mc": bool(lo <= t <= hi)}
    errs = [abs(r["error"]) for r in rows.values()]
    return {"shifts": rows, "mean_abs_error": float(np.mean(errs)),
            "mean_abs_rel_error": float(np.mean([r["abs_rel_error"] for r in rows.values()])),
            "coverage_90": float(np.mean([r["covered"] for r in rows.values()])),
            "coverage_90_with_truth_mc_error": float(np.mean([r["covered_mc"] for r in rows.values()]))}


def markdown(res: dict) -> str:
    L = ["# journeysim vs PyMC-Marketing", "",
         f"Produced by `{res['command']}` on {res['date']} ({res['machine']}).",
         f"PyMC-Marketing {res['versions']['pymc_marketing']}, PyMC {res['versions']['pymc']}, "
         f"sampler settings: {res['sampler']['chains']} chains x {res['sampler']['draws']} draws "
         f"(+{res['sampler']['tune']} tuning), nutpie for both.", "",
         "## Real data: fit time and fit quality", "",
         "| data | tool | fit s | max r-hat | min ESS | R² | MAPE | 90% band coverage |",
         "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in res["real_data"].items():
        for tool in ("journeysim", "pymc_marketing"):
            t = r.get(tool)
            if not t:
                L.append(f"| {name} | {tool} | not run | | | | | |")
                continue
            q = t["fit_quality"] or {}
            L.append(f"| {name} ({t['target']}) | {tool} | {t['fit_seconds']:.0f} | {t['max_rhat']:.3f} | "
                     f"{t['min_ess_bulk']:.0f} | {q.get('r2', float('nan')):.3f} | {q.get('mape', float('nan')):.1%} | "
                     f"{q.get('coverage_90', float('nan')):.0%} |")
    tr = res["truth"]
    tools = {k: res["retail"][k] for k in TOOLS if res["retail"].get(k)}
    L += ["", "## Budget shifts with known truth (retail scenario, agent engine)", "",
          f"History {tr['weeks']} weeks (observed data identical to the shipped example: "
          f"{tr['same_as_shipped_example']}); forecast horizon {tr['horizon']} weeks from the end of the history; "
          f"true effect = agent engine with the true parameters, common random numbers, mean of "
          f"{tr['replications']} replications ({tr['agents']:,} agents). Baseline: {tr['baseline_orders']:,.0f} orders.", "",
          "| shift | true Δorders (MC s.e.) | " + " | ".join(f"{TOOLS[k]} mean [90%]" for k in tools) + " |",
          "|---|---:|" + "---:|" * len(tools)]
    js = res["retail"]["journeysim"]
    s_ = js.get("sampler") or {}
    if js.get("reused_fit"):
        L[len(L) - 3:len(L) - 3] = ["", f"journeysim's retail fit is a saved `journeysim fit` ({s_.get('chains')} "
                                    f"chains x {s_.get('draws')} draws, {s_.get('sampler')}) of the same data, reused "
                                    "with `--journeysim-fit`; it was made by `journeysim fit scenarios/retail.yaml "
                                    f"--out DIR --draws {s_.get('draws')} --tune {s_.get('draws')} --chains "
                                    f"{s_.get('chains')}`."]
    for s in SHIFTS:
        t = tr["effects"][s]
        se = f" ({t['mc_se']:,.0f})" if t["mc_se"] is not None else ""
        cells = []
        for tool in tools.values():
            r = tool["score"]["shifts"][s]
            mark = " ✓" if r["covered"] else (" (✓)" if r.get("covered_mc") else " ✗")
            cells.append(f"{r['forecast']:,.0f} [{r['lo90']:,.0f}, {r['hi90']:,.0f}]{mark}")
        L.append(f"| {s} | {t['effect']:,.0f}{se} | " + " | ".join(cells) + " |")
    L += ["", "| tool | fit s | max r-hat | min ESS | mean abs error | mean abs rel. error | 90% coverage | "
          "coverage allowing for the truth's MC error | R² (orders, history) | 90% band coverage (orders, history) |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, tool in tools.items():
        sc = tool["score"]
        q = tool.get("fit_quality_orders") or {}
        L.append(f"| {TOOLS[key]} | {tool['fit_seconds']:.0f} | {tool['max_rhat']:.3f} | {tool['min_ess_bulk']:.0f} | "
                 f"{sc['mean_abs_error']:,.0f} | {sc['mean_abs_rel_error']:.0%} | {sc['coverage_90']:.0%} | "
                 f"{sc.get('coverage_90_with_truth_mc_error', float('nan')):.0%} | {q.get('r2', float('nan')):.3f} | "
                 f"{q.get('coverage_90', float('nan')):.0%} |")
    L += ["", "✓/✗: the 90% interval covers / misses the true effect; (✓): misses it, but covers it once the "
          "truth's own Monte Carlo error is allowed for. Coverage over "
          f"{len(SHIFTS)} shifts of one dataset is a rough indication, not a calibrated rate.", ""]
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--replications", type=int, default=3, help="agent-engine replications of the true effects")
    ap.add_argument("--max-draws", type=int, default=200)
    ap.add_argument("--skip-real", action="store_true", help="leave out the real-data fits of PyMC-Marketing")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny sampler settings, results under /tmp")
    ap.add_argument("--journeysim-fit", type=Path, default=None,
                    help="reuse this `journeysim fit scenarios/retail.yaml --out DIR` instead of fitting again")
    ap.add_argument("--work", default="/tmp/journeysim_peer", help="scratch directory (fits, regenerated data)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--refresh-real", action="store_true",
                    help="only re-read journeysim's real-data results (realdata_<name>.json) into an existing "
                         "peer_comparison.json and rewrite the markdown")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.refresh_real:
        res = json.loads((out / "peer_comparison.json").read_text())
        for name in res["real_data"]:
            res["real_data"][name]["journeysim"] = journeysim_realdata(name)
        truth = res["truth"]
        for tool in res["retail"].values():
            tool["score"] = score(tool["forecasts"], truth)
        res["refreshed"] = dt.date.today().isoformat()
        write_json(res, out / "peer_comparison.json")
        write_text(markdown(res), out / "peer_comparison.md")
        print(markdown(res))
        return 0
    if args.quick:
        args.draws, args.tune, args.max_draws, args.replications = 30, 30, 30, 2
        if args.out == str(RESULTS):
            out = Path("/tmp/journeysim_peer_quick")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    import platform

    import pymc
    import pymc_marketing

    res = {"command": "python experiments/peer_comparison.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": dt.date.today().isoformat(),
           "machine": f"{platform.machine()}, Python {platform.python_version()}, 2 cores shared with other work",
           "versions": {"pymc_marketing": pymc_marketing.__version__, "pymc": pymc.__version__},
           "sampler": {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed}}
    print("truth: agent engine ...", flush=True)
    truth = make_truth(args.replications, work)
    print(f"  {truth['seconds']:.0f} s; effects " + ", ".join(f"{s}: {v['effect']:,.0f}" for s, v in truth["effects"].items()),
          flush=True)
    print("PyMC-Marketing on the retail data ...", flush=True)
    pm_r = pmm_retail(truth, args.draws, args.tune, args.chains, args.seed)
    pm_r["score"] = score(pm_r["forecasts"], truth)
    print(f"  {pm_r['fit_seconds']:.0f} s, coverage {pm_r['score']['coverage_90']:.0%}", flush=True)
    print("PyMC-Marketing with a time-varying intercept on the retail data ...", flush=True)
    pm_t = pmm_retail(truth, args.draws, args.tune, args.chains, args.seed, time_varying_intercept=True)
    pm_t["score"] = score(pm_t["forecasts"], truth)
    print(f"  {pm_t['fit_seconds']:.0f} s, coverage {pm_t['score']['coverage_90']:.0%}", flush=True)
    print("journeysim on the retail data ...", flush=True)
    js_r = journeysim_retail(truth, args.draws, args.tune, args.chains, args.seed, work, args.max_draws,
                             reuse=args.journeysim_fit)
    js_r["score"] = score(js_r["forecasts"], truth)
    print(f"  {js_r['fit_seconds']:.0f} s, coverage {js_r['score']['coverage_90']:.0%}", flush=True)
    real = {}
    for name in ("meridian", "robyn"):
        real[name] = {"journeysim": journeysim_realdata(name)}
        if not args.skip_real:
            print(f"PyMC-Marketing on {name} ...", flush=True)
            real[name]["pymc_marketing"] = pmm_realdata(name, args.draws, args.tune, args.chains, args.seed)
    truth_out = {k: v for k, v in truth.items() if k != "plans"}
    truth_out["baseline_weekly_spend"] = dict(zip(load_scenario(ROOT / "scenarios" / "retail.yaml").structure.channels,
                                                  truth["plans"]["baseline"][0].round(2).tolist()))
    res.update({"truth": truth_out, "retail": {"journeysim": js_r, "pymc_marketing": pm_r, "pymc_marketing_tvi": pm_t}, "real_data": real})
    write_json(res, out / "peer_comparison.json")
    write_text(markdown(res), out / "peer_comparison.md")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())

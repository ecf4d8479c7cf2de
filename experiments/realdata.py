"""Real-data studies: calibrate journeysim on public example datasets and forecast a budget shift.

For each dataset (``meridian``: Meridian's geo full-funnel data summed to national weekly;
``robyn``: Robyn's simulated weekly data) the study

1. converts the raw copy in ``experiments/data/`` to journeysim's observed format
   (``experiments/data/convert.py``);
2. calibrates the scenario written for it (``scenarios/meridian_funnel.yaml``,
   ``scenarios/robyn.yaml``) with ``journeysim fit`` (posterior, diagnostics, PPC plot);
3. measures fit quality: R^2 and MAPE of the posterior predictive mean against the observed
   series, the share of observed weeks inside the 90% posterior predictive band, r-hat, ESS,
   divergences and fit time;
4. forecasts budget shifts over the next quarter from the calibrated end-of-history state,
   per posterior draw: incremental purchases (and the observed KPI) versus a baseline plan that
   repeats the last quarter's average weekly spend, with 90% intervals.

Writes ``experiments/results/realdata_<name>.json``, ``realdata_<name>_ppc.png``,
``realdata_<name>_forecast.png`` and the fit directory ``realdata_<name>_fit/``.

    python experiments/realdata.py meridian            # 2 chains x 500 draws (about 10-20 min)
    python experiments/realdata.py robyn --draws 300 --tune 300
    python experiments/realdata.py meridian --quick    # smoke run: tiny sampler settings
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE / "data"))

import convert  # noqa: E402  (experiments/data/convert.py)

from journeysim._util.files import save_figure, write_json
from journeysim.inference.checks import posterior_predictive
from journeysim.inference.posterior import Fit, load_fit, posterior_params
from journeysim.inference.priors import COORDS
from journeysim.io.observed import ObservedData, read_observed
from journeysim.model.observe import expected_kpi, weekly_arrays
from journeysim.model.scenario import load_scenario

#: Per dataset: scenario, converter, the budget shifts to forecast (channel multipliers, or a move
#: of a share of one channel's budget to another), and the forecast horizon in weeks.
STUDIES = {
    "meridian": {
        "scenario": ROOT / "scenarios" / "meridian_funnel.yaml",
        "convert": convert.meridian,
        "horizon": 13,
        "shifts": {
            "video -30%": {"scale": {"awareness_video": 0.7}},
            "native +30%": {"scale": {"performance_native": 1.3}},
            "move 20% video -> native": {"move": ("awareness_video", "performance_native", 0.2)},
        },
    },
    "robyn": {
        "scenario": ROOT / "scenarios" / "robyn.yaml",
        "convert": convert.robyn,
        "horizon": 13,
        "shifts": {
            "tv -30%": {"scale": {"tv": 0.7}},
            "search +30%": {"scale": {"search": 1.3}},
            "move 20% tv -> facebook": {"move": ("tv", "facebook", 0.2)},
        },
    },
}


# ---------------------------------------------------------------------------------------------
# plans and forecasts (the twin directly, or journeysim.planning.forecasting when it exists)


def shifted_spend(base: np.ndarray, channels: tuple[str, ...], shift: dict) -> np.ndarray:
    """Weekly spend ``(weeks, C)`` after a shift: ``scale`` multiplies channels, ``move`` moves a
    share of one channel's spend to another (same total)."""
    out = np.array(base, float, copy=True)
    for ch, m in shift.get("scale", {}).items():
        out[:, channels.index(ch)] *= m
    if "move" in shift:
        a, b, share = shift["move"]
        moved = out[:, channels.index(a)] * share
        out[:, channels.index(a)] -= moved
        out[:, channels.index(b)] += moved
    return out


def end_state(scenario, params, data: ObservedData):
    """Twin state per posterior draw at the end of the observed history.

    The history is replayed from spend (as :func:`journeysim.inference.checks.posterior_predictive`
    does); the studies' data give impressions only where they equal spend / CPM.
    """
    from journeysim.twin.run import Twin

    return Twin(scenario, params=params, plan=data.plan).run_arrays()[1]


def forecast_shifts(fit: Fit, scenario, data: ObservedData, future: dict[str, np.ndarray], *,
                    max_draws: int = 200) -> dict[str, dict[str, np.ndarray]]:
    """Weekly expected KPIs per posterior draw for each future plan, from the end of the history.

    Returns ``{plan: {"purchases": (draw, weeks), <observed column>: (draw, weeks)}}``.
    """
    from journeysim.twin.run import Twin

    params, _ = posterior_params(scenario, fit, max_draws=max_draws)
    n = np.asarray(params.wom_rate).shape[0]
    state = end_state(scenario, params, data)
    st = scenario.structure
    out = {}
    for name, spend in future.items():
        tw = Twin(scenario, params=params, plan=spend, initial_state=state, start_week=data.weeks)
        ds = tw.run(batch_dims=("draw",), batch_coords={"draw": np.arange(n)})
        arrays = weekly_arrays(ds)
        res = {"purchases": expected_kpi(np, arrays, "purchases", np.zeros(len(st.stages)), st.population)}
        for obs in data.observations:
            mask = np.array([s in obs.stages for s in st.stages], float)
            res[obs.column] = expected_kpi(np, arrays, obs.measures, mask, st.population, obs.scale)
        out[name] = res
    return out


def compare_with_planning(fit, scenario, data, future: dict[str, np.ndarray], max_draws: int):
    """Incremental totals per draw from ``journeysim.planning.forecasting`` (``forecast`` then ``compare``).

    Returns ``{shift: {"purchases": (draw,), "revenue": (draw,)}}`` versus the plan named
    ``baseline`` in ``future``, or None when the planning module is not available. No carry-over
    tail and no marginal ROAS, so that it measures the same thing as :func:`forecast_shifts`.
    """
    try:
        from journeysim.planning import comparison, forecasting
    except ImportError:
        return None
    from journeysim.model.plan import Plan

    chans = scenario.structure.channels
    H = next(iter(future.values())).shape[0]
    plans = [Plan(spend, chans, "reference" if name == "baseline" else name) for name, spend in future.items()]
    ds = forecasting.forecast(scenario, fit, data, plans, horizon=H, tail=0, max_draws=max_draws, marginal=False,
                           allow_unconverged=True)
    cmp = comparison.compare(ds, baseline="reference", metrics=("purchases", "revenue"))
    return {name: {"purchases": cmp["delta_purchases"].sel(plan=name).values,
                   "revenue": cmp["delta_revenue"].sel(plan=name).values}
            for name in future if name != "baseline"}


def interval(x: np.ndarray, level: float = 0.9) -> dict:
    lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(np.mean(x)), "median": float(np.median(x)), "lo90": float(lo), "hi90": float(hi),
            "p_positive": float(np.mean(x > 0))}


# ---------------------------------------------------------------------------------------------
# fit quality


def fit_quality(ppc) -> dict:
    """Per observed series: R^2 and MAPE of the posterior predictive mean, 90% band coverage."""
    out = {}
    for v in ppc.data_vars:
        if not v.endswith("_observed"):
            continue
        c = v[: -len("_observed")]
        y = ppc[v].values
        ok = ~np.isnan(y)
        yhat = ppc[f"{c}_expected"].mean("draw").values
        rep = ppc[f"{c}_replicate"].values
        lo, hi = np.quantile(rep, [0.05, 0.95], axis=0)
        resid = y[ok] - yhat[ok]
        ss_res = float(np.sum(resid**2))
        ss_tot = float(np.sum((y[ok] - y[ok].mean()) ** 2))
        r = resid - resid.mean()
        out[c] = {
            "weeks": int(ok.sum()),
            "r2": 1.0 - ss_res / ss_tot,
            "mape": float(np.mean(np.abs(resid) / np.abs(y[ok]))),
            "coverage_90": float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok]))),
            "mean_band_width_rel": float(np.mean((hi[ok] - lo[ok]) / np.abs(yhat[ok]))),
            "corr": float(np.corrcoef(y[ok], yhat[ok])[0, 1]),
            "residual_lag1_autocorr": float(np.sum(r[1:] * r[:-1]) / np.sum(r * r)),
            "observed_cv": float(np.std(y[ok]) / np.mean(y[ok])),
            "predicted_cv": float(np.std(yhat[ok]) / np.mean(yhat[ok])),
        }
    return out


def plot_forecast(effects: dict, title: str):
    from matplotlib.figure import Figure

    names = list(effects)
    fig = Figure(figsize=(7, 0.6 * len(names) + 1.6))
    ax = fig.subplots()
    y = np.arange(len(names))
    for i, n in enumerate(names):
        e = effects[n]
        ax.plot([e["lo90"], e["hi90"]], [i, i], color="C0", lw=3, alpha=0.6)
        ax.plot([e["mean"]], [i], "o", color="C0")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, names)
    ax.set_xlabel("incremental purchases over the horizon (posterior mean, 90% interval)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------


def _rel(p: Path) -> str:
    """A path relative to the repository when it lies inside it (for commands shown in results)."""
    p = Path(p).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def run(name: str, draws: int, tune: int, chains: int, seed: int, max_draws: int, out_dir: Path,
        refit: bool = True, target_accept: float = 0.9, coords: str = "log") -> dict:
    from journeysim.cli.main import main as cli_main
    from journeysim.plots.fit import plot_ppc

    study = STUDIES[name]
    study["convert"]()
    sc = load_scenario(study["scenario"])
    data = read_observed(sc.base_dir / sc.spec.data, sc)
    fit_dir = out_dir / f"realdata_{name}_fit"
    cmd = ["fit", str(study["scenario"].relative_to(ROOT)), "--out", _rel(fit_dir),
           "--draws", str(draws), "--tune", str(tune), "--chains", str(chains), "--seed", str(seed),
           "--target-accept", f"{target_accept:g}", "--coords", coords, "--quiet"]
    if refit or not (fit_dir / "posterior.nc").exists():
        t0 = time.perf_counter()
        import os

        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            status = cli_main(cmd)
        finally:
            os.chdir(cwd)
        wall = time.perf_counter() - t0
        if status not in (0,):
            raise SystemExit(f"journeysim fit failed with status {status}")
    else:
        wall = None
    fit = load_fit(fit_dir, sc)
    summary = json.loads((fit_dir / "summary.json").read_text())
    ppc = posterior_predictive(sc, fit, data, max_draws=max_draws, seed=seed)
    quality = fit_quality(ppc)
    save_figure(plot_ppc(ppc, f"Posterior predictive check: {sc.name} ({name} data)"),
                out_dir / f"realdata_{name}_ppc.png")

    # budget shifts over the next quarter, from the calibrated end-of-history state
    H = study["horizon"]
    chans = sc.structure.channels
    hist = data.plan.aligned(chans)
    base = np.tile(hist[-H:].mean(axis=0), (H, 1))
    future = {"baseline": base}
    for s, spec in study["shifts"].items():
        future[s] = shifted_spend(base, chans, spec)
    t0 = time.perf_counter()
    fc = forecast_shifts(fit, sc, data, future, max_draws=max_draws)
    fc_seconds = time.perf_counter() - t0
    kpis = [o.column for o in data.observations]
    forecast = {"horizon_weeks": H, "baseline_weekly_spend": dict(zip(chans, base[0].round(2).tolist())),
                "engine": "twin (direct; journeysim.planning.forecasting not used)", "draws": int(fc["baseline"]["purchases"].shape[0]),
                "seconds": fc_seconds, "baseline": {}, "shifts": {}}
    for k in ["purchases"] + kpis:
        forecast["baseline"][k] = interval(fc["baseline"][k].sum(axis=1))
    for s in study["shifts"]:
        forecast["shifts"][s] = {
            "spend_change": float(future[s].sum() - base.sum()),
            **{f"incremental_{k}": interval(fc[s][k].sum(axis=1) - fc["baseline"][k].sum(axis=1)) for k in ["purchases"] + kpis},
        }
    # the planning API (journeysim.planning.comparison.compare), when present, as the primary route; the direct
    # twin runs above are kept as a cross-check of the same numbers
    try:
        via = compare_with_planning(fit, sc, data, future, max_draws)
    except Exception as exc:  # the planning module is young: never lose the study to it
        via = None
        forecast["planning_error"] = f"{type(exc).__name__}: {exc}"
    if via is not None:
        forecast["engine"] = "journeysim.planning.forecasting.forecast + compare (twin); direct twin runs as a cross-check"
        worst = 0.0
        for s in study["shifts"]:
            direct = fc[s]["purchases"].sum(axis=1) - fc["baseline"]["purchases"].sum(axis=1)
            forecast["shifts"][s]["planning_incremental_purchases"] = interval(via[s]["purchases"])
            worst = max(worst, float(np.max(np.abs(np.sort(via[s]["purchases"]) - np.sort(direct)))
                                     / max(np.abs(direct).mean(), 1e-9)))
        forecast["planning_vs_direct_max_rel_diff"] = worst
    save_figure(plot_forecast({s: v["incremental_purchases"] for s, v in forecast["shifts"].items()},
                              f"{sc.name}: budget shifts over the next {H} weeks"),
                out_dir / f"realdata_{name}_forecast.png")

    result = {
        "dataset": name,
        "command": "python experiments/realdata.py " + " ".join(sys.argv[1:]),
        "fit_command": "journeysim " + " ".join(cmd),
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {platform.python_version()}, shared 2-core machine",
        "scenario": str(study["scenario"].relative_to(ROOT)),
        "data": _rel(Path(data.source)),
        "weeks": data.weeks,
        "first_week": str(data.dates[0].date()),
        "sampler": {"draws": draws, "tune": tune, "chains": chains, "seed": seed},
        "fit": {k: summary.get(k) for k in ("seconds", "max_rhat", "min_ess_bulk", "min_ess_tail", "divergences",
                                            "converged", "sampler")},
        "fit_wall_seconds_including_compile": wall,
        "parameters": summary.get("parameters"),
        "fit_quality": quality,
        "forecast": forecast,
        "files": [f"realdata_{name}_fit/", f"realdata_{name}_ppc.png", f"realdata_{name}_forecast.png"],
    }
    prev_path = out_dir / f"realdata_{name}.json"
    result["fitted_by_command"] = result["command"]
    if wall is None and prev_path.exists():  # --no-refit: keep the record of the run that fitted
        prev = json.loads(prev_path.read_text())
        result["fitted_by_command"] = prev.get("fitted_by_command", prev.get("command"))
        result["fit_wall_seconds_including_compile"] = prev.get("fit_wall_seconds_including_compile")
        result["sampler"] = prev.get("sampler", result["sampler"])
    write_json(result, prev_path)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", choices=sorted(STUDIES))
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--target-accept", type=float, default=0.9)
    ap.add_argument("--coords", choices=COORDS, default="log")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-draws", type=int, default=200, help="posterior draws used for the PPC and forecasts")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--no-refit", action="store_true", help="reuse an existing fit directory")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 chains x 20 draws, results under /tmp")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.quick:
        args.draws, args.tune, args.max_draws = 20, 20, 20
        if args.out == str(RESULTS):
            out = Path("/tmp/journeysim_realdata_quick")
    res = run(args.dataset, args.draws, args.tune, args.chains, args.seed, args.max_draws, out,
              refit=not args.no_refit, target_accept=args.target_accept,
              coords=args.coords)
    q = res["fit_quality"]
    f = res["fit"]
    print(f"{args.dataset}: fit {f['seconds']:.0f} s, max r-hat {f['max_rhat']:.3f}, min ESS {f['min_ess_bulk']:.0f}, "
          f"divergences {f['divergences']}")
    for c, m in q.items():
        print(f"  {c}: R2 {m['r2']:.3f}, MAPE {m['mape']:.1%}, 90% band coverage {m['coverage_90']:.0%}")
    for s, v in res["forecast"]["shifts"].items():
        e = v["incremental_purchases"]
        print(f"  {s}: incremental purchases {e['mean']:,.0f} [{e['lo90']:,.0f}, {e['hi90']:,.0f}]")
    print(f"wrote {out / ('realdata_' + args.dataset + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

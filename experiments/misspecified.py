"""journeysim on markets it did not write: the three ground-truth worlds of experiments/worlds.

For each world (and seed) this script does what a new user would do with the brand's CSV alone:

1. writes a scenario from the CSV (``experiments/worlds/scenarios/<world>.yaml``, history CSV
   beside it): 5 million people, one persona, the default journey, channels tv/social/search/display
   bought by the impression at the CSV's cost per impression, the five KPIs as observations, priors
   on effects, saturation, tv carry-over and three base rates; base rates (and the tracking scales
   of site visits and referrals) tuned so the twin reproduces the observed mean levels;
2. calibrates it (``js.calibrate``), forecasts every what-if plan of the world plus the world's own
   baseline over the 34 forecast weeks, and scores the purchase deltas against ``w.truth``;
3. runs ``js.optimize`` on the baseline's 26-week budget, turns its channel split into the
   world's plan layout (the baseline's weekly pattern per channel), and scores it against
   ``w.true_optimum``;
4. puts the PyMC-Marketing results of ``experiments/peer_mmm.py`` (if present) beside it.

Only journeysim's public API is used (``load_scenario``, ``run_twin``, ``read_observed``,
``calibrate``, ``prepare``, ``forecast``, ``compare``, ``optimize``, ``Plan``).

Usage (from the repository root)::

    python experiments/misspecified.py --worlds brand_equity segments latent_demand --seeds 0 \
        --draws 300 --tune 300 --chains 2 --out experiments/results/misspecified
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from experiments.worlds import CHANNELS, WORLDS, make  # noqa: E402
from journeysim.planning.optimization import MAX_CHANGE  # noqa: E402  (the default a result without one used)

SCENARIOS = ROOT / "experiments" / "worlds" / "scenarios"
OUT = ROOT / "experiments" / "results" / "misspecified"
PEER = ROOT / "experiments" / "results" / "peer_mmm"
SPEND = [f"spend_{c}" for c in CHANNELS]
N_PLAN, N_TAIL = 26, 8
N_FC = N_PLAN + N_TAIL
AWARE_STAGES = ["aware", "considering", "purchased", "loyal", "advocate"]
Q_LO, Q_HI = 0.05, 0.95

# ---------------------------------------------------------------------------------------------
# 1. the scenario a new user writes from the CSV


def search_cap(history: pd.DataFrame, initial: dict, population: float = 5_000_000) -> dict:
    """``--cap-search``: search as a demand-capped channel, what a user who knows that queries come from
    people in market writes. Its cost per thousand impressions is the cheapest week's (where little of
    the spend is wasted on the cap), and the cap (impressions a week per person in its targeted
    stages: all who consider, a tenth of the merely aware) starts at twice the busiest week's, with a
    wide prior; the fit learns it from the delivery curve in ``impressions_search``."""
    imp = history["impressions_search"].to_numpy(dtype=float)
    spend = history["spend_search"].to_numpy(dtype=float)
    ok = imp > 0
    cpm = float(1000.0 * np.min(spend[ok] / imp[ok]))
    targeted = population * (initial["considering"] + 0.1 * initial["aware"])
    cap = float(f"{2.0 * imp.max() / targeted:.4g}")
    return {"cpm": round(cpm, 4), "cap": cap, "prior": f"lognormal({cap}, 1.0)"}


def _channels(history: pd.DataFrame) -> dict:
    """The four paid channels, bought by the impression at the CSV's average cost per impression.

    Roles and starting values follow scenarios/robyn.yaml and meridian_funnel.yaml: tv and display
    build awareness and consideration, social consideration, search converts people who already
    consider (and a little of the merely aware).  Every channel saturates (weekly frequency at
    which effectiveness halves), with a prior on it.
    """
    def cpm(c):
        return round(float(1000.0 * history[f"spend_{c}"].sum() / history[f"impressions_{c}"].sum()), 4)

    return {
        "tv": {"cpm": cpm("tv"), "effects": {"unaware->aware": 0.003, "aware->considering": 0.001},
               "carryover": 0.85, "saturation": 3.0},
        "social": {"cpm": cpm("social"), "effects": {"aware->considering": 0.0005},
                   "carryover": 0.6, "saturation": 5.0},
        "search": {"cpm": cpm("search"), "targeting": {"stages": {"considering": 1.0, "aware": 0.1}},
                   "effects": {"considering->purchased": 0.02}, "carryover": 0.5, "saturation": 5.0},
        "display": {"cpm": cpm("display"), "effects": {"unaware->aware": 0.001, "aware->considering": 0.0005},
                    "carryover": 0.5, "saturation": 3.0},
    }


PRIORS = {
    "effect.tv.unaware->aware": "lognormal(0.003, 1.0)",
    "effect.tv.aware->considering": "lognormal(0.001, 1.0)",
    "effect.social.aware->considering": "lognormal(0.0005, 1.0)",
    "effect.search.considering->purchased": "lognormal(0.02, 1.0)",
    "effect.display.unaware->aware": "lognormal(0.001, 1.0)",
    "effect.display.aware->considering": "lognormal(0.0005, 1.0)",
    "saturation.tv": "gamma(3, 2)",
    "saturation.social": "gamma(5, 3)",
    "saturation.search": "gamma(5, 3)",
    "saturation.display": "gamma(3, 2)",
    "carryover.tv": "beta(8, 2)",
    "rate.unaware->aware": "lognormal(1, 0.5)",
    "rate.considering->purchased": "lognormal(1, 0.5)",
    "rate.loyal->purchased": "lognormal(1, 0.5)",
}


#: The retail calendar an analyst marks (ISO weeks): Black Friday's week and the two before Christmas.
HOLIDAYS = {"black_friday": {"weeks": [47], "sign": "positive"}, "christmas": {"weeks": [50, 51], "sign": "positive"}}


def demand_section(history: pd.DataFrame, latent: bool = False, holidays: bool = False,
                   season: bool = True, shocks: bool = False) -> dict:
    """The ``demand:`` a user writes for a weekly CSV (``--demand``): yearly seasonality of order 2 and
    a trend on consideration and purchases (unless ``season`` is false: ``--no-seasonality``), and
    the CSV's promotion and price columns as controls (promotions raise demand, price lowers it)."""
    controls = {}
    if "promo" in history.columns:
        controls["promo"] = {"sign": "positive"}
    if "price_index" in history.columns:
        controls["price_index"] = {"sign": "negative"}
    return {"transitions": ["aware->considering", "considering->purchased", "loyal->purchased", "advocate->purchased"],
            **({"seasonality": {"order": 2}, "trend": {}} if season else {}),
            **({"controls": controls} if controls else {}),
            **({"latent": {"sd": 0.03, "every": 4}} if latent else {}),
            **({"shocks": {"sd": SHOCK_SD}} if shocks else {}),
            **({"holidays": HOLIDAYS} if holidays else {})}


#: ``--shocks``: the sd of a week's demand shock on the log scale (demand.shocks.sd).
SHOCK_SD = 0.05
LIFT_WEEKS, LIFT_WINDOW, LIFT_SHARE = (60, 67), 4, 0.2


def lift_test(world, channel: str, seed: int) -> dict:
    """A geo holdout the brand ran (``--lift CHANNEL``): the channel off in a fifth of the market in
    history weeks 60-67, purchases counted over those weeks and four after, measured with a standard
    error of 20% of the lift (at least 200 purchases) around the world's exact lift."""
    truth = world.history_lift(channel, LIFT_WEEKS[0] - 1, LIFT_WEEKS[1] - 1, window=LIFT_WINDOW, spend=0.0,
                               share=LIFT_SHARE)
    se = max(0.2 * abs(truth), 200.0)
    measured = truth + se * np.random.default_rng([seed, 77]).standard_normal()
    return {"name": f"{channel} geo holdout", "channel": channel, "weeks": list(LIFT_WEEKS), "spend": 0.0,
            "share": LIFT_SHARE, "window": LIFT_WINDOW, "measures": "purchases", "lift": round(float(measured), 1),
            "se": round(float(se), 1), "_truth": truth}


def scenario_dict(name: str, history: pd.DataFrame, csv_name: str, rates: dict, initial: dict,
                  scales: dict, demand: bool | str = False, lifts: list | None = None,
                  likelihood: str = "negbin") -> dict:
    """The scenario as a mapping (written to YAML by :func:`write_scenario`); ``likelihood`` of the
    four count KPIs (``negbin``, or ``ar1``: errors that persist from week to week)."""
    lik = likelihood
    variant = str(demand)
    channels, priors = _channels(history), dict(PRIORS)
    if "fixedsat" in variant:  # --fixed-saturation: the scenario's saturations held, not learned
        priors = {k: v for k, v in priors.items() if not k.startswith("saturation.")}
    if "cap" in variant:  # --cap-search
        cap = search_cap(history, initial)
        channels["search"].update(cpm=cap["cpm"], cap=cap["cap"])
        priors["cap.search"] = cap["prior"]
    return {
        "name": f"{name}-from-csv",
        "description": (f"The '{name}' world's brand, written from its weekly CSV alone: 5 million people, "
                        "one persona, the default journey, four paid channels, five KPIs."),
        "market": {"population": 5_000_000, "agents": 100_000, "start": str(history["date"].iloc[0]),
                   "weeks": len(history), "step": "week", "seed": 0},
        "journey": {"template": "default", "rates": rates, "initial": initial},
        "personas": {"everyone": {"share": 1.0, "value": 1.0}},
        "channels": channels,
        "word_of_mouth": {"rate": 0.02, "from": {"advocate": 1.0},
                          "effects": {"unaware->aware": 0.02, "aware->considering": 0.01}, "carryover": 0.5},
        "plan": {"csv": csv_name},
        "data": csv_name,
        "observations": [
            {"column": "awareness_survey", "measures": "share", "stages": AWARE_STAGES,
             "sample_size": "awareness_survey_n", "likelihood": "binomial"},
            {"column": "site_visits", "measures": "entries", "stages": ["considering"],
             "scale": round(float(scales["site_visits"]), 4), "likelihood": lik},
            {"column": "purchases", "measures": "purchases", "likelihood": lik},
            {"column": "new_customers", "measures": "new_customers", "likelihood": lik},
            {"column": "referrals", "measures": "referrals", "scale": round(float(scales["referrals"]), 4),
             "likelihood": lik},
        ],
        "priors": priors,
        **({"demand": demand_section(history, latent="latent" in variant, holidays="holidays" in variant,
                                     season="noseason" not in variant, shocks="shocks" in variant)}
           if demand else {}),
        **({"lift_tests": [{k: v for k, v in t.items() if not k.startswith("_")} for t in lifts]} if lifts else {}),
    }


def _twin_levels(js, sc_dict: dict, base_dir: Path) -> dict:
    """Mean weekly levels of the twin over the history (at the scenario's own parameters)."""
    path = base_dir / "_tuning.yaml"
    path.write_text(yaml.safe_dump(sc_dict, sort_keys=False))
    try:
        tw = js.run_twin(js.load_scenario(path))
    finally:
        path.unlink(missing_ok=True)
    size = tw.stage_size.sum("persona")
    N = float(size.isel(time=0).sum())
    end = size.isel(time=-1) / N
    return {
        "awareness": float((size.sel(stage=AWARE_STAGES).sum("stage") / N).mean()),
        "new": float(tw.purchases_new.sum("persona").mean()),
        "repeat": float(tw.purchases_repeat.sum("persona").mean()),
        "considering_entries": float(tw.entries.sum("persona").sel(stage="considering").mean()),
        "referrals": float(tw.referrals.mean()),
        "end": {str(s): float(v) for s, v in zip(end.stage.values, end.values)},
    }


def write_scenario(name: str, world, directory: Path, iterations: int = 30,
                   demand: bool | str = False, lifts: list | None = None, suffix: str = "",
                   likelihood: str = "negbin") -> tuple[Path, dict]:
    """Write ``<directory>/<name>.yaml`` and its history CSV; return the path and the tuning record.

    Level tuning (what a user would do by hand with ``js.run_twin``): starting from the default
    journey's base rates, repeat ``iterations`` times: run the twin over the observed spend, multiply
    ``unaware->aware`` by the ratio of observed to simulated awareness odds, ``aware->considering``,
    ``considering->purchased`` and the customers' churn rates (``purchased->aware``,
    ``purchased->unaware``, ``loyal->aware``) by the square root of the ratio of new customers (for
    the churn rates divided by the ratio of repeat purchases, as returning churners buy again), ``loyal->purchased`` and ``advocate->purchased`` by the ratio of
    repeat purchases (each step clipped to [0.7, 1.4]), and restart from the run's end state (so the initial shares settle near the
    steady state).  Then the tracking scales of site visits (people entering consideration) and
    referrals are set to observed / simulated means.
    """
    import journeysim as js
    from journeysim.model.scenario import DEFAULT_RATES  # the template's rates, to start from

    directory.mkdir(parents=True, exist_ok=True)
    history = world.history()
    csv_name = f"{name}_history.csv"
    history.to_csv(directory / csv_name, index=False)
    obs = {k: float(v) for k, v in {
        "awareness": history["awareness_survey"].mean(), "new": history["new_customers"].mean(),
        "repeat": (history["purchases"] - history["new_customers"]).mean(),
        "site_visits": history["site_visits"].mean(), "referrals": history["referrals"].mean()}.items()}
    rates = dict(DEFAULT_RATES["default"])
    initial = {"unaware": 0.4, "aware": 0.3, "considering": 0.05, "purchased": 0.05, "loyal": 0.17, "advocate": 0.03}
    scales = {"site_visits": 1.0, "referrals": 1.0}
    trace = []
    for it in range(iterations):
        lv = _twin_levels(js, scenario_dict(name, history, csv_name, rates, initial, scales, demand), directory)
        odds = lambda p: p / (1 - p)  # noqa: E731
        f_aw = odds(obs["awareness"]) / odds(lv["awareness"])
        f_new, f_rep = obs["new"] / lv["new"], obs["repeat"] / lv["repeat"]
        trace.append({"iteration": it, "awareness": lv["awareness"], "new": lv["new"], "repeat": lv["repeat"],
                      "f_awareness": f_aw, "f_new": f_new, "f_repeat": f_rep})
        step = lambda f, e: float(np.clip(f ** e, 0.7, 1.4))  # noqa: E731  (damped, bounded steps)
        rates["unaware->aware"] *= step(f_aw, 0.8)
        # new customers: the inflow to consideration, its conversion, and the churn of customers back to
        # the aware / unaware stages that feeds them in the steady state
        for k in ("aware->considering", "considering->purchased"):
            rates[k] *= step(f_new, 0.5)
        for k in ("purchased->aware", "purchased->unaware", "loyal->aware"):
            rates[k] *= step(f_new / f_rep, 0.5)  # (returning churners count as repeat buyers)
        rates["loyal->purchased"] *= step(f_rep, 0.8)
        rates["advocate->purchased"] *= step(f_rep, 0.8)
        initial = {k: round(v, 5) for k, v in lv["end"].items()}
        s = sum(initial.values())
        initial = {k: v / s for k, v in initial.items()}
    lv = _twin_levels(js, scenario_dict(name, history, csv_name, rates, initial, scales, demand), directory)
    scales = {"site_visits": obs["site_visits"] / lv["considering_entries"], "referrals": obs["referrals"] / lv["referrals"]}
    rates = {k: float(f"{v:.6g}") for k, v in rates.items()}
    initial = {k: round(v, 4) for k, v in initial.items()}
    initial["unaware"] = round(1.0 - sum(v for k, v in initial.items() if k != "unaware"), 4)
    sc = scenario_dict(name, history, csv_name, rates, initial, scales, demand, lifts, likelihood)
    path = directory / f"{name}{suffix}.yaml"
    header = (f"# Written by experiments/misspecified.py from {csv_name} alone (the '{name}' world's history).\n"
              "# Base rates, initial shares and the site-visit / referral scales were tuned with the twin so that\n"
              "# the scenario's own parameters reproduce the observed mean levels; calibration learns the rest.\n")
    path.write_text(header + yaml.safe_dump(sc, sort_keys=False))
    final = _twin_levels(js, sc, directory)
    tuning = {"observed": obs, "twin_final": {k: v for k, v in final.items() if k != "end"},
              "scales": scales, "trace": trace}
    return path, tuning


def validate(path: Path) -> dict:
    """``journeysim validate`` through the CLI module (the installed console script may be broken)."""
    import subprocess

    r = subprocess.run([sys.executable, "-m", "journeysim.cli.main", "validate", str(path)],
                       capture_output=True, text=True, cwd=ROOT)
    return {"returncode": r.returncode, "output": (r.stdout + r.stderr).strip()[-2000:]}


# ---------------------------------------------------------------------------------------------
# 2. forecasting and scoring


def _interval(x: np.ndarray) -> dict:
    lo, med, hi = np.quantile(x, [Q_LO, 0.5, Q_HI])
    return {"mean": float(np.mean(x)), "median": float(med), "lo90": float(lo), "hi90": float(hi)}


def to_plan(js, df: pd.DataFrame, name: str):
    """A world plan (34 weeks, spend_<channel> columns) as a journeysim Plan."""
    return js.Plan(df[SPEND].to_numpy(dtype=float), tuple(CHANNELS), name)


def weekly_pattern(baseline_df: pd.DataFrame) -> np.ndarray:
    """(26, 4) baseline weekly pattern per channel, columns summing to 1 (World._pattern's rule)."""
    base = baseline_df[SPEND].to_numpy(dtype=float)[:N_PLAN]
    tot = base.sum(axis=0)
    return np.where(tot > 0, base / np.where(tot > 0, tot, 1.0), 1.0 / N_PLAN)


def plan_from_shares(baseline_df: pd.DataFrame, shares, budget: float) -> pd.DataFrame:
    """26 weeks of ``shares * budget`` spread with the baseline's weekly pattern, then the baseline."""
    plan = baseline_df.copy().reset_index(drop=True)
    plan.loc[:N_PLAN - 1, SPEND] = np.round(weekly_pattern(baseline_df) * (np.asarray(shares)[None] * budget), 2)
    return plan


def deltas_vs_world_baseline(js, hist, plans: dict[str, pd.DataFrame]) -> tuple[dict, dict]:
    """Per-draw purchase totals over the 34 forecast weeks minus the world baseline's.

    journeysim's own ``baseline`` (average of the last 13 weeks) is always in the forecast; the
    world's baseline goes in as ``world_baseline`` and ``compare(..., baseline="world_baseline")``
    takes the per-draw deltas against it.  horizon = 34 and tail = 0, because the world's plans
    already contain their 8 tail weeks at baseline spend (journeysim's tail has no spend).
    """
    objs = [to_plan(js, df, "world_baseline" if k == "baseline" else k) for k, df in plans.items()]
    fc = js.forecast(hist, objs, horizon=N_FC, tail=0, marginal=False)
    cmp = js.compare(fc, baseline="world_baseline", metrics=("purchases",))
    d = cmp["delta_purchases"]
    out = {}
    for k in plans:
        if k == "baseline":
            continue
        out[k] = np.asarray(d.sel(plan=k).values, float)
    base_tot = np.asarray(fc["purchases"].sel(plan="world_baseline").values, float)
    js_base = np.asarray(fc["purchases"].sel(plan="baseline").values, float)
    return out, {"world_baseline_total": float(base_tot.mean()), "js_baseline_total": float(js_base.mean())}


def in_sample_fit(js, sc, fit, data) -> dict:
    """Per KPI: R^2 and mean absolute % error of the posterior-mean expected series on the history."""
    pp = js.posterior_predictive(sc, fit, data, max_draws=100)
    out = {}
    for v in pp.data_vars:
        if not v.endswith("_observed"):
            continue
        k = v[: -len("_observed")]
        y = np.asarray(pp[v].values, float)
        mu = np.asarray(pp[f"{k}_expected"].mean("draw").values, float)
        out[k] = {"r2": float(1 - np.sum((y - mu) ** 2) / np.sum((y - y.mean()) ** 2)),
                  "mape_pct": float(100 * np.mean(np.abs(mu - y) / np.abs(y)))}
    return out


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def run_world(name: str, seed: int, draws: int, tune: int, chains: int, out: Path,
              target_accept: float | None = None, demand: bool | str = False, lift: str | None = None,
              likelihood: str = "negbin", scenarios: Path = SCENARIOS, reuse: bool = False,
              objective: str = "purchases") -> dict:
    import journeysim as js

    world = make(name, seed=seed)
    wdir = out / f"{name}_seed{seed}_world"
    world.write(wdir)  # history.csv, plans/*.csv, truth.json (for reference)
    lifts = [lift_test(world, lift, seed)] if lift else []
    suffix = ((f"_{demand if isinstance(demand, str) else 'demand'}" if demand else "") + (f"_lift_{lift}" if lift else "")
              + (f"_{likelihood}" if likelihood != "negbin" else ""))
    sc_path, tuning = write_scenario(name, world, scenarios, demand=demand, lifts=lifts, suffix=suffix,
                                     likelihood=likelihood)
    tuning["lift_tests"] = lifts
    val = validate(sc_path)
    print(f"[{name} seed {seed}] scenario {_shown(sc_path)}; validate rc={val['returncode']}: "
          f"{val['output'].splitlines()[-1] if val['output'] else ''}", flush=True)
    sc = js.load_scenario(sc_path)
    declared = set(sc.structure.demand.controls) if sc.structure.demand is not None else set()
    extra = [c for c in world.history().columns if c in world.controls and c not in declared]
    data = js.read_observed(scenarios / f"{name}_history.csv", sc, ignore_columns=tuple(extra))

    saved = out / f"{name}_seed{seed}_fit"
    if reuse and (saved / "posterior.nc").exists():  # (the same scenario, written again from the same code)
        print(f"  reusing the fit in {saved}", flush=True)
        fit = js.load_fit(saved, sc)
        fit_seconds = json.loads((out / f"{name}_seed{seed}.json").read_text())["fit"]["wall_seconds"]
    else:
        print(f"  fitting ({chains} x {draws} draws, {tune} tune)...", flush=True)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = js.calibrate(sc, data, draws=draws, tune=tune, chains=chains, seed=seed,
                               target_accept=target_accept)
        fit_seconds = time.perf_counter() - t0
    info = {k: fit.info.get(k) for k in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "sampler",
                                         "seconds")}
    info.update({"wall_seconds": fit_seconds, "converged": bool(fit.converged)})
    print(f"  fit {fit_seconds:.0f} s, divergences {info['divergences']}, max r-hat {info['max_rhat']}, "
          f"min ESS {info['min_ess_bulk']}, converged {fit.converged}", flush=True)
    posterior_means = {v: float(fit.posterior[v].mean()) for v in fit.posterior.data_vars
                       if fit.posterior[v].ndim == 2 and not v.endswith("__")}
    if not (reuse and (saved / "posterior.nc").exists()):
        fit.save(saved)  # posterior.nc, diagnostics.csv, fit.json
    in_sample = in_sample_fit(js, sc, fit, data)
    print("  in-sample R^2 (posterior-mean expected vs observed): "
          + ", ".join(f"{k} {v['r2']:.2f}" for k, v in in_sample.items()), flush=True)
    hist = js.prepare(sc, fit, data, allow_unconverged=True)

    # ---- what-if plans
    plans = world.plans()
    baseline = plans["baseline"]
    t_fc = time.perf_counter()
    deltas, levels = deltas_vs_world_baseline(js, hist, plans)
    forecast_seconds = time.perf_counter() - t_fc
    rows = []
    for pname, d in deltas.items():
        truth = world.truth(plans[pname])
        t, base = truth["delta_purchases"], truth["purchases"]["baseline"]
        iv = _interval(d)
        rows.append({"plan": pname, "truth": t, "truth_pct": truth["pct_purchases"], "baseline_purchases": base,
                     "js": iv["mean"], "js_median": iv["median"], "lo90": iv["lo90"], "hi90": iv["hi90"],
                     "error_pct": 100 * (iv["mean"] - t) / base,
                     "covered": bool(iv["lo90"] <= t <= iv["hi90"]),
                     "sign_right": bool(np.sign(iv["mean"]) == np.sign(t))})

    # ---- optimiser: the baseline's 26-week budget
    budget = float(baseline[SPEND].to_numpy(dtype=float)[:N_PLAN].sum())
    t_opt = time.perf_counter()
    best = js.optimize(hist, budget=budget, horizon=N_PLAN, tail=N_TAIL, allow_unconverged=True, objective=objective)
    opt_seconds = time.perf_counter() - t_opt
    alloc = np.array([float(best["allocation_total"].sel(channel=c)) for c in CHANNELS])
    shares = alloc / alloc.sum()
    plan_opt = plan_from_shares(baseline, shares, budget)
    promised, _ = deltas_vs_world_baseline(js, hist, {"baseline": baseline, "optimum": plan_opt})
    promised = _interval(promised["optimum"])
    own = {p: {k: float(best[k].sel(plan=p, metric="purchases")) for k in ("mean", "lower", "upper")}
           for p in ("baseline_mix", "optimum")}
    base_p = rows[0]["baseline_purchases"]  # (the world's baseline, the same for every plan)
    base_tot = baseline[SPEND].to_numpy(dtype=float)[:N_PLAN].sum(axis=0)
    opt = {"budget": budget, "objective": objective, "shares": dict(zip(CHANNELS, map(float, shares))),
           "baseline_shares": dict(zip(CHANNELS, map(float, base_tot / base_tot.sum()))),
           "promised_gain": promised, "promised_gain_pct": 100 * promised["mean"] / base_p,
           "optimizer_own_comparison_vs_js_baseline": own,
           "optimizer_converged": int(best.attrs.get("converged", 0)), "optimizer_message": best.attrs.get("message"),
           "optimizer_seconds": opt_seconds, "max_change": best.attrs.get("max_change", "none"),
           **world.score_allocation(plan_opt, promised, world.true_optimum(budget))}

    err = np.array([r["error_pct"] for r in rows])
    summary = {"mae_pct": float(np.mean(np.abs(err))), "coverage_90": float(np.mean([r["covered"] for r in rows])),
               "sign_accuracy": float(np.mean([r["sign_right"] for r in rows])), "n_plans": len(rows),
               "regret_pct": opt["regret_pct"], "fit_seconds": fit_seconds, "forecast_seconds": forecast_seconds,
               "twin_world_baseline_purchases": levels["world_baseline_total"],
               "true_world_baseline_purchases": float(rows[0]["baseline_purchases"]),
               "twin_js_baseline_purchases": levels["js_baseline_total"]}
    return {"world": name, "seed": seed, "tool": "journeysim", "version": js.__version__,
            "scenario": _shown(sc_path), "validate": val, "tuning": tuning,
            "fit": {**info, "draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept},
            "in_sample": in_sample, "posterior_means": posterior_means,
            "summary": summary, "plans": rows, "optimizer": opt}


# ---------------------------------------------------------------------------------------------
# 3. reporting


def load_peer(name: str, seed: int, res: dict | None = None, directory: Path | None = None) -> dict | None:
    """PyMC-Marketing's result on the same market and seed (``experiments/peer_mmm.py``). When
    journeysim's optimiser kept channels near the current mix (``max_change``) and the peer's file has
    its optimiser under the same limit, that one is compared."""
    p = (directory or PEER) / f"{name}_seed{seed}.json"
    if not p.exists():
        return None
    peer = json.loads(p.read_text())
    limited = res is not None and res["optimizer"].get("max_change", MAX_CHANGE) != "none"
    if limited and "optimizer_max_change" in peer:
        peer["optimizer"] = peer["optimizer_max_change"]
    return peer


def _iv(m, lo, hi):
    return f"{m:,.0f} [{lo:,.0f}, {hi:,.0f}]"


def markdown(res: dict, peer: dict | None) -> str:
    """One world's side-by-side table (journeysim vs PyMC-Marketing) in markdown."""
    s, o, f = res["summary"], res["optimizer"], res["fit"]
    pr = {r["plan"]: r for r in peer["plans"]} if peer else {}
    lines = [f"### {res['world']} seed {res['seed']}", "",
             f"journeysim fit {f['wall_seconds']:.0f} s ({f['chains']}x{f['draws']}, tune {f['tune']}, "
             f"target accept {f.get('target_accept') or 0.9}), "
             f"divergences {f['divergences']}, max r-hat {f['max_rhat']:.3f}, min bulk ESS {f['min_ess_bulk']:.0f}"
             + (f"; peer fit {peer['fit']['fit_seconds']:.0f} s ({peer['fit']['chains']}x{peer['fit']['draws']}, "
                f"tune {peer['fit']['tune']}), divergences {peer['fit']['divergences']}, "
                f"max r-hat {peer['fit']['max_rhat']:.3f}" if peer else ""), "",
             "in-sample R^2 of the posterior-mean fit: " + ", ".join(f"{k} {v['r2']:.2f}" for k, v in
                                                                    res.get("in_sample", {}).items()), "",
             "| plan | truth | journeysim delta [90%] | err % | cov | sign | peer delta [90%] | err % | cov | sign |",
             "|---|---:|---:|---:|:-:|:-:|---:|---:|:-:|:-:|"]
    yn = lambda b: "y" if b else "n"  # noqa: E731
    for r in res["plans"]:
        p = pr.get(r["plan"])
        ps = (f"{_iv(p['peer'], p['lo90'], p['hi90'])} | {p['error_pct']:+.2f} | {yn(p['covered'])} | "
              f"{yn(p['sign_right'])}") if p else "– | – | – | –"
        lines.append(f"| {r['plan']} | {r['truth']:,.0f} | {_iv(r['js'], r['lo90'], r['hi90'])} | "
                     f"{r['error_pct']:+.2f} | {yn(r['covered'])} | {yn(r['sign_right'])} | {ps} |")
    ps = peer["summary"] if peer else None
    lines += ["", "| | journeysim | peer |", "|---|---:|---:|",
              f"| MAE % of baseline | {s['mae_pct']:.2f} | {ps['mae_pct']:.2f} |" if ps else
              f"| MAE % of baseline | {s['mae_pct']:.2f} | – |",
              f"| 90% coverage | {s['coverage_90']:.0%} | {ps['coverage_90']:.0%} |" if ps else
              f"| 90% coverage | {s['coverage_90']:.0%} | – |",
              f"| sign accuracy | {s['sign_accuracy']:.0%} | {ps['sign_accuracy']:.0%} |" if ps else
              f"| sign accuracy | {s['sign_accuracy']:.0%} | – |"]
    po = peer["optimizer"] if peer else None

    def sh(d):
        return " ".join(f"{c} {d[c]:.2f}" for c in CHANNELS)

    pg = o["promised_gain"]
    lines += [f"| optimiser shares | {sh(o['shares'])} | {sh(po['shares']) if po else '–'} |",
              f"| promised gain [90%] | {_iv(pg['mean'], pg['lo90'], pg['hi90'])} | "
              + (_iv(po['promised_gain']['mean'], po['promised_gain']['lo90'], po['promised_gain']['hi90'])
                 if po else "–") + " |",
              f"| true gain of allocation | {o['true_gain_of_allocation']:,.0f} | "
              + (f"{po['true_gain_of_allocation']:,.0f}" if po else "–") + " |",
              f"| promised interval holds true gain | {yn(o['promised_covers_true'])} | "
              + (yn(po['promised_covers_true']) if po else "–") + " |",
              f"| regret % of baseline | {o['regret_pct']:.2f} | " + (f"{po['regret_pct']:.2f}" if po else "–") + " |",
              f"| true optimum: shares {sh(o['true_optimum_shares'])}, gain {o['true_optimum_gain']:,.0f} "
              f"({o['true_optimum_gain_pct']:.2f}%) | | |", ""]
    return "\n".join(lines)


@functools.cache
def near_optimum(name: str, seed: int, budget: float) -> float:
    """Purchases of the world's best split of ``budget`` within :data:`MAX_CHANGE` of the baseline's."""
    return make(name, seed=seed).true_optimum(budget, max_change=MAX_CHANGE)["purchases"]


def regret_within_limit(res: dict, opt: dict) -> float:
    """An optimiser's regret against the best split within the limit (% of baseline purchases): what
    its model got wrong, apart from what keeping near the current mix costs."""
    base_p = res["plans"][0]["baseline_purchases"]  # (the world's baseline, the same for every plan)
    plan_p = base_p + opt["true_gain_of_allocation"]
    return 100 * (near_optimum(res["world"], res["seed"], float(opt["budget"])) - plan_p) / base_p


def pooled(results: list[dict], peer_dir: Path | None = None) -> str:
    """Markdown table of the metrics pooled over every (world, seed) of this run, both tools."""
    lines = ["### pooled over the worlds", "",
             "| | journeysim | peer |", "|---|---:|---:|"]
    tools = {"journeysim": [(r["plans"], {**r["optimizer"], "near": regret_within_limit(r, r["optimizer"])},
                             r["fit"]["wall_seconds"]) for r in results]}
    peers = [load_peer(r["world"], r["seed"], r, peer_dir) for r in results]
    if all(peers):
        tools["peer"] = [(p["plans"], {**p["optimizer"], "near": regret_within_limit(r, p["optimizer"])},
                          p["fit"]["fit_seconds"]) for p, r in zip(peers, results)]

    def col(f):
        return " | ".join(f(tools[t]) for t in ("journeysim", "peer") if t in tools)

    def rows(v):
        return [r for plans, _, _ in v for r in plans]

    lines += [
        "| MAE % of baseline | " + col(lambda v: f"{np.mean([abs(r['error_pct']) for r in rows(v)]):.2f}") + " |",
        "| 90% coverage | " + col(lambda v: f"{np.mean([r['covered'] for r in rows(v)]):.0%}") + " |",
        "| sign accuracy | " + col(lambda v: f"{np.mean([r['sign_right'] for r in rows(v)]):.0%}") + " |",
        "| mean optimiser regret % | " + col(lambda v: f"{np.mean([o['regret_pct'] for _, o, _ in v]):.2f}") + " |",
        f"| mean regret against the best split within {MAX_CHANGE:.0%} of the current mix % | "
        + col(lambda v: f"{np.mean([o['near'] for _, o, _ in v]):.2f}") + " |",
        "| optimised allocations that lose purchases in the true market | "
        + col(lambda v: f"{sum(o['true_gain_of_allocation'] < 0 for _, o, _ in v)}/{len(v)}") + " |",
        "| promised gain interval holds the true gain | "
        + col(lambda v: f"{sum(o['promised_covers_true'] for _, o, _ in v)}/{len(v)}") + " |",
        "| fit seconds (sum) | " + col(lambda v: f"{sum(t for _, _, t in v):.0f}") + " |", ""]
    return "\n".join(lines)


#: The scenario variants of a run (token in the scenario's name: the option's attribute).
VARIANTS = {"latent": "latent", "holidays": "holidays", "shocks": "shocks", "noseason": "no_seasonality", "fixedsat": "fixed_saturation",
            "cap": "cap_search"}


def variant(args) -> str | bool:
    """The run's variant as :func:`run_world`'s ``demand`` (``False`` without ``--demand``; ``True``
    with it and nothing else; else the tokens, e.g. ``latent_cap``)."""
    if not args.demand:
        return False
    return "_".join(t for t, k in VARIANTS.items() if getattr(args, k)) or True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=sorted(WORLDS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--tune", type=int, default=300)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--target-accept", type=float, default=None, help="NUTS target acceptance (journeysim's default 0.9)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--demand", action="store_true",
                    help="give the scenario a demand: section (seasonality, trend, the CSV's controls)")
    ap.add_argument("--latent", action="store_true", help="with --demand: add a latent random-walk demand")
    ap.add_argument("--shocks", action="store_true",
                    help=f"with --demand: weekly demand shocks (noise in the flows, sd {SHOCK_SD} on the log scale)")
    ap.add_argument("--no-seasonality", action="store_true",
                    help="with --demand: no yearly seasonality and no trend (the controls and latent demand stay)")
    ap.add_argument("--fixed-saturation", action="store_true",
                    help="hold every channel's saturation at the scenario's value instead of learning it")
    ap.add_argument("--cap-search", action="store_true",
                    help="with --demand: search as a demand-capped channel, its cap learned from impressions_search")
    ap.add_argument("--holidays", action="store_true",
                    help="with --demand: mark Black Friday's week and the two before Christmas (demand.holidays)")
    ap.add_argument("--lift", choices=CHANNELS, default=None,
                    help="give the scenario a measured geo holdout of this channel (lift_tests:)")
    ap.add_argument("--likelihood", choices=("negbin", "ar1"), default="negbin",
                    help="of the four count KPIs: negbin, or ar1 (log-scale errors that persist from week to week)")
    ap.add_argument("--scenarios", type=Path, default=SCENARIOS,
                    help="where the scenarios and history CSVs are written (two runs at once need two)")
    ap.add_argument("--report-only", action="store_true", help="rebuild summary.md from the JSON files in --out")
    ap.add_argument("--objective", default="purchases", choices=("purchases", "gain_p10"),
                    help="the optimiser's objective (js.optimize): expected purchases, or the gain 9 draws in 10 exceed")
    ap.add_argument("--reuse-fits", action="store_true",
                    help="load the posterior a run saved in --out instead of fitting again (forecasts and optimiser anew)")
    ap.add_argument("--peer", type=Path, default=PEER, help="PyMC-Marketing's results (experiments/peer_mmm.py --out)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    parts = ["# journeysim on the misspecified worlds", "",
             f"`python experiments/misspecified.py --worlds {' '.join(args.worlds)} --draws {args.draws} "
             f"--tune {args.tune} --chains {args.chains}"
             + (f" --target-accept {args.target_accept}" if args.target_accept else "")
             + (" --demand" if args.demand else "")
             + "".join(f" --{k.replace('_', '-')}" for k in VARIANTS.values() if getattr(args, k))
             + (f" --lift {args.lift}" if args.lift else "")
             + (f" --likelihood {args.likelihood}" if args.likelihood != "negbin" else "")
             + (f" --objective {args.objective}" if args.objective != "purchases" else "") + "`; "
             "deltas are total purchases over the 34 forecast weeks vs the world's baseline; errors in % of the "
             "world's baseline purchases; peer = experiments/results/peer_mmm (PyMC-Marketing).", ""]
    results = []
    for seed in args.seeds:
        for name in args.worlds:
            path = args.out / f"{name}_seed{seed}.json"
            if args.report_only:
                res = json.loads(path.read_text())
            else:
                res = run_world(name, seed, args.draws, args.tune, args.chains, args.out, args.target_accept,
                                variant(args),
                                args.lift, args.likelihood, args.scenarios, args.reuse_fits, args.objective)
                path.write_text(json.dumps(res, indent=1))
            results.append(res)
            md = markdown(res, load_peer(name, seed, res, args.peer))
            print(md, flush=True)
            parts.append(md)
            (args.out / "summary.md").write_text("\n".join(parts) + "\n")
    if len(results) > 1:
        md = pooled(results, args.peer)
        print(md, flush=True)
        (args.out / "summary.md").write_text("\n".join(parts + [md]) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

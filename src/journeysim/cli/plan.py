"""``journeysim forecast | compare | optimize | plan``: the planner's commands.

``plan`` is the whole flow on one scenario: calibrate on its observed data (or reuse a fit), then
compare its example plans with the baseline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from journeysim.cli._args import (
    agents_int,
    chains_int,
    change_or_none,
    draws_int,
    executor_from_args,
    load_inputs,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
    steps_int,
    tail_int,
    weeks_int,
)

__all__ = ['register']


HEADLINE = ("purchases", "new_customers", "revenue", "spend", "roas", "cpa")

#: What each headline metric is, for people: (column header, kind of value, fixed per plan).
LABELS = {
    "purchases": ("purchases", "number"),
    "new_customers": ("new customers", "number"),
    "media_new_customers": ("new customers won by media", "number"),
    "revenue": ("revenue", "money"),
    "spend": ("media spend", "money"),
    "roas": ("ROAS*", "ratio"),
    "cpa": ("cost per new customer won by media", "money"),
}
#: The one meaning of ROAS, printed under every table that shows it.
ROAS_NOTE = ("* ROAS = incremental revenue / incremental spend: the plan's revenue minus that of the same "
             "posterior draw without any media, divided by the plan's media spend.")
#: Quantities a plan fixes (the same in every draw): shown without an interval.
FIXED = ("spend",)


def _header(m: str, currency: str | None) -> str:
    from journeysim._util.format import currency_label

    head, kind = LABELS.get(m, (m.replace("_", " "), "number"))
    return f"{head} ({currency_label(currency)})" if kind == "money" and currency else head


def _cell(m, mean, lower, upper, currency, *, signed=False):
    from journeysim._util.format import interval, value

    kind = LABELS.get(m, (m, "number"))[1]
    if m in FIXED or lower == upper:
        return value(mean, kind, currency, signed=signed)
    return interval(mean, lower, upper, kind, currency, signed=signed)


def _forecast_table(fc, title, currency=None):
    from journeysim.cli.tables import format_table
    from journeysim.planning.comparison import summarize_metrics

    t = summarize_metrics(fc, HEADLINE)
    rows = []
    for plan in fc.plan.values:
        sub = t[t.plan == str(plan)].set_index("metric")
        rows.append([str(plan)] + [_cell(m, sub.loc[m, "mean"], sub.loc[m, "lower"], sub.loc[m, "upper"], None)
                                   if m in sub.index else "-" for m in HEADLINE])
    return format_table(rows, ["plan", *(_header(m, currency) for m in HEADLINE)], title=title,
                        notes=[_money_note(currency), ROAS_NOTE])


def _money_note(currency):
    return "  media spend is fixed by the plan (no interval)"


COMPARED = ("purchases", "revenue", "media_new_customers", "cpa")


def _compare_table(cmp, metric, currency=None):
    from journeysim._util.format import percent
    from journeysim.cli.tables import format_table

    rows = []
    shown = [m for m in COMPARED if m in list(cmp.metric.values)]
    for plan in cmp.plan.values:
        if plan == cmp.attrs["baseline"]:
            continue
        c = cmp.sel(plan=plan)
        row = [str(plan)]
        for m in shown:
            x = c.sel(metric=m)
            row.append(_cell(m, float(x["mean"]), float(x["lower"]), float(x["upper"]), None, signed=True))
        row.append(percent(float(c.sel(metric=metric)["prob_better"])))
        rows.append(row)
    heads = ["plan", *(f"change in {_header(m, currency)}" for m in shown),
             f"P(beats baseline on {LABELS.get(metric, (metric,))[0]})"]
    return format_table(rows, heads, title=f"vs {cmp.attrs['baseline']}: posterior mean [90% interval]")


def _control_notes(fc) -> list[str]:
    """Which plans set demand controls themselves (the others hold them at their recent level)."""
    set_by = fc.attrs.get("controls_from_plans")
    return [f"demand controls set by plans ({set_by}); the other plans hold them at their recent level"] if set_by else []


#: A plan's mean weekly spend on a channel below this share of the lowest week the history ran, or
#: above this multiple of the highest, is read off the response curve where no data were.
EXTRAPOLATION = (0.5, 1.5)


def extrapolation_notes(fc, data, currency=None) -> list[str]:
    """Plans that run a channel far outside the weekly spend the history ran: their forecast rests
    on the response curve's form (saturation, carry-over), not on data, and is less sure than its
    interval says (on the test markets, cutting a channel the history always ran was the largest
    error; experiments/RESULTS.md)."""
    import numpy as np

    from journeysim._util.format import money

    H = int(fc.attrs.get("horizon_weeks", fc.sizes["time"]))
    hist = np.asarray(data.plan.spend, float)  # (weeks, channels) of the observed history
    lo, hi = hist.min(axis=0), hist.max(axis=0)
    weekly = fc.weekly_spend.isel(time=slice(0, H)).mean("time").transpose("plan", "channel")
    notes = []
    for p, x in zip(fc.plan.values, weekly.values):
        if p == "baseline":
            continue
        for j in np.flatnonzero((hi > 0) & ((x < EXTRAPOLATION[0] * lo) | (x > EXTRAPOLATION[1] * hi))):
            notes.append(f"plan '{p}' runs {fc.channel.values[j]} at {money(x[j], currency)} a week, where the "
                         f"history ran it between {money(lo[j], currency)} and {money(hi[j], currency)}: its "
                         "forecast rests on the response curve's form more than on data, and is less sure than "
                         "its interval says")
    return notes


def _identification_warnings(sc, fit, data) -> list[str]:
    """Notes under a forecast: channels whose effect the data barely pin down (none for a fit without
    a prior space), and what the forecast assumes of demand beyond the history."""
    from journeysim.inference.criticism import identification
    from journeysim.model.delivery import learn_delivery

    notes = []
    if getattr(fit, "space", None) is not None and len(fit.space):
        notes += identification(sc, fit, data)[1]
    d = sc.structure.demand
    if d is not None and d.forecast_note():
        notes.append(d.forecast_note())
    curves = learn_delivery(sc, data)
    if curves:
        notes.append("spend buys touches along the delivery curves learned from the data's impressions ("
                     + ", ".join(curves) + "; journeysim fit prints them), not at the scenario's cost")
    return notes


def _contributions(sc, fit, data, fc, *, max_draws: int) -> dict:
    """What each paid channel adds to the baseline: the baseline minus the baseline without that channel.

    Per channel, posterior mean and 90% interval of the purchases, new customers and revenue it
    adds over horizon and tail, and of the people it adds to each stage (mean over the horizon's
    weeks). Same draws as ``fc`` (the same thinning), so the differences are the channel's alone.
    """
    import numpy as np

    from journeysim._util.stats import interval_levels
    from journeysim.planning.forecasting import forecast

    base = fc.spend_by_channel.sel(plan="baseline")
    paid = [str(c) for c, cost in zip(sc.structure.channels, sc.structure.cost_per_touch)
            if cost > 0 and float(base.sel(channel=c)) > 0]
    if not paid:
        return {}
    H, T = int(fc.attrs["horizon_weeks"]), int(fc.attrs["tail_weeks"])
    plans = [{"name": f"without {c}", "changes": [{"set": {c: 0}}]} for c in paid]
    off = forecast(sc, fit, data, plans, horizon=H, tail=T, max_draws=max_draws, marginal=False,
                   allow_unconverged=True)  # (the fit was accepted, or refused, by the forecast itself)
    if list(off.draw.values) != list(fc.draw.values):
        return {}
    lo, hi = interval_levels(0.9)

    def stats(x):
        x = np.asarray(x, float)
        return {"mean": float(x.mean()), "lower": float(np.quantile(x, lo)), "upper": float(np.quantile(x, hi))}

    b = fc.sel(plan="baseline")
    out = {}
    for c in paid:
        o = off.sel(plan=f"without {c}")
        row = {m: stats(b[m].values - o[m].values) for m in ("purchases", "new_customers", "revenue")}
        row["spend"] = float(base.sel(channel=c))
        people = (b.stage_size.isel(time=slice(0, H)) - o.stage_size.isel(time=slice(0, H))).mean("time")
        row["people_by_stage"] = {str(s): stats(people.sel(stage=s).values) for s in fc.stage.values}
        out[c] = row
    return out


def _contributions_table(contrib: dict, currency=None) -> str:
    from journeysim._util.format import interval, number
    from journeysim.cli.tables import format_table

    stages = list(next(iter(contrib.values()))["people_by_stage"])
    rows = [[c, interval(**r["purchases"], signed=True), interval(**r["revenue"], signed=True)]
            + [number(r["people_by_stage"][s]["mean"], signed=True) for s in stages] for c, r in contrib.items()]
    return format_table(rows, ["channel", "purchases it adds", f"revenue it adds{_unit(currency)}",
                               *(f"people in {s} (mean)" for s in stages)],
                        title="what each channel adds to the baseline (baseline minus baseline without it): "
                              "posterior mean [90% interval]")


def stage_effects(fc) -> dict:
    """How much of each plan's effect runs through which stage: the change, against the baseline, of the
    people in each stage (mean over the horizon's weeks), posterior mean and 90% interval (same draws)."""
    import numpy as np

    from journeysim._util.stats import interval_levels

    lo, hi = interval_levels(0.9)
    H = int(fc.attrs["horizon_weeks"])
    people = fc.stage_size.isel(time=slice(0, H)).mean("time")  # (plan, draw, stage)
    base = people.sel(plan="baseline")
    out = {}
    for p in fc.plan.values:
        if p == "baseline":
            continue
        d = people.sel(plan=p) - base
        out[str(p)] = {str(s): {"mean": float(d.sel(stage=s).mean()),
                                "lower": float(np.quantile(d.sel(stage=s).values, lo)),
                                "upper": float(np.quantile(d.sel(stage=s).values, hi))} for s in fc.stage.values}
    return out


def _stage_effects_table(eff: dict) -> str:
    from journeysim._util.format import interval
    from journeysim.cli.tables import format_table

    stages = list(next(iter(eff.values())))
    rows = [[p, *(interval(**r[s], signed=True) for s in stages)] for p, r in eff.items()]
    return format_table(rows, ["plan", *(f"people in {s}" for s in stages)],
                        title="where each plan's effect runs: change against the baseline of the people in each stage "
                              "(mean over the horizon): posterior mean [90% interval]")


def _unit(currency):
    return f" ({currency})" if currency else ""


def _write_forecast(fc, cmp, out: Path, quiet: bool, metric: str, warnings: list[str] = (), currency=None,
                    contributions: dict | None = None):
    from journeysim._util.files import staged_dir

    with staged_dir(out) as stage:  # (all outputs or none)
        files = _write_forecast_files(fc, cmp, stage, metric, warnings, currency, contributions)
    if not quiet:
        print(_forecast_table(fc, f"forecast over {fc.attrs['horizon_weeks']} weeks + {fc.attrs['tail_weeks']} "
                                  f"tail ({fc.attrs['engine']}, {fc.sizes['draw']} draws): mean [90% interval]",
                              currency))
        if cmp is not None:
            print()
            print(_compare_table(cmp, metric, currency))
        if cmp is not None and fc.sizes["plan"] > 1:
            print()
            print(_stage_effects_table(stage_effects(fc)))
        if contributions:
            print()
            print(_contributions_table(contributions, currency))
        for w in warnings:
            print(f"note: {w}")
        print(f"\nwrote {out}/" + ", ".join(files))


def _write_forecast_files(fc, cmp, out: Path, metric: str, warnings, currency=None,
                          contributions: dict | None = None) -> list[str]:
    from journeysim._util.files import atomic_path, save_figure, write_json
    from journeysim.planning.comparison import summarize_metrics
    from journeysim.plots.planning import plot_comparison, plot_forecast

    with atomic_path(out / "forecast.nc") as tmp:
        fc.to_netcdf(tmp, engine="h5netcdf")
    save_figure(plot_forecast(fc, currency=currency), out / "forecast.png")
    files = ["forecast.nc", "forecast.png", "summary.json"]
    summary = {"scenario": fc.attrs.get("scenario"), "engine": fc.attrs.get("engine"),
               "horizon_weeks": int(fc.attrs["horizon_weeks"]), "tail_weeks": int(fc.attrs["tail_weeks"]),
               "draws": int(fc.sizes["draw"]), "currency": currency,
               "roas_definition": ROAS_NOTE.lstrip("* "),
               "plans": {}}
    t = summarize_metrics(fc)
    for plan in fc.plan.values:
        sub = t[t.plan == str(plan)].set_index("metric")
        summary["plans"][str(plan)] = {m: {"mean": r["mean"], "lower_5%": r["lower"], "upper_95%": r["upper"]}
                                      for m, r in sub.iterrows()}
        summary["plans"][str(plan)]["spend_by_channel"] = {
            str(c): float(v) for c, v in zip(fc.channel.values, fc.spend_by_channel.sel(plan=plan).values)}
        if "mroas" in fc:
            summary["plans"][str(plan)]["mroas_mean"] = {
                str(c): float(v) for c, v in zip(fc.channel.values, fc.mroas.sel(plan=plan).mean("draw").values)
                if v == v}
    if cmp is not None:
        with atomic_path(out / "comparison.nc") as tmp:
            cmp.to_netcdf(tmp, engine="h5netcdf")
        save_figure(plot_comparison(cmp, currency=currency), out / "comparison.png")
        files[2:2] = ["comparison.nc", "comparison.png"]
        summary["comparison"] = {
            str(p): {str(m): {k: float(cmp[k].sel(plan=p, metric=m)) for k in ("mean", "lower", "upper", "prob_better")}
                     for m in cmp.metric.values} for p in cmp.plan.values if p != cmp.attrs["baseline"]}
        summary["comparison_metric"] = metric
    if contributions:
        summary["contributions"] = contributions
    if cmp is not None:
        summary["stage_effects"] = stage_effects(fc)
    summary["files"] = files
    summary["warnings"] = list(warnings)
    write_json(summary, out / "summary.json")
    return files


def _plans_arg(args, sc):
    plans = list(args.plan or [])
    if not plans and sc.spec.plans:
        plans = [str(sc.base_dir / p) for p in sc.spec.plans]
    return plans


def check_metric(metric: str) -> None:
    """Refuse an unknown ``--metric`` before any work."""
    from journeysim.errors import InputError, did_you_mean
    from journeysim.planning.comparison import METRICS

    if metric not in METRICS:
        raise InputError(f"unknown metric '{metric}'" + did_you_mean(metric, METRICS)
                         + f"; metrics: {', '.join(METRICS)}", "--metric")


def check_plans(sc, data, plans, horizon: int) -> None:
    """Load every plan once before any work: a bad or implausible plan is refused naming its file."""
    from journeysim.cli.validate import check_plan_plausible
    from journeysim.io.planfile import baseline_plan, load_plan
    from journeysim.model.plan import check_plan

    base = baseline_plan(sc, data, horizon)
    for p in plans:
        plan = load_plan(p, sc, baseline=base, horizon=horizon)
        check_plan(plan, sc.structure, horizon, str(p))  # (no spend on an owned channel)
        check_plan_plausible(plan, data, str(p))


def _data_warnings(fit, data) -> list[str]:
    """Warnings when the data given differ from those the fit saw (the history, hence the forecast, differs)."""
    info = getattr(fit, "info", {}) or {}
    weeks, first = info.get("weeks"), info.get("first_week")
    if weeks is None or info.get("method") == "known":
        return []
    out = []
    if int(weeks) != data.weeks or (first is not None and str(data.dates[0].date()) != first):
        out.append(f"{data.source}: {data.weeks} weeks from {data.dates[0].date()}, but the fit was calibrated on "
                   f"{weeks} weeks from {first} ({info.get('data_file', 'its data')}); the forecast starts from the "
                   f"end of these data, so it differs from one on the fit's data")
    return out


def _start(args, *, plans: bool = True):
    """The checks every planning verb runs before its work: output, metric, flags, inputs, plans."""
    from journeysim.cli._args import check_memory, check_out

    check_out(args.out)
    if getattr(args, "metric", None) is not None:
        check_metric(args.metric)
    sc, data, fit = load_inputs(args)
    if getattr(args, "engine", "twin") == "agents" or getattr(args, "verify_agents", False):
        n = args.agents or sc.structure.agents
        check_memory(n, "--agents" if args.agents else f"{args.scenario}: market.agents")
    if plans:
        check_plans(sc, data, _plans_arg(args, sc), args.horizon)
    notes = _data_warnings(fit, data) if fit is not None else []
    for w in notes:
        print(f"warning: {w}", file=sys.stderr, flush=True)
    return sc, data, fit, notes


def cmd_forecast(args) -> int:
    from journeysim.planning.comparison import compare
    from journeysim.planning.forecasting import forecast

    sc, data, fit, notes = _start(args)
    fc = forecast(sc, fit, data, _plans_arg(args, sc), horizon=args.horizon, tail=args.tail, max_draws=args.draws,
                  engine=args.engine, agents=args.agents, agent_draws=args.agent_draws,
                  executor=executor_from_args(args), allow_unconverged=args.allow_unconverged)
    cmp = compare(fc) if fc.sizes["plan"] > 1 else None
    contrib = _contributions(sc, fit, data, fc, max_draws=args.draws) if args.engine == "twin" else None
    _write_forecast(fc, cmp, Path(args.out), args.quiet, args.metric,
                    notes + _identification_warnings(sc, fit, data) + extrapolation_notes(fc, data, sc.spec.currency)
                    + _control_notes(fc), sc.spec.currency, contrib)
    return 0


def cmd_optimize(args) -> int:
    from journeysim._util.files import staged_dir
    from journeysim.cli.validate import PLAUSIBLE_FACTOR
    from journeysim.errors import InputError
    from journeysim.planning.history import prepare
    from journeysim.planning.optimization import MAX_CHANGE, optimize, parse_bounds, response_curves

    sc, data, fit, notes = _start(args, plans=False)
    out = Path(args.out)
    bounds = parse_bounds(args.bounds, sc.structure.channels)
    observed = float(data.plan.spend.sum(axis=1).max())
    if observed > 0 and args.budget / args.horizon > PLAUSIBLE_FACTOR * observed:
        raise InputError(f"{args.budget:,.4g} over {args.horizon} weeks is {args.budget / args.horizon:,.4g} a week, "
                         f"more than {PLAUSIBLE_FACTOR:,.0f}x the largest observed weekly spend ({observed:,.4g}); "
                         f"the budget is the total over the horizon", "--budget")
    history = prepare(sc, fit, data, max_draws=args.draws, allow_unconverged=args.allow_unconverged)
    res = optimize(history, budget=args.budget, horizon=args.horizon, tail=args.tail,
                   bounds=bounds, objective=args.objective, max_change=getattr(args, 'max_change', MAX_CHANGE),
                   periods=args.periods, search_draws=args.search_draws, max_draws=args.draws,
                   verify_agents=args.verify_agents, agent_draws=args.agent_draws, agents=args.agents,
                   executor=executor_from_args(args))
    rc = response_curves(history, horizon=args.horizon, tail=args.tail, draws=min(args.search_draws, args.draws))
    with staged_dir(out) as stage:  # (all outputs or none)
        summary = _write_optimum(res, rc, stage, notes, sc.spec.currency)
    chans = list(res.channel.values)
    gain = summary["gain_vs_baseline"]
    if not args.quiet:
        _print_optimum(args, res, summary, chans, gain, out, sc.spec.currency)
    return 0


def _write_optimum(res, rc, out: Path, notes, currency=None) -> dict:
    from journeysim._util.files import atomic_path, save_figure, write_json
    from journeysim.plots.planning import plot_allocation, plot_response

    with atomic_path(out / "optimum.nc") as tmp:
        res.to_netcdf(tmp, engine="h5netcdf")
    with atomic_path(out / "response.nc") as tmp:
        rc.to_netcdf(tmp, engine="h5netcdf")
    save_figure(plot_allocation(res, currency=currency), out / "allocation.png")
    save_figure(plot_response(rc, currency=currency), out / "response.png")
    chans = list(res.channel.values)
    gain = {str(p): {str(m): {k: float(res[k].sel(plan=p, metric=m)) for k in ("mean", "lower", "upper", "prob_better")}
                     for m in ("purchases", "revenue", "media_new_customers")} for p in ("optimum", "baseline_mix")}
    summary = {**{k: (v.item() if hasattr(v, "item") else v) for k, v in res.attrs.items()},
               "allocation_weekly": {str(c): [float(x) for x in res.allocation.sel(channel=c).values] for c in chans},
               "allocation_total": {str(c): float(v) for c, v in zip(chans, res.allocation_total.values)},
               "baseline_weekly": {str(c): float(v) for c, v in zip(chans, res.baseline_weekly.values)},
               "gain_vs_baseline": gain, "currency": currency,
               "files": ["optimum.nc", "response.nc", "allocation.png", "response.png", "summary.json"]}
    if "agents_mean" in res:
        summary["agents_check"] = {
            str(m): {"agents": [float(res[f"agents_{k}"].sel(plan="optimum", check_metric=m)) for k in ("mean", "lower", "upper")],
                     "twin": [float(res[f"twin_{k}"].sel(plan="optimum", check_metric=m)) for k in ("mean", "lower", "upper")]}
            for m in res.check_metric.values}
    summary["warnings"] = list(notes)
    write_json(summary, out / "summary.json")
    return summary


def _print_optimum(args, res, summary, chans, gain, out, cur=None) -> None:
    from journeysim._util.format import interval, money, percent
    from journeysim.cli.tables import format_table

    rows = [[c, money(res.baseline_weekly.sel(channel=c).item(), cur)]
            + [money(res.allocation.sel(channel=c, period=p).item(), cur) for p in res.period.values]
            for c in chans]
    heads = ["channel", "baseline spend / week"] + [f"optimum spend / week (from week {int(w)})"
                                                     for w in res.period_start_week.values]
    print(format_table(rows, heads, title=f"allocation maximising {OBJECTIVE_WORDS[args.objective]} for a budget of "
                                          f"{money(args.budget, cur)} over {args.horizon} weeks"))
    print()
    rows = []
    for p in ("baseline_mix", "optimum"):
        g = gain[p]
        rows.append([p] + [interval(g[m]["mean"], g[m]["lower"], g[m]["upper"], signed=True)
                           for m in ("purchases", "revenue")] + [percent(g["purchases"]["prob_better"])])
    print(format_table(rows, ["plan", "change in purchases", f"change in {_header('revenue', cur)}",
                              "P(more purchases)"],
                       title="vs baseline (current spend): posterior mean [90% interval]",
                       notes=["  baseline_mix: the current mix scaled to this budget"]
                       + _limit_note(res.attrs.get("max_change", "none"))))
    if "agents_check" in summary:
        for m, v in summary["agents_check"].items():
            a, t = v["agents"], v["twin"]
            print(f"agents check, optimum vs current mix at this budget, change in {m}: agents "
                  f"{interval(*a, signed=True)}, twin {interval(*t, signed=True)}")
    for w in summary["warnings"]:
        print(f"note: {w}")
    print(f"\n{res.attrs['iterations']} iterations, {res.attrs['seconds']:.1f} s; wrote {out}/" + ", ".join(summary["files"]))


def _limit_note(max_change) -> list[str]:
    """What the optimiser was allowed to move, in words."""
    if max_change == "none":
        return []
    m = float(max_change)
    return [f"  each channel without --bounds stayed between {1 - m:.0%} and {1 + m:.0%} of its share of the "
            "current mix, the range the fit saw (--max-change none lifts it)"]


#: ``journeysim plan``'s own defaults for its fit (where they differ from ``calibrate``'s): two chains,
#: a higher target acceptance. Flags and the scenario's ``fit:`` section come first.
PLAN_FIT_DEFAULTS = {"chains": 2, "target_accept": 0.95}


def cmd_plan(args) -> int:
    """Calibrate (unless --posterior is given), then forecast and compare the example plans."""
    import warnings

    from journeysim._util.files import save_figure, staged_dir, write_json
    from journeysim.errors import JourneysimWarning
    from journeysim.inference.checks import posterior_predictive
    from journeysim.inference.sampling import (
        calibrate,
        fit_settings,
        scenario_settings_note,
    )
    from journeysim.inference.support import data_support
    from journeysim.planning.comparison import compare
    from journeysim.planning.forecasting import forecast
    from journeysim.plots.fit import plot_ppc

    sc, data, fit, notes = _start(args)
    out = Path(args.out)
    if fit is None:
        data_notes = data_support(sc, data)
        for w in data_notes:
            print(f"warning: {w}", file=sys.stderr, flush=True)
        st, src = fit_settings(sc, dict(draws=args.fit_draws, tune=args.tune, chains=args.chains,
                                        target_accept=args.target_accept, coords=args.coords), PLAN_FIT_DEFAULTS)
        if not args.quiet:
            note = scenario_settings_note(st, src)
            print(f"1/2 calibrating '{sc.name}' on {data.weeks} observed weeks ({st['chains']} chains x "
                  f"{st['draws']} draws{'; ' + note if note else ''}) ...", flush=True)
        from journeysim.cli._terminal import fit_progress

        with warnings.catch_warnings(record=True) as caught, \
                fit_progress(st["sampler"], st["chains"], st["draws"], st["tune"], quiet=args.quiet):
            warnings.simplefilter("always", JourneysimWarning)
            fit = calibrate(sc, data, draws=args.fit_draws, tune=args.tune, chains=args.chains, seed=args.seed,
                            target_accept=args.target_accept, coords=args.coords, defaults=PLAN_FIT_DEFAULTS)
        from journeysim.cli.fit import decomposition, fit_summary

        with staged_dir(out / "fit") as stage:  # (a complete fit or none; reusable with --posterior)
            fit.save(stage)
            ppc = posterior_predictive(sc, fit, data, max_draws=200, seed=fit.info["seed"])
            save_figure(plot_ppc(ppc, f"Posterior predictive check: {sc.name}"), stage / "ppc.png")
            i = fit.info
            fit_sum, _, misfit, _ = fit_summary(sc, fit, data, ppc, data_notes)  # (identification notes: below)
            fit_sum["decomposition"] = decomposition(sc, fit, data, stage)
            fit_sum["files"].insert(4, "decomposition.png")
            write_json(fit_sum, stage / "summary.json")
        if not args.quiet:
            print(f"   {i['seconds']:.0f} s; max r-hat {i['max_rhat']:.3f}, min bulk ESS {i['min_ess_bulk']:.0f}, "
                  f"divergences {i['divergences']} -> {out}/fit/", flush=True)
            for w in misfit:
                print(f"   note: {w}", flush=True)
        for w in caught:
            if issubclass(w.category, JourneysimWarning):
                print("WARNING: " + " ".join(str(w.message).split()), file=sys.stderr)
    plans = _plans_arg(args, sc)
    if not args.quiet:
        print(f"2/2 forecasting {len(plans) + 1} plans over {args.horizon} weeks ...", flush=True)
    fc = forecast(sc, fit, data, plans, horizon=args.horizon, tail=args.tail, max_draws=args.draws,
                  allow_unconverged=args.allow_unconverged)
    _write_forecast(fc, compare(fc), out, args.quiet, args.metric,
                    notes + _identification_warnings(sc, fit, data) + extrapolation_notes(fc, data, sc.spec.currency)
                    + _control_notes(fc), sc.spec.currency, _contributions(sc, fit, data, fc, max_draws=args.draws))
    if args.report:
        from journeysim.cli.report import write_report

        path, info = write_report(out, fit=args.posterior or (out / "fit"))
        if not args.quiet:
            print(f"wrote {path} (open it in a browser): " + ", ".join(info["sections"]))
    return 0


def _common(p, posterior_required: bool = True):
    p.add_argument("scenario", help="scenario YAML file")
    if posterior_required:
        p.add_argument("--posterior", required=True, metavar="FIT_DIR", help="output directory of `journeysim fit`")
    p.add_argument("--data", help="observed weekly CSV the fit used (default: the scenario's data:)")
    p.add_argument("--horizon", type=weeks_int, default=26, help="weeks of the plans (default 26)")
    p.add_argument("--tail", type=tail_int, default=8, help="weeks without spend after the horizon (carry-over; default 8)")
    p.add_argument("--draws", type=draws_int, default=500, help="posterior draws used (default 500)")
    p.add_argument("--allow-unconverged", action="store_true", help="forecast from a fit that did not converge")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true")


def _agents_args(p):
    p.add_argument("--agents", type=agents_int, help="agents per run with --engine agents (default: the scenario's)")
    p.add_argument("--agent-draws", type=draws_int, default=20, help="posterior draws run with the agents (default 20)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler for agent runs (default: local processes)")
    p.add_argument("--workers", type=positive_int, help="local worker processes for agent runs")


#: What each ``--objective`` maximises, in words.
OBJECTIVE_WORDS = {"purchases": "expected purchases", "profit": "expected profit (revenue minus spend)",
                   "p10": "the 10% quantile of purchases",
                   "gain_p10": "the gain over the current mix that 9 posterior draws in 10 exceed"}


def register(sub) -> None:
    helptext = "forecast media plans from a calibrated fit and compare them with the baseline"
    for name in ("forecast", "compare"):  # (one command under two names)
        f = sub.add_parser(name, help=helptext)
        _common(f)
        f.add_argument("--plan", action="append", metavar="PLAN",
                       help="plan file (YAML or CSV); repeat for several (default: the scenario's plans:)")
        f.add_argument("--engine", choices=["twin", "agents"], default="twin")
        f.add_argument("--metric", default="purchases", help="metric for P(beats baseline) (default purchases)")
        _agents_args(f)
        f.set_defaults(func=cmd_forecast)  # (one command, two names)
    o = sub.add_parser("optimize", help="allocate a budget across channels to maximise an objective")
    _common(o)
    o.add_argument("--budget", type=positive_float, required=True, help="total spend over the horizon")
    o.add_argument("--bounds", nargs="*", metavar="CHANNEL=LO:HI", help="total spend bounds per channel")
    o.add_argument("--max-change", type=change_or_none, default=argparse.SUPPRESS, metavar="SHARE",
                   help="channels without --bounds stay within this share of what the current mix gives them "
                        "(default 0.3: 70%%-130%%; none: no limit)")
    o.add_argument("--objective", choices=["purchases", "profit", "p10", "gain_p10"], default="purchases",
                   help="purchases (expected), profit, p10 (10%% quantile of purchases) or gain_p10 (the gain over "
                        "the current mix that 9 posterior draws in 10 exceed: moves only where confident)")
    o.add_argument("--periods", type=weeks_int, default=1, help="flighting: allocate this many blocks of weeks separately")
    o.add_argument("--search-draws", type=draws_int, default=100, help="posterior draws used by the search (default 100)")
    o.add_argument("--verify-agents", action="store_true", help="check the optimum against the baseline with agents")
    _agents_args(o)
    o.set_defaults(func=cmd_optimize)
    p = sub.add_parser("plan", help="the whole flow: calibrate on observed data, then compare the example plans")
    _common(p, posterior_required=False)
    p.add_argument("--posterior", metavar="FIT_DIR", help="reuse a fit instead of calibrating")
    p.add_argument("--plan", action="append", metavar="PLAN", help="plan file (default: the scenario's plans:)")
    # (the fit's sampler settings: a flag given wins, else the scenario's fit: section, else PLAN_FIT_DEFAULTS)
    p.add_argument("--fit-draws", type=draws_int, help="draws per chain of the fit (default 1000)")
    p.add_argument("--tune", type=steps_int, help="tuning steps per chain of the fit (default 1000)")
    p.add_argument("--chains", type=chains_int, help="chains of the fit (default 2)")
    p.add_argument("--target-accept", type=probability,
                   help="NUTS target acceptance of the fit (default 0.95: smaller steps, no divergences on the examples)")
    p.add_argument("--coords", choices=["log", "softplus"],
                   help="sampler coordinates of the fit's lognormal parameters (default log; see journeysim fit --help)")
    p.add_argument("--seed", type=non_negative_int)
    p.add_argument("--metric", default="purchases")
    p.add_argument("--no-report", dest="report", action="store_false",
                   help="do not write report.html (journeysim report DIR writes it later)")
    p.set_defaults(func=cmd_plan)

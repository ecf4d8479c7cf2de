"""``journeysim fit``: calibrate a scenario on observed weekly data."""

from __future__ import annotations

import sys
import warnings

from journeysim.inference.checks import ppc_coverage
from journeysim.inference.criticism import criticize, identification, keyed
from journeysim.inference.support import STEP_PREFIXES
from journeysim.model.delivery import learn_delivery
from journeysim.plots.fit import plot_ppc

__all__ = ['register']


def cmd_fit(args) -> int:
    from journeysim._util.files import save_figure, staged_dir, write_json
    from journeysim.cli._args import check_memory, check_out, executor_from_args
    from journeysim.cli.tables import format_table
    from journeysim.errors import InputError, JourneysimWarning
    from journeysim.inference.checks import posterior_predictive
    from journeysim.inference.sampling import (
        calibrate,
        fit_settings,
        scenario_settings_note,
    )
    from journeysim.inference.support import data_support
    from journeysim.io.observed import read_observed
    from journeysim.model.scenario import load_scenario

    out = check_out(args.out)
    sc = load_scenario(args.scenario)
    data_path = args.data or (str(sc.base_dir / sc.spec.data) if sc.spec.data else None)
    if data_path is None:
        raise InputError("no observed data: pass --data CSV or set data: in the scenario", str(args.scenario))
    data = read_observed(data_path, sc, ignore_columns=tuple(args.ignore_column or ()))
    paths = None
    if getattr(args, "paths", None):
        from journeysim.inference.pathlik import read_path_counts

        paths = read_path_counts(args.paths, sc, unknown="ignore" if args.paths_ignore_unknown else "error",
                                 channels=args.paths_channels.split(",") if args.paths_channels else None,
                                 path_sep=args.paths_sep)
    executor = executor_from_args(args)
    if executor is not None:  # checked now, and named as the user wrote it
        from journeysim.scale.executor import get_executor

        executor = get_executor(executor, where="--scheduler" if args.scheduler else "--workers")
    if args.method == "abc":
        check_memory(args.abc_agents, "--abc-agents")
    data_notes = data_support(sc, data)  # (before sampling: what these data cannot tell the fit)
    if args.check:  # the prior predictive check first: a scenario far from its data is not worth sampling
        from journeysim.cli.check import print_prior_check, run_prior_check

        _, table, far = run_prior_check(sc, data, draws=100, seed=args.seed or 0)
        if far:
            if not args.quiet:
                print_prior_check(table, "prior predictive check (before fitting)")
            raise InputError("the scenario is far from its data: " + "; ".join(far)
                             + " (journeysim check SCENARIO shows it; --no-check fits anyway)", str(args.scenario))
    st, src = fit_settings(sc, dict(draws=args.draws, tune=args.tune, chains=args.chains, sampler=args.sampler,
                                    target_accept=args.target_accept, coords=args.coords))
    if not args.quiet:
        print(f"calibrating '{sc.name}' on {data.weeks} weeks of {data_path} "
              f"({st['chains']} chains x {st['draws']} draws, {st['sampler']}, method {args.method}) ...", flush=True)
        note = scenario_settings_note(st, src)
        if note:
            print("   " + note, flush=True)
        for line in delivery_notes(sc, data):
            print("   " + line, flush=True)
    for w in data_notes:
        print(f"warning: {w}", file=sys.stderr, flush=True)
    from journeysim.cli._terminal import fit_progress

    with warnings.catch_warnings(record=True) as caught, \
            fit_progress(st["sampler"], st["chains"], st["draws"], st["tune"],
                         quiet=args.quiet or args.method != "nuts") as own_bar:
        warnings.simplefilter("always", JourneysimWarning)
        fit = calibrate(sc, data, draws=args.draws, tune=args.tune, chains=args.chains, sampler=args.sampler,
                        seed=args.seed, method=args.method,
                        progress=own_bar if args.method == "nuts" else not args.quiet, paths=paths,
                        target_accept=args.target_accept, coords=args.coords,
                        abc_agents=args.abc_agents, executor=executor)
    with staged_dir(out) as stage:  # (all outputs or none: a failure after sampling leaves nothing behind)
        fit.save(stage)
        ppc = posterior_predictive(sc, fit, data, max_draws=200, seed=fit.info["seed"])
        save_figure(plot_ppc(ppc, f"Posterior predictive check: {sc.name}"), stage / "ppc.png")
        summary, criticism, misfit, weak = fit_summary(sc, fit, data, ppc, data_notes)
        dec = decomposition(sc, fit, data, stage)
        summary["decomposition"] = dec
        summary["files"].insert(4, "decomposition.png")
        cover, params = summary["ppc_coverage_90"], summary["parameters"]
        if paths is not None:
            from journeysim._util.files import write_text
            from journeysim.inference.checks import path_check

            check = path_check(sc, fit, data, paths, max_draws=40)
            write_text(check.to_csv(lineterminator="\n"), stage / "paths_check.csv")
            summary["files"].append("paths_check.csv")
            if not args.quiet:
                print(format_table([[c, *r] for c, r in zip(check.index, check.to_numpy().tolist())],
                                   ["channel", *check.columns], title="path table: touches followed by a purchase"))
        write_json(summary, stage / "summary.json")
    if not args.quiet:
        from journeysim._util.format import number

        steps = {n: p for n, p in params.items() if n.startswith(STEP_PREFIXES)}
        rows = [[n, number(p["mean"]), number(p["hdi_5%"]), number(p["hdi_95%"]), f"{p['r_hat']:.3f}",
                 number(round(p["ess_bulk"]))] for n, p in params.items() if n not in steps]
        print(format_table(rows, ["parameter", "mean", "5%", "95%", "r-hat", "ESS (bulk)"],
                           title="posterior (5% and 95%: the 90% highest-density interval)"))
        if steps:
            print(f"(and {len(steps)} standard steps of the latent demand and weekly shocks, in diagnostics.csv: "
                  f"largest r-hat {max(p['r_hat'] for p in steps.values()):.3f}, smallest bulk ESS "
                  f"{min(p['ess_bulk'] for p in steps.values()):,.0f})")
        print(f"\n{fit.info['seconds']:.0f} s; max r-hat {fit.info['max_rhat']:.3f}, min bulk ESS "
              f"{fit.info['min_ess_bulk']:.0f}, divergences {fit.info['divergences']}; "
              f"observed weeks inside the 90% predictive band: "
              + ", ".join(f"{k} {v:.0%}" for k, v in cover.items()))
        if criticism:
            rows = [[r["kpi"], _pct(r["r2"]), _num(r["residual_autocorrelation"]), _pct(r["residual_seasonal_share"]),
                     _pct(r["noise_cv"], 1)] for r in criticism]
            print(format_table(rows, ["KPI", "variation explained (R²)", "residual autocorrelation (lag 1)",
                                      "residual variance that is seasonal", "fitted noise (CV)"],
                               title="model criticism: what the 90% band does not show"))
        for w in misfit + weak:
            print(f"note: {w}")
        for w in data_notes:
            print(f"warning: {w}")
        from journeysim._util.format import percent

        share = summary["decomposition"]["share_of_kpi"]
        kpis = list(share)
        parts = list(next(iter(share.values())))
        rows = [[p, *(percent(share[k][p]) for k in kpis)] for p in parts]
        print(format_table(rows, ["part", *kpis], title="what makes each KPI over the history (share of its total; "
                                                         "each part: the fit minus the fit without it)"))
        print(f"wrote {out}/posterior.nc, diagnostics.csv, ppc.png, decomposition.png, summary.json")
    if not fit.converged:
        for w in caught:
            if issubclass(w.category, JourneysimWarning):
                print("WARNING: " + " ".join(str(w.message).split()), file=sys.stderr)
        return 3 if args.strict else 0
    return 0


def decomposition(sc, fit, data, out) -> dict:
    """``decomposition.png`` in ``out``; returns, per KPI, the share of its history each part makes and,
    per part, the people it brought into each stage."""
    from journeysim._util.files import save_figure
    from journeysim.inference.decomposition import decompose, decomposition_table
    from journeysim.plots.fit import plot_decomposition

    dec = decompose(sc, fit, data)
    save_figure(plot_decomposition(dec, f"What makes each KPI of {sc.name} over the history"), out / "decomposition.png")
    table = decomposition_table(dec)
    ent = dec.entries.sum("time")
    return {"share_of_kpi": {str(k): {str(p): float(v) for p, v in col.items()} for k, col in table.items()},
            "entries_by_stage": {str(p): {str(s): float(ent.sel(part=p, stage=s)) for s in dec.stage.values}
                                 for p in dec.part.values if p != "total"}}


def delivery_notes(sc, data) -> list[str]:
    """What spend buys, where the data's impressions taught it (:mod:`journeysim.model.delivery`)."""
    curves = learn_delivery(sc, data)
    return [f"delivery learned from impressions_{c}: " + v.describe(*_cost_unit(sc, c)) for c, v in curves.items()]


def _cost_unit(sc, channel: str) -> tuple[float, str]:
    """How a channel's cost is quoted: per thousand impressions (CPM) or per click (CPC)."""
    return (1.0, "cost per click") if sc.spec.channels[channel].cpm is None else (1000.0, "CPM")


def fit_summary(sc, fit, data, ppc, data_notes=()) -> tuple[dict, list, list, list]:
    """``summary.json`` of a fit (as ``fit`` and ``plan`` write it), its criticism rows and warnings
    (``data_notes``: what the data cannot support, :func:`journeysim.inference.support.data_support`)."""
    cover = ppc_coverage(ppc)
    criticism, misfit = criticize(ppc, fit, data)
    channels, weak = identification(sc, fit, data) if getattr(fit, "space", None) is not None and len(fit.space) \
        else ([], [])
    d = fit.diagnostics
    params = {}
    for name in d.index:
        row = d.loc[name]
        params[name] = {"mean": row["mean"], "sd": row["sd"], "hdi_5%": row["hdi_5%"], "hdi_95%": row["hdi_95%"],
                        "r_hat": row["r_hat"], "ess_bulk": row["ess_bulk"]}
    summary = {**fit.info, "converged": fit.converged, "parameters": params, "ppc_coverage_90": cover,
               "criticism": keyed(criticism, "kpi"),
               "identification": keyed(channels, "channel"),
               "warnings": list(data_notes) + misfit + weak,
               "data_warnings": list(data_notes),
               "delivery": {c: {"cost_per_touch": v.cost, "reference_weekly_spend": v.reference,
                                "cost_elasticity": v.elasticity, "weekly_scatter": v.sigma, "weeks": v.weeks,
                                "stated_cost_per_touch": v.stated_cost}
                            for c, v in learn_delivery(sc, data).items()},
               "files": ["posterior.nc", "diagnostics.csv", "fit.json", "ppc.png", "summary.json"]}
    return summary, criticism, misfit, weak


def _pct(x: float, digits: int = 0) -> str:
    return "-" if x != x else f"{x:.{digits}%}"


def _num(x: float) -> str:
    return "-" if x != x else f"{x:+.2f}"


def register(sub) -> None:
    from journeysim.cli._args import (
        agents_int,
        non_negative_int,
        positive_int,
        probability,
    )

    f = sub.add_parser("fit", help="calibrate a scenario's uncertain parameters on observed weekly data",
                       description="Calibrate a scenario's uncertain parameters on observed weekly data. Sampler "
                                   "settings not given as flags come from the scenario's fit: section, else the "
                                   "defaults named below.")
    f.add_argument("scenario", help="scenario YAML file (with observations: and priors:)")
    f.add_argument("--data", help="observed weekly CSV (default: the scenario's data:)")
    f.add_argument("--out", default="out/fit", help="output directory")
    # (sampler settings: a flag given wins, else the scenario's fit: section, else the default named)
    # (sizes are checked by calibrate's fit_settings, before any work, naming the setting)
    f.add_argument("--draws", type=int, help="draws per chain (default 1000)")
    f.add_argument("--tune", type=int, help="tuning steps per chain (default 1000)")
    f.add_argument("--chains", type=int, help="chains (default 4)")
    f.add_argument("--sampler", choices=["nutpie", "pymc", "numpyro"], help="NUTS sampler (default nutpie)")
    f.add_argument("--method", choices=["nuts", "abc"], default="nuts",
                   help="nuts: the twin as likelihood; abc: the agent engine with SMC (small sizes)")
    f.add_argument("--seed", type=non_negative_int, default=None)
    f.add_argument("--target-accept", type=probability,
                   help="NUTS target acceptance (default 0.9; raise it, e.g. 0.95, if the fit reports divergences)")
    f.add_argument("--coords", choices=["log", "softplus"],
                   help="sampler coordinates of lognormal parameters (default log; softplus: fewer gradients per "
                        "draw when the data pin the effects down, e.g. the retail example; same model)")
    f.add_argument("--abc-agents", type=agents_int, default=2000, metavar="N", help="abc: agents per simulation")
    f.add_argument("--scheduler", metavar="ADDRESS",
                   help="abc: where the agent runs go: a Dask scheduler (tcp://host:8786), or inline, local:N, dask:N")
    f.add_argument("--workers", type=positive_int, help="abc: local worker processes (default: one per core)")
    f.add_argument("--ignore-column", action="append", metavar="COLUMN", help="a data column to leave out on purpose")
    f.add_argument("--paths", metavar="PATHS.csv",
                   help="observed path table (journey counts) over the same weeks: adds the path likelihood")
    f.add_argument("--paths-channels", metavar="A,B", help="channels whose path follow rates enter the fit "
                   "(default: those whose touches have a noticeable own effect on purchases)")
    f.add_argument("--paths-sep", default=None, metavar="SEP",
                   help="touchpoint separator of the --paths table (>, ->, | or ,; default: detected)")
    f.add_argument("--paths-ignore-unknown", action="store_true",
                   help="drop path touchpoints that are not channels of the scenario instead of failing")
    f.add_argument("--strict", action="store_true", help="exit with status 3 if the fit did not converge")
    f.add_argument("--no-check", dest="check", action="store_false",
                   help="fit even if the prior predictive check finds the scenario far from its data")
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(func=cmd_fit)

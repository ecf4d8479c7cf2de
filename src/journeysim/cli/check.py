"""``journeysim check``: the prior predictive check, how far a scenario is from its data before a fit.

For each KPI, the priors' 90% band over time against the observed series (``prior_check.png``) and
a table of levels; a warning for every KPI whose level is off by more than 2x or whose observed
series lies mostly outside the band. ``journeysim fit`` runs the same check first and stops with
those warnings unless ``--no-check``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ['register', 'run_prior_check', 'print_prior_check']


def run_prior_check(sc, data, *, draws: int = 200, seed: int = 0):
    """``(ppc, table, warnings)`` of :func:`journeysim.inference.checks.prior_check`."""
    from journeysim.inference.checks import prior_check, prior_predictive

    ppc = prior_predictive(sc, data, draws=draws, seed=seed)
    table, warnings = prior_check(ppc)
    return ppc, table, warnings


def print_prior_check(table, title: str) -> None:
    from journeysim._util.format import number, percent
    from journeysim.cli.tables import format_table

    rows = [[r.kpi, number(r.observed_mean), number(r.prior_median),
             f"{number(r.prior_lower)} to {number(r.prior_upper)}", f"{r.ratio:.2f}x", percent(r.inside_90)]
            for r in table.itertuples()]
    print(format_table(rows, ["KPI", "observed (mean a week)", "prior (median)", "prior 90% band of the level",
                              "prior / observed", "observed weeks inside the prior's 90% band"], title=title))


def cmd_check(args) -> int:
    from journeysim._util.files import save_figure, staged_dir, write_json
    from journeysim.cli._args import check_out, load_inputs
    from journeysim.plots.fit import plot_ppc

    out = check_out(args.out)
    sc, data, _ = load_inputs(args)
    ppc, table, warnings = run_prior_check(sc, data, draws=args.draws, seed=args.seed)
    with staged_dir(out) as stage:  # (all outputs or none)
        save_figure(plot_ppc(ppc, f"Prior predictive check: {sc.name} (before fitting)"), stage / "prior_check.png")
        write_json({"scenario": sc.name, "data_file": data.source, "draws": args.draws, "seed": args.seed,
                    "kpis": {r["kpi"]: {k: v for k, v in r.items() if k != "kpi"} for r in table.to_dict("records")},
                    "warnings": warnings, "files": ["prior_check.png", "summary.json"]}, stage / "summary.json")
    if not args.quiet:
        print_prior_check(table, f"prior predictive check of '{sc.name}' on {data.weeks} weeks of {data.source} "
                                 f"({args.draws} prior draws)")
        for w in warnings:
            print(f"warning: {w}")
        if not warnings:
            print("every KPI's level is within 2x of the data, and the data lie mostly inside the prior's band")
        print(f"wrote {Path(out)}/prior_check.png, summary.json")
    return 0


def register(sub) -> None:
    from journeysim.cli._args import non_negative_int, positive_int

    c = sub.add_parser("check", help="prior predictive check: how far the scenario is from its data, before a fit",
                       description="Runs the twin over the observed history for draws of the priors and sets each "
                                   "KPI's 90%% band against the data; warns where a level is off by more than 2x "
                                   "or the data lie mostly outside the band.")
    c.add_argument("scenario", help="scenario YAML file (with observations:)")
    c.add_argument("--data", help="observed weekly CSV (default: the scenario's data:)")
    c.add_argument("--draws", type=positive_int, default=200, help="prior draws (default 200)")
    c.add_argument("--seed", type=non_negative_int, default=0, help="seed of the prior draws")
    c.add_argument("--out", default="out/check", help="output directory (default: out/check)")
    c.add_argument("--quiet", action="store_true", help="no table")
    c.set_defaults(func=cmd_check)

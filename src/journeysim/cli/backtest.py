"""``journeysim backtest``: refit on the first weeks, forecast the held-back weeks, score every KPI."""

from __future__ import annotations

import warnings

__all__ = ["register"]


def cmd_backtest(args) -> int:
    from journeysim._util.files import save_figure, staged_dir, write_json
    from journeysim.cli._args import check_out, load_inputs
    from journeysim.cli.tables import format_table
    from journeysim.errors import JourneysimWarning
    from journeysim.inference.backtest import backtest
    from journeysim.plots.backtest import plot_backtest

    out = check_out(args.out)
    sc, data, _ = load_inputs(args)  # (too few weeks for the folds: refused by backtest() before any fit)

    def progress(k, n, start, stop):
        if not args.quiet:
            print(f"fold {k + 1}/{n}: fitting on weeks 1-{start}, forecasting weeks {start + 1}-{stop} ...",
                  flush=True)

    with warnings.catch_warnings():  # (an unconverged fold is reported below, in words)
        warnings.simplefilter("ignore", JourneysimWarning)
        res = backtest(sc, data, folds=args.folds, horizon=args.horizon, draws=args.draws, tune=args.tune,
                       chains=args.chains, seed=args.seed, progress=progress)
    with staged_dir(out) as stage:  # (all outputs or none)
        save_figure(plot_backtest(res, f"Backtest: {sc.name}, {args.folds} folds of {args.horizon} weeks"),
                    stage / "backtest.png")
        summary = {"scenario": sc.name, "data": data.source, **res, "files": ["backtest.png", "summary.json"]}
        write_json(summary, stage / "summary.json")
    if not args.quiet:
        from journeysim._util.format import number, percent

        rows = [[k.replace("_", " "), number(v["weeks"]), percent(v["coverage_90"]), number(v["crps"]),
                 percent(v["crps_relative"], 1), percent(v["mape"], 1)] for k, v in sorted(res["kpis"].items())]
        print(format_table(rows, ["KPI", "held-back weeks", "inside the 90% interval", "CRPS",
                                  "CRPS / observed mean", "mean abs. error"],
                           title="backtest: forecasts of weeks the fit did not see, with the spend actually run"))
        bad = [f for f in res["folds"] if not f["converged"]]
        for f in bad:
            print(f"note: the fit of fold {f['fold']} did not converge (max r-hat {f['max_rhat']:.3f}, "
                  f"{f['divergences']} divergences); its forecasts are less reliable")
        print(f"\nwrote {out}/backtest.png, summary.json")
    return 0


def register(sub) -> None:
    from journeysim.cli._args import non_negative_int, positive_int

    b = sub.add_parser("backtest", help="refit on the first weeks and score forecasts of the held-back weeks",
                       description="Rolling-origin backtest: for each fold, calibrate on the weeks before it and "
                                   "forecast its weeks with the spend actually run; score every observed KPI "
                                   "(CRPS, 90%% coverage, mean absolute error). The check to run on real data, "
                                   "where no true effect is known.")
    b.add_argument("scenario", help="scenario YAML file (with observations:)")
    b.add_argument("--data", help="observed weekly CSV (default: the scenario's data:)")
    b.add_argument("--folds", type=positive_int, default=3, help="refits, each forecasting the next weeks (default 3)")
    b.add_argument("--horizon", type=positive_int, default=8, help="weeks forecast per fold (default 8)")
    b.add_argument("--draws", type=positive_int, help="draws per chain (default: the scenario's fit: section, else 1000)")
    b.add_argument("--tune", type=non_negative_int, help="tuning steps per chain (default: as fit)")
    b.add_argument("--chains", type=positive_int, help="chains (default: as fit)")
    b.add_argument("--seed", type=non_negative_int, default=0, help="seed of the first fold (fold k: seed + k)")
    b.add_argument("--out", default="out/backtest", help="output directory (default: out/backtest)")
    b.add_argument("--quiet", action="store_true", help="no progress or table")
    b.set_defaults(func=cmd_backtest)

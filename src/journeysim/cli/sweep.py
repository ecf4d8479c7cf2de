"""``journeysim sweep``: run a scenario over a grid of variations (locally or on a Dask cluster)."""

from __future__ import annotations

from pathlib import Path

__all__ = ['register']


#: Grid points printed in the terminal table (summary.json has them all).
_MAX_ROWS = 40


def cmd_sweep(args) -> int:
    from journeysim._util.files import save_figure, write_json
    from journeysim.cli._args import check_memory, check_out
    from journeysim.cli.tables import format_table
    from journeysim.errors import InputError
    from journeysim.model.output import save_dataset
    from journeysim.plots.sweep import plot_sweep
    from journeysim.scale.sweeps import summarize_sweep, sweep

    check_out(args.out)
    if args.agents:
        check_memory(args.agents, "--agents", runs=args.workers or 1)
    if args.scheduler and args.workers:
        raise InputError("give --workers (local processes) or --scheduler (a Dask cluster), not both", "--workers")
    spec = args.scheduler or (f"local:{args.workers}" if args.workers else None)
    if spec is not None:
        from journeysim.scale.executor import get_executor

        spec = get_executor(spec, where="--scheduler" if args.scheduler else "--workers")
    out = Path(args.out)
    ds = sweep(args.scenario, args.grid, executor=spec, store=out / "tasks", progress=not args.quiet,
               engine=args.engine, agents=args.agents, weeks=args.weeks)
    summary = summarize_sweep(ds)
    summary.update({"scenario_file": str(args.scenario), "grid_file": str(args.grid)})
    save_dataset(ds, out / "sweep.nc")
    save_figure(plot_sweep(ds), out / "sweep.png")
    write_json(summary, out / "summary.json")
    if not args.quiet:
        pts = summary["points"]
        axes = [d for d in summary["axes"] if d not in ("seed", "replication")]
        sd = summary["replicates_per_point"] > 1

        def cell(p, k):
            if sd and p.get(k) is not None and p.get(k + "_sd") is not None:
                return f"{p[k]:,.0f} +- {p[k + '_sd']:,.0f}"
            return p.get(k)

        rows = [[p[a] for a in axes] + [cell(p, "purchases"), cell(p, "revenue"), p["spend"], p["roas"]]
                for p in pts[:_MAX_ROWS]]
        reps = f", mean +- sd over {summary['replicates_per_point']} runs" if sd else ""
        title = f"{summary['scenario']}: totals over {summary['weeks']} weeks ({summary['engine']}{reps})"
        print(format_table(rows, axes + ["purchases", "revenue", "spend", "revenue / spend*"], title=title,
                           notes=["* all revenue over all spend; not ROAS, which counts only the revenue media add"]))
        if len(pts) > _MAX_ROWS:
            print(f"... {len(pts) - _MAX_ROWS} more points in summary.json")
        print(f"\n{summary['tasks']} runs: {summary['computed']} computed, {summary['resumed']} taken from "
              f"{out}/tasks ({summary['seconds']:.1f} s, {summary['executor']})")
        print(f"wrote {out}/sweep.nc, sweep.png, summary.json")
    return 0


def register(sub) -> None:
    from journeysim.cli._args import agents_int, positive_int, weeks_int

    s = sub.add_parser("sweep", help="run a scenario over a grid of variations (spend, parameters, seeds)")
    s.add_argument("scenario", help="scenario YAML file")
    s.add_argument("--grid", required=True, help="grid YAML file: axes such as spend.tv: [0.5, 1, 1.5]")
    s.add_argument("--out", default="out/sweep", help="output directory (default: out/sweep); "
                   "finished runs are kept in OUT/tasks and a rerun resumes from them")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (tcp://host:8786), or inline, local:N, dask:N")
    s.add_argument("--workers", type=positive_int, help="local worker processes (default: one per core)")
    s.add_argument("--engine", choices=["agents", "twin"], help="override the grid's engine")
    s.add_argument("--agents", type=agents_int, help="override the grid's agents per run")
    s.add_argument("--weeks", type=weeks_int, help="override the grid's horizon")
    s.add_argument("--quiet", action="store_true", help="no progress bar or table")
    s.set_defaults(func=cmd_sweep)

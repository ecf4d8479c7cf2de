"""The ``journeysim`` command line: verbs that mirror the Python API.

Every verb validates its inputs first and reports a problem as one line naming the file, key or
row; exit status 2 for bad input, 1 for a failure while running, 0 on success.
"""

from __future__ import annotations

import argparse
import sys
import time

from journeysim.cli._args import agents_int, log_agents_int, non_negative_int, weeks_int
from journeysim.errors import InputError, JourneysimError

__all__ = ['main', 'build_parser']


# ---------------------------------------------------------------------------------------------
# verbs


def cmd_validate(args) -> int:
    from journeysim._util.format import number
    from journeysim.cli.tables import format_table
    from journeysim.cli.validate import check_scenario

    sc, data, space, notes = check_scenario(args.scenario, data=args.data)
    st = sc.structure
    print(f"{args.scenario}: valid scenario '{sc.name}'" + (f" and data {data.source}" if data is not None else ""))
    rows = [
        ["market", f"{st.population:,.0f} people, {st.agents:,} agents ({number(st.weight)} people each)"],
        ["horizon", f"{sc.weeks} weeks from {sc.start}, step {sc.spec.market.step}, seed {sc.seed}"],
        ["journey", f"{len(st.stages)} stages, {len(st.edges)} transitions: {' '.join(st.stages)}"],
        ["personas", ", ".join(f"{p} ({s:.0%})" for p, s in zip(st.personas, st.persona_share))],
        ["channels", ", ".join(st.channels) or "none"],
        ["plan", f"total spend {sc.plan.total:,.0f} over {sc.plan.weeks} weeks"],
        ["events", ", ".join(e.name for e in sc.spec.events) or "none"],
        ["observations", ", ".join(f"{o.column} ({o.measures})" for o in sc.spec.observations) or "none"],
        ["priors", f"{len(space)} uncertain parameters" + ("" if sc.spec.priors else " (default priors)")],
    ]
    if data is not None:
        rows.append(["data", f"{data.weeks} weeks from {data.dates[0].date()}"])
    if sc.spec.plans:
        rows.append(["plans", ", ".join(sc.spec.plans)])
    print(format_table(rows, ["part", "content"]))
    for n in notes:
        print(f"warning: {n}")
    return 0


def cmd_run(args) -> int:
    from journeysim._util.files import save_figure, staged_dir, write_json
    from journeysim.cli._args import check_memory, check_out
    from journeysim.engine.simulation import Simulation
    from journeysim.model.output import save_dataset, summarize
    from journeysim.model.scenario import load_scenario
    from journeysim.plots.simulation import plot_channels, plot_flows, plot_stages

    out = check_out(args.out)
    sc = load_scenario(args.scenario, agents=args.agents, seed=args.seed, weeks=args.weeks)
    if args.engine == "agents":
        check_memory(sc.structure.agents, "--agents" if args.agents else f"{args.scenario}: market.agents")
    t0 = time.perf_counter()
    if args.engine == "twin":
        from journeysim.twin.run import run_twin

        ds = run_twin(sc)
    else:
        sim = Simulation(sc, progress=not args.quiet, log_agents=args.log_agents)
        ds = sim.run()
    elapsed = time.perf_counter() - t0
    summary = summarize(ds)
    summary.update({"currency": sc.spec.currency, "seconds": elapsed, "agents": sc.structure.agents, "seed": sc.seed,
                    "scenario_file": str(args.scenario)})
    with staged_dir(out) as stage:  # (all outputs or none)
        save_dataset(ds, stage / "simulation.nc")
        save_figure(plot_stages(ds), stage / "stages.png")
        save_figure(plot_flows(ds), stage / "flows.png")
        save_figure(plot_channels(ds, currency=sc.spec.currency), stage / "channels.png")
        if args.engine == "agents" and args.log_agents:
            from journeysim.io.eventlog import save_events

            save_events(sim.events(), stage / "events.parquet")
        write_json(summary, stage / "summary.json")
    if not args.quiet:
        print(_run_table(summary, sc.spec.currency))
        print(f"\nwrote {out}/simulation.nc, stages.png, flows.png, channels.png, summary.json "
              f"({elapsed:.1f} s, {sc.structure.agents:,} agents)")
    return 0


def _run_table(s: dict, currency: str | None = None) -> str:
    from journeysim._util.format import money, number
    from journeysim.cli.tables import format_table

    m = lambda v: money(v, currency)  # noqa: E731
    head = [
        ["spend", m(s["spend"])], ["purchases", number(s["purchases"])],
        ["new customers", number(s["new_customers"])], ["repeat purchases", number(s["repeat_purchases"])],
        ["revenue", m(s["revenue"])], ["referrals", number(s["referrals"])],
        ["revenue per unit of spend*", number(s["revenue_per_spend"])],
        ["spend per new customer", m(s["spend_per_new_customer"])],
    ]
    t1 = format_table(head, ["total over the horizon", "value"],
                      title=f"{s['scenario']}: {s['weeks']} weeks from {s['start']}",
                      notes=["* all revenue over all spend; not ROAS, which counts only the revenue media add "
                             "(journeysim forecast)"])
    stages = [[k, number(s["stage_size_first_week"][k]), number(s["stage_size_last_week"][k])]
              for k in s["stage_size_last_week"]]
    t2 = format_table(stages, ["stage", "people, first week", "people, last week"])
    chans = [[c, m(v["spend"]), number(v["impressions"]), number(v["mean_weekly_reach"])]
             for c, v in s["by_channel"].items()]
    t3 = format_table(chans, ["channel", "spend", "touches", "people reached / week (mean)"]) if chans else ""
    return "\n\n".join(x for x in (t1, t2, t3) if x)


# ---------------------------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="journeysim",
        description="Simulate customer journeys, calibrate them on observed data, and plan media budgets.",
    )
    from journeysim._util.version import VERSION as __version__

    p.add_argument("--version", action="version", version=f"journeysim {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True

    v = sub.add_parser("validate", help="check a scenario file, its priors, observations, data and plan files")
    v.add_argument("scenario", help="scenario YAML file")
    v.add_argument("--data", metavar="CSV", help="also check this observed CSV against the scenario "
                                                  "(default: the scenario's data:, if it names one)")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("run", help="simulate a scenario; write dataset, plots and summary")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--agents", type=agents_int, help="agents to simulate (default: the scenario's)")
    r.add_argument("--seed", type=non_negative_int, help="random seed (default: the scenario's)")
    r.add_argument("--weeks", type=weeks_int, help="horizon in weeks (default: the scenario's)")
    r.add_argument("--engine", choices=["agents", "twin"], default="agents", help="agent engine or mean-field twin")
    r.add_argument("--log-agents", type=log_agents_int, default=None, metavar="N",
                   help="record the individual journeys of N agents (-1: all) to events.parquet")
    r.add_argument("--out", default="out/run", help="output directory (default: out/run)")
    r.add_argument("--quiet", action="store_true", help="no progress bar or table")
    r.set_defaults(func=cmd_run)

    for name, register in _EXTRA_VERBS:
        register(sub)
    return p


#: Verbs registered by other modules: (name, function adding its subparser).
_EXTRA_VERBS: list = []


def _register_extras():
    import importlib

    for mod in ("journeysim.cli.fit", "journeysim.cli.backtest", "journeysim.cli.plan", "journeysim.cli.attribute",
                "journeysim.cli.sweep", "journeysim.cli.report", "journeysim.cli.check", "journeysim.cli.init"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name == mod:
                continue
            raise
        _EXTRA_VERBS.append((mod, m.register))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``journeysim`` console script."""
    from journeysim.cli._terminal import quiet_terminal

    with quiet_terminal():  # (library banners and warnings off; journeysim's on one line)
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    if not _EXTRA_VERBS:
        _register_extras()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"journeysim {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except JourneysimError as exc:
        print(f"journeysim {args.verb}: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # (output piped into e.g. `head`, which stopped reading: not an error of ours)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (no second error when Python flushes)
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

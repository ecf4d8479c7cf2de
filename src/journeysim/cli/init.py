"""``journeysim init``: a commented, valid scenario from a brand's weekly CSV, levels solved."""

from __future__ import annotations

from pathlib import Path

__all__ = ['register']


def cmd_init(args) -> int:
    from journeysim.builder.init import scenario_from_csv, write_scenario
    from journeysim.errors import InputError

    out = Path(args.out)
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise InputError("the scenario is a .yaml file", "--out")
    if out.exists():
        raise InputError("exists already; name another file or delete it", "--out")
    if not out.parent.exists():
        raise InputError(f"no directory {out.parent}", "--out")
    raw, notes, unmapped, levels = scenario_from_csv(args.data, args.population, journey=args.journey,
                                                     agents=args.agents, out_dir=out.parent)
    write_scenario(raw, out, notes, unmapped, levels)
    if not args.quiet:
        from journeysim._util.format import number
        from journeysim.cli.tables import format_table

        rows = [[c, number(v["observed"]), number(v["scenario"]), f"{v['ratio']:.2f}x"] for c, v in levels.items()]
        print(format_table(rows, ["KPI", "observed (mean a week)", "scenario (mean a week)", "scenario / observed"],
                           title=f"levels of {out} against {args.data}, before fitting"))
        for n in notes:
            print(f"note: {n}")
        if unmapped:
            print("not used: " + ", ".join(unmapped) + " (map a KPI under observations:, a control under "
                  "demand.controls:, or leave it out)")
        print(f"wrote {out}; next: journeysim check {out}, then journeysim plan {out} --out out/{out.stem}")
    return 0


def register(sub) -> None:
    from journeysim.cli._args import agents_int, population_float

    p = sub.add_parser("init", help="write a scenario from a weekly CSV, its levels solved to the data",
                       description="Reads the CSV's columns (date, spend_<channel>, impressions_<channel>, KPIs, "
                                   "controls) and writes a commented scenario whose twin reproduces the observed "
                                   "KPI levels, with the default priors written out.")
    p.add_argument("--data", required=True, help="the brand's weekly CSV")
    p.add_argument("--population", required=True, type=population_float, help="people in the market")
    p.add_argument("--journey", default="default", help="journey template (default: default)")
    p.add_argument("--agents", type=agents_int, help="agents to simulate (default: population, at most 100,000)")
    p.add_argument("--out", required=True, help="the scenario file to write (.yaml; must not exist)")
    p.add_argument("--quiet", action="store_true", help="no table")
    p.set_defaults(func=cmd_init)

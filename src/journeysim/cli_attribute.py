"""``journeysim attribute``: attribution of a path table (first, last, linear, Markov, Shapley).

Two forms:

* ``journeysim attribute PATHS.csv --out DIR``: attribute an observed path table.
* ``journeysim attribute --scenario SCENARIO --out DIR``: simulate the scenario, log its journeys,
  attribute the simulated paths and set each channel's true incremental conversions beside the
  credits (:func:`journeysim.groundtruth.run_truth`).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["register"]


def _methods(text: str | None):
    from journeysim.attribution import DEFAULT_METHODS
    from journeysim.errors import InputError, did_you_mean

    methods = tuple(m.strip() for m in text.split(",")) if text else DEFAULT_METHODS
    for m in methods:
        if m not in ("first", "last", "linear", "shapley") and not (m.startswith("markov") and m[6:].isdigit()):
            raise InputError(f"unknown method '{m}'" + did_you_mean(m, DEFAULT_METHODS), "--methods")
    return methods


def _print_credit(credit: dict, measure: str) -> None:
    from journeysim.tables import format_table

    chans = list(next(iter(credit.values())).keys())
    rows = [[c] + [credit[m][c] for m in credit] for c in chans]
    print(format_table(rows, ["channel"] + list(credit), title=f"credited {measure} by method"))


def cmd_attribute(args) -> int:
    from journeysim.attribution import run_attribute
    from journeysim.errors import InputError

    methods = _methods(args.methods)
    if (args.paths is None) == (args.scenario is None):
        raise InputError("give either a path table (PATHS.csv) or --scenario SCENARIO, not both or neither",
                         "journeysim attribute")
    if args.scenario is None:
        extra = [f"--{n.replace('_', '-')}" for n in ("agents", "weeks", "replications", "log_agents", "conversions",
                                                      "channels") if getattr(args, n) is not None]
        if extra:
            raise InputError(f"{', '.join(extra)} only apply with --scenario", "journeysim attribute")
        summary = run_attribute(args.paths, Path(args.out), methods=methods, seed=0 if args.seed is None else args.seed,
                                measure=args.measure,
                                n_permutations=args.permutations)
        credit = summary.get("credit", {})
        if not args.quiet and credit:
            _print_credit(credit, args.measure)
            print(f"\nwrote {args.out}/attribution.csv, attribution_*.png, summary.json")
        return 0
    return _cmd_truth(args, methods)


def _cmd_truth(args, methods) -> int:
    from journeysim.errors import InputError
    from journeysim.groundtruth import run_truth
    from journeysim.tables import format_table

    if args.measure != "conversions":
        raise InputError("--measure value is not available with --scenario (the truth counts conversions)",
                         "--measure")
    channels = [c.strip() for c in args.channels.split(",")] if args.channels else None
    progress = None if args.quiet else (lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    summary = run_truth(args.scenario, Path(args.out), methods=methods, replications=args.replications or 3,
                        agents=args.agents, weeks=args.weeks, seed=args.seed,
                        conversions=args.conversions or "purchases", log_agents=args.log_agents,
                        channels=channels, n_permutations=args.permutations, progress=progress)
    if not args.quiet:
        truth = summary["truth"]
        table = truth["table"]
        cols = list(table)
        chans = list(table["truth"])
        rows = [[c] + [table[k][c] for k in cols] for c in chans]
        print(format_table(rows, ["channel"] + cols,
                          title=f"{truth['scenario']}: true incremental {truth['conversions']} (channel off) "
                                f"vs credit, {truth['replications']} replications"))
        mae = truth["mean_absolute_error"]
        print("\nmean absolute error (credit - truth) per method: "
              + ", ".join(f"{m} {v:,.0f}" for m, v in sorted(mae.items(), key=lambda kv: kv[1])))
        print(f"total {truth['total']:,.0f}; sum of channel truths {truth['sum_truth']:,.0f}; "
              f"everything off {truth['all_off']:,.0f}")
        print(f"wrote {args.out}/paths.csv, attribution.csv, attribution_truth.csv, attribution_truth.png, "
              f"summary.json ({truth['seconds']:.0f} s)")
    return 0


def _positive_int(text: str) -> int:
    from journeysim.cli import _positive_int as check

    return check(text)


def register(sub) -> None:
    a = sub.add_parser("attribute", help="attribute conversions of a path table (or of a simulated scenario, "
                                         "with the true incremental conversions) to channels")
    a.add_argument("paths", nargs="?", default=None,
                   help="CSV with path, total_conversions, total_conversion_value, total_null")
    a.add_argument("--scenario", help="simulate this scenario instead, and compare with the truth")
    a.add_argument("--methods", help="comma-separated: first,last,linear,markov1,markov2,markov3,shapley (default: all)")
    a.add_argument("--measure", choices=["conversions", "value"], default="conversions")
    a.add_argument("--permutations", type=int, default=2000, help="Shapley permutations beyond 12 channels")
    a.add_argument("--seed", type=int, default=None,
                   help="seed (Shapley sampling for a path table, default 0; the simulation with --scenario, "
                        "default the scenario's)")
    a.add_argument("--agents", type=_positive_int, help="with --scenario: agents simulated")
    a.add_argument("--weeks", type=_positive_int, help="with --scenario: horizon in weeks")
    a.add_argument("--replications", type=_positive_int, help="with --scenario: replications averaged (default 3)")
    a.add_argument("--log-agents", type=_positive_int,
                   help="with --scenario: agents whose journeys make the path table (default all, up to 10,000; each logs every touch)")
    a.add_argument("--conversions", choices=["purchases", "buyers"],
                   help="with --scenario: count every purchase (default) or people buying at least once")
    a.add_argument("--channels", help="with --scenario: comma-separated channels to switch off (default: all)")
    a.add_argument("--out", default="out/attribution")
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=cmd_attribute)

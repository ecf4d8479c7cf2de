"""``journeysim attribute``: attribution of a path table (first, last, linear, Markov, Shapley)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["register"]


def cmd_attribute(args) -> int:
    from journeysim.attribution import DEFAULT_METHODS, run_attribute
    from journeysim.errors import InputError
    from journeysim.tables import format_table

    methods = tuple(args.methods.split(",")) if args.methods else DEFAULT_METHODS
    for m in methods:
        if m not in ("first", "last", "linear", "shapley") and not (m.startswith("markov") and m[6:].isdigit()):
            from journeysim.errors import did_you_mean

            raise InputError(f"unknown method '{m}'" + did_you_mean(m, DEFAULT_METHODS), "--methods")
    summary = run_attribute(args.paths, Path(args.out), methods=methods, seed=args.seed, measure=args.measure,
                            n_permutations=args.permutations)
    credit = summary.get("credit", {})
    if not args.quiet and credit:
        chans = list(next(iter(credit.values())).keys())
        rows = [[c] + [credit[m][c] for m in credit] for c in chans]
        print(format_table(rows, ["channel"] + list(credit), title=f"credited {args.measure} by method"))
        print(f"\nwrote {args.out}/attribution.csv, attribution_*.png, summary.json")
    return 0


def register(sub) -> None:
    a = sub.add_parser("attribute", help="attribute conversions of a path table to channels")
    a.add_argument("paths", help="CSV with path, total_conversions, total_conversion_value, total_null")
    a.add_argument("--methods", help="comma-separated: first,last,linear,markov1,markov2,markov3,shapley (default: all)")
    a.add_argument("--measure", choices=["conversions", "value"], default="conversions")
    a.add_argument("--permutations", type=int, default=2000, help="Shapley permutations beyond 12 channels")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", default="out/attribution")
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=cmd_attribute)

"""``journeysim attribute``: attribution of a path table (first, last, linear, Markov, Shapley).

Two forms:

* ``journeysim attribute PATHS.csv --out DIR``: attribute an observed path table.
* ``journeysim attribute --scenario SCENARIO --out DIR``: simulate the scenario, log its journeys,
  attribute the simulated paths and set each channel's true incremental conversions beside the
  credits (:func:`journeysim.cli.attribute.run_truth`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeysim._util.files import atomic_path
from journeysim.errors import InputError, did_you_mean
from journeysim.io.pathtable import (
    read_path_table,
)
from journeysim.model.scenario import Scenario
from journeysim.paths.attribution import DEFAULT_METHODS, compute_methods, parse_methods
from journeysim.paths.groundtruth import (
    Conversions,
    check_positive,
    compare_with_attribution,
    incremental_truth,
    truth_errors,
)
from journeysim.paths.markov import MarkovResult
from journeysim.paths.pathdata import Measure, check_measure, prepare_paths
from journeysim.plots.attribution import plot_truth_comparison

__all__ = ['run_attribute', 'run_truth', 'register']


# --------------------------------------------------------------------------------------------
# command-line entry


def _to_dict(series: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in series.items()}


def run_attribute(
    paths_csv: str | Path,
    out_dir: str | Path,
    methods: str | Iterable[str] = DEFAULT_METHODS,
    seed: int | None = 0,
    *,
    measure: Measure = "conversions",
    max_exact: int = 12,
    n_permutations: int = 2000,
    plots: bool = True,
    path_sep: str | None = None,
) -> dict[str, Any]:
    """Read a path table, attribute it, and write the results to a directory.

    This is what ``journeysim attribute PATHS.csv --out DIR`` runs.

    Parameters
    ----------
    paths_csv
        Path-table CSV (see :func:`journeysim.io.pathtable.read_path_table`).
    out_dir
        Output directory, created if needed.
    methods
        Attribution methods (see :func:`attribute`).
    seed
        Seed of the Shapley sampling (used only beyond ``max_exact`` channels).
    measure, max_exact, n_permutations
        See :func:`attribute`.
    plots
        Whether to draw the PNG charts.
    path_sep
        Separator between touchpoints (see :func:`~journeysim.io.pathtable.read_path_table`; default: detected).

    Returns
    -------
    dict
        The summary also written to ``summary.json``: input, measure, totals, channels,
        ``credit`` (method -> channel -> credit), ``markov`` details (conversion probability,
        removal effects, number of states), ``shapley`` details (exact or sampled, standard
        errors), ``timings_seconds`` and the names of the written ``files``.

    Notes
    -----
    Writes, each atomically (temporary file then rename), into ``out_dir``:
    ``attribution.csv`` (one row per channel, one column per method),
    ``attribution_<method>.png`` per method, ``attribution_comparison.png``, and last
    ``summary.json``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     csv = pathlib.Path(d) / "paths.csv"
    ...     _ = csv.write_text("path,total_conversions,total_null\\na > b,1,1\\nb,1,1\\n")
    ...     summary = run_attribute(csv, pathlib.Path(d) / "out", methods=["last"], plots=False)
    ...     sorted(p.name for p in (pathlib.Path(d) / "out").iterdir())
    ['attribution.csv', 'summary.json']
    >>> summary["credit"]["last"]
    {'a': 0.0, 'b': 2.0}
    """
    import json

    from journeysim._util.files import save_figure, staged_dir
    from journeysim._util.version import VERSION as __version__
    from journeysim.plots.attribution import plot_comparison, plot_credit

    check_measure(measure)
    names = parse_methods(methods)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", where=str(out))
    started = time.perf_counter()
    table = read_path_table(paths_csv, path_sep=path_sep)
    read_seconds = time.perf_counter() - started
    t0 = time.perf_counter()
    data = prepare_paths(table)
    prepare_seconds = time.perf_counter() - t0
    frame, details, timings = compute_methods(
        data, names, measure=measure, max_exact=max_exact, n_permutations=n_permutations, seed=seed
    )
    final = out
    with staged_dir(final) as out:  # (all outputs or none; `out` is the staging directory inside)
        files: dict[str, Any] = {"table": "attribution.csv", "summary": "summary.json", "plots": []}
        with atomic_path(out / "attribution.csv") as tmp:
            frame.to_csv(tmp, lineterminator="\n")

        t0 = time.perf_counter()
        shapley = details.get("shapley")
        if plots:
            label = "conversions credited" if measure == "conversions" else "conversion value credited"
            for name in names:
                errors = shapley.standard_errors if name == "shapley" and not shapley.exact else None
                fig = plot_credit(frame[name], errors=errors, title=f"Attribution: {name}", xlabel=label)
                file = f"attribution_{name}.png"
                save_figure(fig, out / file)
                files["plots"].append(file)
            save_figure(plot_comparison(frame, xlabel=label), out / "attribution_comparison.png")
            files["plots"].append("attribution_comparison.png")
        plot_seconds = time.perf_counter() - t0

        summary: dict[str, Any] = {
            "journeysim_version": __version__,
            "input": str(paths_csv),
            "measure": measure,
            "n_paths": data.n_paths,
            "n_channels": int(data.channels.size),
            "channels": [str(c) for c in data.channels],
            "totals": {
                "conversions": float(data.conversions.sum()),
                "conversion_value": float(data.value.sum()),
                "null": float(data.null.sum()),
                "journeys": float(data.conversions.sum() + data.null.sum()),
            },
            "methods": names,
            "credit": {name: _to_dict(frame[name]) for name in names},
            "markov": {
                name: {
                    "order": res.order,
                    "conversion_probability": res.conversion_probability,
                    "removal_effects": _to_dict(res.removal_effects),
                    "n_states": res.n_states,
                }
                for name, res in details.items()
                if isinstance(res, MarkovResult)
            },
            "timings_seconds": {
                "read": read_seconds,
                "prepare": prepare_seconds,
                **timings,
                "plots": plot_seconds,
            },
            "files": files,
        }
        if shapley is not None:
            summary["shapley"] = {
                "exact": shapley.exact,
                "max_exact": max_exact,
                "n_permutations": shapley.n_permutations,
                "seed": seed if seed is None or isinstance(seed, int) else repr(seed),
                "standard_errors": _to_dict(shapley.standard_errors),
            }
        summary["timings_seconds"]["total"] = time.perf_counter() - started
        with atomic_path(out / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary




# --------------------------------------------------------------------------------------------
# files


def _truth_records(table: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for name in table.columns:
        out[str(name)] = {str(c): (float(v) if np.isfinite(v) else None) for c, v in table[name].items()}
    return out


def run_truth(
    scenario: Scenario | str | Path,
    out_dir: str | Path,
    *,
    methods: str | Iterable[str] = DEFAULT_METHODS,
    replications: int = 3,
    agents: int | None = None,
    weeks: int | None = None,
    seed: int | None = None,
    conversions: Conversions = "purchases",
    log_agents: int | None = None,
    channels: Sequence[str] | None = None,
    n_permutations: int = 2000,
    plots: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Simulate a scenario, attribute its paths, set the truth beside them, and write the files.

    This is what ``journeysim attribute --scenario SCENARIO --out DIR`` runs.

    Writes into ``out_dir`` (all files or none: they are written into a staging directory first): ``paths.csv`` (the simulated path table,
    scaled to the market), what :func:`journeysim.cli.attribute.run_attribute` writes for it
    (``attribution.csv``, ``attribution_*.png``), ``attribution_truth.csv`` (the table of
    :func:`compare_with_attribution`), ``truth_replications.csv`` (conversions per replication
    and variant), ``attribution_truth.png``, and ``summary.json`` with a ``truth`` section.

    Returns
    -------
    dict
        The summary written to ``summary.json``.
    """
    from journeysim._util.files import save_figure, staged_dir, write_json, write_text
    from journeysim.io.pathtable import write_path_table
    from journeysim.model.scenario import load_scenario

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if weeks is not None:
        scenario = scenario.replace(weeks=check_positive(weeks, "weeks"))
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", str(out))
    truth = incremental_truth(scenario, channels=channels, replications=replications, agents=agents, seed=seed,
                              conversions=conversions, log_agents=log_agents, progress=progress)
    with staged_dir(out) as stage:  # (all outputs or none: a failure part-way leaves nothing)
        paths_file = write_path_table(truth.paths, stage / "paths.csv")
        summary = run_attribute(paths_file, stage, methods=methods, seed=0, n_permutations=n_permutations, plots=plots)
        summary["input"] = str(out / "paths.csv")  # (where it will be, not the staging directory)
        credit = pd.DataFrame(summary["credit"])
        credit.index.name = "channel"
        table = compare_with_attribution(truth, attribution=credit)
        write_text(table.to_csv(lineterminator="\n"), stage / "attribution_truth.csv")
        reps = pd.DataFrame({"all on": truth.total.values}, index=pd.Index(truth.total.replication.values,
                                                                           name="replication"))
        for c in truth.without.channel.values:
            reps[f"{c} off"] = truth.without.sel(channel=c).values
        if truth.all_off is not None:
            reps["everything off"] = truth.all_off.values
        write_text(reps.to_csv(lineterminator="\n"), stage / "truth_replications.csv")
        files = dict(summary.get("files", {}))
        files.update({"paths": "paths.csv", "truth_table": "attribution_truth.csv",
                      "truth_replications": "truth_replications.csv"})
        if plots:
            fig = plot_truth_comparison(table, title=f"Attribution vs ground truth: {scenario.name}")
            save_figure(fig, stage / "attribution_truth.png")
            files["plots"] = list(files.get("plots", [])) + ["attribution_truth.png"]
        errors = truth_errors(table)
        known = table.dropna(subset=["truth"])
        summary["files"] = files
        summary["truth"] = {
            **truth.info,
            "definition": ("every purchase within the horizon" if conversions == "purchases"
                           else "people buying at least once within the horizon") + ", in people of the market",
            "total": table.attrs["total"],
            "all_off": table.attrs["all_off"],
            "sum_truth": table.attrs["sum_truth"],
            "table": _truth_records(table),
            "error": _truth_records(errors),
            "mean_absolute_error": {m: float(errors[m].abs().mean()) for m in errors.columns},
            "relative_error": {m: {c: (float(errors.loc[c, m] / known.loc[c, "truth"])
                                       if known.loc[c, "truth"] != 0 else None) for c in errors.index}
                               for m in errors.columns},
        }
        write_json(summary, stage / "summary.json")
    return summary




def _methods(text: str | None):
    from journeysim.errors import InputError
    from journeysim.paths.attribution import DEFAULT_METHODS

    methods = tuple(m.strip() for m in text.split(",")) if text else DEFAULT_METHODS
    for m in methods:
        if m not in ("first", "last", "linear", "shapley") and not (m.startswith("markov") and m[6:].isdigit()):
            raise InputError(f"unknown method '{m}'" + did_you_mean(m, DEFAULT_METHODS), "--methods")
    return methods


def _print_credit(credit: dict, measure: str) -> None:
    from journeysim.cli.tables import format_table

    chans = list(next(iter(credit.values())).keys())
    rows = [[c] + [credit[m][c] for m in credit] for c in chans]
    print(format_table(rows, ["channel"] + list(credit), title=f"credited {measure} by method"))


def cmd_attribute(args) -> int:
    from journeysim.cli._args import check_out
    from journeysim.errors import InputError

    check_out(args.out)
    methods = _methods(args.methods)
    if args.sep is not None and args.paths is None:
        raise InputError("--sep applies to a path table (PATHS.csv), not to --scenario", "journeysim attribute")
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
                                n_permutations=args.permutations, path_sep=args.sep)
        credit = summary.get("credit", {})
        if not args.quiet and credit:
            _print_credit(credit, args.measure)
            print(f"\nwrote {args.out}/attribution.csv, attribution_*.png, summary.json")
        return 0
    return _cmd_truth(args, methods)


def _cmd_truth(args, methods) -> int:
    from journeysim.cli.tables import format_table
    from journeysim.errors import InputError

    if args.measure != "conversions":
        raise InputError("--measure value is not available with --scenario (the truth counts conversions)",
                         "--measure")
    from journeysim.cli._args import check_memory

    if args.agents:
        check_memory(args.agents, "--agents")
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
    from journeysim.cli._args import positive_int as check

    return check(text)


def _agents_int(text: str) -> int:
    from journeysim.cli._args import agents_int

    return agents_int(text)


def _weeks_int(text: str) -> int:
    from journeysim.cli._args import weeks_int

    return weeks_int(text)


def _non_negative_int(text: str) -> int:
    from journeysim.cli._args import non_negative_int as check

    return check(text)


def register(sub) -> None:
    a = sub.add_parser("attribute", help="attribute conversions of a path table (or of a simulated scenario, "
                                         "with the true incremental conversions) to channels")
    a.add_argument("paths", nargs="?", default=None,
                   help="CSV with path, total_conversions, total_conversion_value, total_null")
    a.add_argument("--scenario", help="simulate this scenario instead, and compare with the truth")
    a.add_argument("--methods", help="comma-separated: first,last,linear,markov1,markov2,markov3,shapley (default: all)")
    a.add_argument("--measure", choices=["conversions", "value"], default="conversions")
    a.add_argument("--sep", metavar="SEP", help="separator between touchpoints in the path column: '>', '->', '|' or "
                                                 "',' (default: detected; a file mixing them is refused)")
    a.add_argument("--permutations", type=_positive_int, default=2000, help="Shapley permutations beyond 12 channels")
    a.add_argument("--seed", type=_non_negative_int, default=None,
                   help="seed (Shapley sampling for a path table, default 0; the simulation with --scenario, "
                        "default the scenario's)")
    a.add_argument("--agents", type=_agents_int, help="with --scenario: agents simulated")
    a.add_argument("--weeks", type=_weeks_int, help="with --scenario: horizon in weeks")
    a.add_argument("--replications", type=_positive_int, help="with --scenario: replications averaged (default 3)")
    a.add_argument("--log-agents", type=_positive_int,
                   help="with --scenario: agents whose journeys make the path table (default all, up to 10,000; each logs every touch)")
    a.add_argument("--conversions", choices=["purchases", "buyers"],
                   help="with --scenario: count every purchase (default) or people buying at least once")
    a.add_argument("--channels", help="with --scenario: comma-separated channels to switch off (default: all)")
    a.add_argument("--out", default="out/attribution")
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=cmd_attribute)

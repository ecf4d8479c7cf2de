"""Attribution against ground truth on the retail example (a script, not a test).

Simulates ``scenarios/retail.yaml`` with every channel on (logging the journeys of a sample of
agents), and with each channel (tv, social, search, display, store, word of mouth) switched off
in turn, under common random numbers (:class:`journeysim.engine.crn.CRNSimulation`), over a few
replications. The path table of the full runs is attributed with every method, and each
method's credit is set beside the channel's true incremental purchases.

Writes ``experiments/results/attribution_truth.json`` (settings, the table, errors, timings) and
``experiments/results/attribution_truth.png``.

Usage::

    python experiments/attribution_truth.py                  # 200,000 agents, 104 weeks, 3 replications (~2 min)
    python experiments/attribution_truth.py --quick          # 20,000 agents, 26 weeks, 2 replications
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from pathlib import Path

import numpy as np

from journeysim._util.files import save_figure, write_json
from journeysim.model.scenario import load_scenario
from journeysim.paths.attribution import DEFAULT_METHODS, attribute
from journeysim.paths.groundtruth import compare_with_attribution, incremental_truth
from journeysim.plots.attribution import plot_truth_comparison

HERE = Path(__file__).resolve().parent
SCENARIO = HERE.parent / "scenarios" / "retail.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=None, help="default: the scenario's (200,000)")
    parser.add_argument("--weeks", type=int, default=None, help="default: the scenario's (104)")
    parser.add_argument("--replications", type=int, default=3)
    parser.add_argument("--log-agents", type=int, default=10_000)
    parser.add_argument("--conversions", choices=["purchases", "buyers"], default="purchases")
    parser.add_argument("--quick", action="store_true", help="20,000 agents, 26 weeks, 2 replications")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if args.quick:
        args.agents, args.weeks, args.replications = args.agents or 20_000, args.weeks or 26, 2
        args.log_agents = min(args.log_agents, args.agents)

    sc = load_scenario(SCENARIO, agents=args.agents, weeks=args.weeks)
    st = sc.structure
    print(f"{sc.name}: {st.agents:,} agents ({st.weight:g} people each), {sc.weeks} weeks, "
          f"{args.replications} replications, {args.log_agents:,} agents logged", flush=True)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    truth = incremental_truth(sc, replications=args.replications, log_agents=args.log_agents,
                              conversions=args.conversions, progress=lambda m: print(f"  {m}", flush=True))
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    credits = attribute(truth.paths, DEFAULT_METHODS, seed=0)
    t_attr = time.perf_counter() - t0
    table = compare_with_attribution(truth, attribution=credits)

    methods = list(credits.columns)
    known = table.dropna(subset=["truth"])
    errors = known[methods].sub(known["truth"], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = known[methods].div(known["truth"], axis=0)
    mae = errors.abs().mean().sort_values()

    print()
    print(table.round(0).to_string())
    print("\ncredit / truth:")
    print(ratio.round(2).to_string())
    print("\nmean absolute error per method: " + ", ".join(f"{m} {v:,.0f}" for m, v in mae.items()))
    print(f"total {table.attrs['total']:,.0f}; sum of channel truths {table.attrs['sum_truth']:,.0f}; "
          f"everything off {table.attrs['all_off']:,.0f}")
    print(f"simulation {t_sim:.0f} s, attribution {t_attr:.1f} s; path table: {len(truth.paths):,} distinct paths")

    def col(frame, name):
        return {str(c): (float(v) if np.isfinite(v) else None) for c, v in frame[name].items()}

    result = {
        "experiment": "attribution_truth",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python experiments/attribution_truth.py" + (" --quick" if args.quick else ""),
        "scenario": str(SCENARIO.relative_to(HERE.parent)),
        "settings": {k: v for k, v in truth.info.items() if k != "seconds"},
        "definition": "conversions = every purchase within the horizon, in people of the market; truth = "
                      "mean over replications of (purchases with everything on) - (purchases with the channel "
                      "off: zero spend, zero owned volume, or zero recommendation rate), common random numbers",
        "n_distinct_paths": len(truth.paths),
        "path_journeys": float(truth.paths[["total_conversions", "total_null"]].to_numpy().sum()),
        "total": table.attrs["total"],
        "sum_truth": table.attrs["sum_truth"],
        "all_off": table.attrs["all_off"],
        "table": {name: col(table, name) for name in table.columns},
        "credit_minus_truth": {m: col(errors, m) for m in methods},
        "credit_over_truth": {m: col(ratio, m) for m in methods},
        "mean_absolute_error": {m: float(v) for m, v in mae.items()},
        "per_replication": {"all_on": truth.total.values.tolist(),
                            **{f"{c}_off": truth.without.sel(channel=c).values.tolist()
                               for c in truth.without.channel.values},
                            "everything_off": truth.all_off.values.tolist() if truth.all_off is not None else None},
        "seconds": {"simulation": t_sim, "attribution": t_attr},
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg())},
    }
    suffix = "_quick" if args.quick else ""
    write_json(result, args.out / f"attribution_truth{suffix}.json")
    fig = plot_truth_comparison(table, title=f"Attribution vs ground truth: {sc.name}, {st.agents:,} agents, "
                                             f"{sc.weeks} weeks, {args.replications} replications")
    save_figure(fig, args.out / f"attribution_truth{suffix}.png")
    print(f"wrote {args.out}/attribution_truth{suffix}.json and .png")


if __name__ == "__main__":
    main()

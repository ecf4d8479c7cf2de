"""Regenerate the example notebooks (``python notebooks/build.py``), written without outputs.

Each notebook's first code cell holds its size parameter (``SIZE``, tagged ``parameters``);
``tests/test_notebooks.py`` replaces it with ``SIZE = "small"`` to run every notebook cheaply.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

#: Second code cell of every notebook: find the repository whether the kernel runs in
#: ``notebooks/`` (Jupyter's default) or at the repository root (the tests).
SETUP = '''\
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

import journeysim as js
from journeysim import calibrate
from journeysim import optimize

ROOT = Path.cwd() if (Path.cwd() / "scenarios").is_dir() else Path.cwd().parent
SCENARIO = ROOT / "scenarios" / "shop.yaml"
pd.set_option("display.width", 140, "display.max_columns", 12)'''


def params(text: str):
    cell = new_code_cell(text)
    cell.metadata["tags"] = ["parameters"]
    return cell


def notebook(cells) -> nbformat.NotebookNode:
    out = []
    for c in cells:
        if isinstance(c, str):
            out.append(new_markdown_cell(c.strip("\n")))
        else:
            out.append(c)
    for i, c in enumerate(out):
        c.id = f"cell-{i:02d}"  # stable ids: regenerating changes nothing
    nb = new_notebook(cells=out)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def code(text: str):
    return new_code_cell(text.strip("\n"))


NOTEBOOKS: dict[str, list] = {}

NOTEBOOKS["01_quickstart.ipynb"] = [
    """
# 1. Quick start: simulate a customer journey

`scenarios/shop.yaml` describes a regional online shop: a three-stage journey
(*unaware → interested → customer*), two paid channels that build interest (display, social),
one that converts (search) and an owned newsletter. Here we load it, run the agent engine and
look at what comes out.
""",
    params('SIZE = "default"  # "small": a quick check with few agents'),
    code(SETUP + '''

AGENTS = 2_000 if SIZE == "small" else 20_000'''),
    """
## Load the scenario
`load_scenario` validates the file (a mistake gives an `InputError` naming the key) and compiles
it. Market settings such as the number of simulated agents can be overridden; each agent stands
for `population / agents` people.
""",
    code('''
sc = js.load_scenario(SCENARIO, agents=AGENTS)
print(sc.name, "|", sc.weeks, "weeks from", sc.start, "| channels:", sc.channels, "| personas:", sc.personas)'''),
    """
## Simulate
`simulate` runs the SimPy agent engine and returns an `xarray.Dataset` of weekly totals.
The same seed always gives the same numbers.
""",
    code('''
ds = js.simulate(sc)
ds'''),
    """
## Stage sizes
People in each stage at the end of every week (summed over personas).
""",
    code('''
stages = ds.stage_size.sum("persona").to_pandas()
stages.iloc[[0, 12, 25, -1]].round(0)'''),
    code('''
from journeysim.plots.simulation import plot_channels, plot_flows, plot_stages

fig = plot_stages(ds, title="People per stage")'''),
    """
## Flows and purchases
Weekly moves along each transition, and purchases split into first and repeat purchases.
""",
    code('''
flows = ds.flow.sum("persona").to_pandas()
print(flows.sum().round(0))
print("purchases:", int(ds.purchases.sum()), "| revenue:", round(float(ds.revenue.sum())))
fig = plot_flows(ds, title="Weekly flows")'''),
    """
## Channel delivery
Spend, impressions and reach per channel (the newsletter is owned: no spend).
""",
    code('''
delivery = pd.DataFrame({
    "spend": ds.spend.sum("time").to_pandas(),
    "impressions": ds.impressions.sum("time").to_pandas(),
    "mean weekly reach (% of population)": 100 * ds.reach.mean("time").to_pandas() / ds.attrs["population"],
})
delivery.round(1)'''),
    code('''
fig = plot_channels(ds, title="Channel delivery")'''),
    """
Next: `02_calibrate.ipynb` fits the uncertain parameters of this scenario to observed data.
""",
]

NOTEBOOKS["02_calibrate.ipynb"] = [
    """
# 2. Calibrate the scenario on observed data

The shop's weekly spend and two KPIs (site visits, new customers) are in
`scenarios/data/shop_observed.csv`. `calibrate` fits the scenario's uncertain parameters with
PyMC (sampled by nutpie) through the mean-field twin, then we check the fit: convergence
diagnostics and a posterior predictive check.

Sampling takes a minute or two (most of it compiling the model). The default sizes here are a
demonstration; for a real study use the library defaults (`draws=1000, tune=1000, chains=4`).
""",
    params('SIZE = "default"  # "small": a quick (unconverged) check'),
    code(SETUP + '''

if SIZE == "small":
    DRAWS, TUNE, CHAINS = 50, 50, 1
else:
    DRAWS, TUNE, CHAINS = 200, 200, 2'''),
    """
## Scenario and observed data
`read_observed` checks the CSV against the scenario (dates, spend columns, the KPI columns named
in the scenario's `observations`).
""",
    code('''
sc = js.load_scenario(SCENARIO)
data = js.read_observed(ROOT / "scenarios" / "data" / "shop_observed.csv", sc)
print(data.weeks, "observed weeks")
for obs in data.observations:
    print(f"{obs.column:14s} measures {obs.measures:14s} likelihood {obs.likelihood}, scale {obs.scale}")
pd.read_csv(ROOT / "scenarios" / "data" / "shop_observed.csv").head()'''),
    """
## Priors
The uncertain parameters and their priors come from the scenario's `priors:` section
(`build_space` resolves the names; you can also pass `priors={...}` to `calibrate`).
""",
    code('''
from journeysim.inference.priors import build_space

space = build_space(sc)
pd.DataFrame({"prior": [str(p) for p in space.priors], "kind": space.kinds}, index=space.names)'''),
    """
## Fit
`calibrate` warns (`JourneysimWarning`) when the chains did not converge; we record the warning
and print the status instead. The sizes here are too small for a reliable fit: expect
"not converged" (r-hat a little above 1.01, few effective draws); the library defaults converge.
""",
    code('''
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", js.JourneysimWarning)
    fit = calibrate(sc, data, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=1)
for w in caught:
    if issubclass(w.category, js.JourneysimWarning):
        print("warning:", w.message)
print("converged:", fit.converged)'''),
    """
## Diagnostics
Posterior mean, sd, interval, effective sample sizes and r-hat per parameter. Look for
r-hat ≤ 1.01 and bulk ESS of a few hundred before trusting a fit.
""",
    code('''
fit.diagnostics'''),
    """
## Posterior predictive check
For each posterior draw: the expected KPI and a noisy replicate. About 90% of the observed points
should fall inside the 90% band of the replicates.
""",
    code('''
from journeysim.plots.fit import plot_ppc
from journeysim.inference.checks import ppc_coverage

ppc = js.posterior_predictive(sc, fit, data, max_draws=100)
print("share of observed weeks inside the 90% band:", ppc_coverage(ppc))
fig = plot_ppc(ppc)'''),
    """
A fit can be saved with `fit.save("fit_dir")` and read back with `js.load_fit("fit_dir", sc)`;
notebook 3 uses such a fit to compare media plans.
""",
]

NOTEBOOKS["03_plan_budget.ipynb"] = [
    """
# 3. Plan a budget: forecast, compare, optimise

Given a fitted scenario, `forecast` runs media plans forward from the end of the observed
history for every posterior draw; `compare` gives each plan's incremental effect against the
baseline (the average spend of the last 13 observed weeks) and the probability that it is better.

**About the fit.** In a real study you use the fit of notebook 2 (`calibrate(...)` or
`js.load_fit(...)`). To keep this notebook fast and self-contained it uses `js.known_fit`: posterior
draws spread (10%) around the scenario's own parameters — the values the example data were made
from. Set `USE_KNOWN_FIT = False` to calibrate here instead.
""",
    params('SIZE = "default"  # "small": fewer draws'),
    code(SETUP + '''

DRAWS = 50 if SIZE == "small" else 200
USE_KNOWN_FIT = True
HORIZON = 26'''),
    code('''
sc = js.load_scenario(SCENARIO)
data = js.read_observed(ROOT / "scenarios" / "data" / "shop_observed.csv", sc)
if USE_KNOWN_FIT:
    fit = js.known_fit(sc, draws=DRAWS, spread=0.1)
else:
    fit = calibrate(sc, data, draws=1000, tune=1000, chains=4, seed=1)'''),
    """
## Forecast the example plans
The scenario lists example plan files (relative to the scenario's folder). Each one changes the
baseline: move money between channels, scale a channel, pause one for some weeks.
""",
    code('''
plans = [sc.base_dir / p for p in sc.spec.plans]
for p in plans:
    print(p.name, "|", p.read_text().splitlines()[0])
hist = js.prepare(sc, fit, data, max_draws=DRAWS)   # posterior draws + the state at the end of the history
fc = js.forecast(hist, plans, horizon=HORIZON)
summary = js.summarize_metrics(fc)
summary[summary.metric.isin(["purchases", "revenue", "spend", "cpa"])].round(1)'''),
    code('''
from journeysim.plots.planning import plot_allocation, plot_comparison, plot_forecast, plot_response

fig = plot_forecast(fc, title="Weekly forecast per plan")'''),
    """
## Incremental effect and P(better)
`mean` and the 90% interval of each plan's difference to the baseline (over horizon + tail
weeks), and `prob_better`: the share of posterior draws in which the plan beats the baseline
(for `cpa` and `spend`, lower is better).
""",
    code('''
cmp = js.compare(fc)
table = pd.concat({k: cmp[k].to_pandas() for k in ("mean", "lower", "upper", "prob_better")}, axis=1)
table = table.swaplevel(axis=1).sort_index(axis=1, level=0)
table.drop(index="baseline")[["purchases", "revenue", "cpa"]].round(2)'''),
    code('''
fig = plot_comparison(cmp, title="Plans vs baseline")'''),
    """
## Optimise a budget
The best split of the same total budget across paid channels for purchases over the horizon
(`bounds={"search": (lo, hi)}` limits a channel's total; `periods=` allows flighting).
""",
    code('''
budget = float(fc.spend.sel(plan="baseline").sum())
opt = optimize(hist, budget=budget, horizon=HORIZON, search_draws=min(DRAWS, 50), max_draws=DRAWS)
print(f"budget {budget:,.0f} over {HORIZON} weeks")
print(pd.DataFrame({"baseline weekly": opt.baseline_weekly.to_pandas(),
                    "optimum total": opt.allocation_total.to_pandas()}).round(0))
pd.concat({k: opt[k].to_pandas()["purchases"] for k in ("mean", "lower", "upper", "prob_better")}, axis=1).round(2)'''),
    code('''
fig = plot_allocation(opt, title="Baseline vs optimal weekly spend")'''),
    """
## Response curves
Outcome vs total spend when one channel's baseline spend is scaled (0×…3×), the others kept.
Where a curve flattens, more money in that channel buys little.
""",
    code('''
rc = js.response_curves(hist, horizon=HORIZON, draws=min(DRAWS, 50))
print(rc.purchases_mean.to_pandas().round(0))
fig = plot_response(rc, title="Purchases vs spend per channel")'''),
]

NOTEBOOKS["04_extend.ipynb"] = [
    """
# 4. Extend the model: a custom process and a custom persona

The agent engine is a SimPy calendar. `Simulation(...).add_process(fn)` runs `fn(sim)` (a
generator) alongside the built-in processes. It may wait on `sim.env` (time in days; `sim.week`,
`sim.day`) and change, while the run goes on:

* `sim.hazard_multiplier[persona, edge]`: scales each transition's base rate,
* `sim.effect_multiplier[source, persona]`: scales a channel's effect (sources: channels, then word of mouth),
* `sim.touch_multiplier[source]`: scales a channel's delivered touches,
* `sim.move(agents, stage)`: forces agents into a stage.

Here: a **stock-out** in weeks 10–12 during which nobody can become a customer, and a new
**persona**.
""",
    params('SIZE = "default"  # "small": fewer agents'),
    code(SETUP + '''
import yaml

AGENTS = 3_000 if SIZE == "small" else 20_000
SEED = 1'''),
    """
## A stock-out process
From the start of week 10 to the end of week 12 the shop cannot sell: the base rate of
*interested → customer* and the effect of the converting channels (search, newsletter) drop to
zero. Then everything returns to normal.
""",
    code('''
sc = js.load_scenario(SCENARIO, agents=AGENTS)


def stock_out(sim, first_week=10, last_week=12):
    edge = sim.edge("interested->customer")
    converting = [sim.scenario.channels.index(c) for c in ("search", "newsletter")]
    yield sim.env.timeout(first_week * 7)          # wait until the stock-out starts
    sim.hazard_multiplier[:, edge] = 0.0
    sim.effect_multiplier[converting, :] = 0.0
    yield sim.env.timeout((last_week - first_week + 1) * 7)
    sim.hazard_multiplier[:, edge] = 1.0
    sim.effect_multiplier[converting, :] = 1.0


base = js.Simulation(sc, seed=SEED).run()
out = js.Simulation(sc, seed=SEED).add_process(stock_out).run()'''),
    code('''
weekly = pd.DataFrame({"normal": base.purchases_new.sum("persona").to_pandas(),
                       "stock-out": out.purchases_new.sum("persona").to_pandas()})
print(weekly.iloc[7:17].round(0))
for name, d in (("normal", base), ("stock-out", out)):
    print(f"{name:10s} new customers {float(d.purchases_new.sum()):>10,.0f}  revenue {float(d.revenue.sum()):>12,.0f}")
ax = weekly.plot(title="New customers per week", ylabel="people")
ax.axvspan(weekly.index[10], weekly.index[12] + pd.Timedelta(days=6), color="grey", alpha=0.2);'''),
    """
Interested people pile up during the stock-out and part of them buy once it ends (the rebound);
the rest lose interest meanwhile.

## A custom persona
Scenarios can also be built from a dict. We read the YAML, split the population into two
personas and add *bargain hunters*: smaller baskets, twice the base purchase rate, social ads
work better on them and display worse. (A dict has no folder, so the plan CSV path is made
absolute.)
""",
    code('''
raw = yaml.safe_load(SCENARIO.read_text())
raw["plan"]["csv"] = str(SCENARIO.parent / raw["plan"]["csv"])
raw.pop("data", None)
raw.pop("plans", None)
raw["market"]["agents"] = AGENTS
raw["personas"] = {
    "everyone": {"share": 0.8, "value": 80.0},
    "bargain_hunters": {"share": 0.2, "value": 45.0,
                        "rates": {"interested->customer": 0.02},
                        "affinity": {"social": 1.8, "display": 0.5}},
}
sc2 = js.load_scenario(raw)
print(sc2.personas)
two = js.simulate(sc2, seed=SEED)'''),
    code('''
by_persona = pd.DataFrame({
    "purchases": two.purchases.sum("time").to_pandas(),
    "revenue": two.revenue.sum("time").to_pandas(),
    "customers at the end": two.stage_size.isel(time=-1).sel(stage="customer").to_pandas(),
})
by_persona.loc["total"] = by_persona.sum()
by_persona.loc["one persona (before)"] = [float(base.purchases.sum()), float(base.revenue.sum()),
                                          float(base.stage_size.isel(time=-1).sel(stage="customer").sum())]
by_persona.round(0)'''),
    """
Both extensions combine: `js.Simulation(sc2, seed=SEED).add_process(stock_out).run()`.
""",
    code('''
both = js.Simulation(sc2, seed=SEED).add_process(stock_out).run()
print("two personas, revenue lost to the stock-out:",
      f"{float(two.revenue.sum() - both.revenue.sum()):,.0f}")'''),
]

NOTEBOOKS["05_attribution.ipynb"] = [
    """
# 5. Attribution against the truth

Touch-based attribution (first/last touch, linear, Markov removal effects, Shapley) divides
conversions among the channels on each customer's path. A simulation knows what each channel
*really* caused: switch it off (with common random numbers) and count the conversions lost.
Here we compare the two.
""",
    params('SIZE = "default"  # "small": fewer agents and replications'),
    code(SETUP + '''

if SIZE == "small":
    AGENTS, LOG_AGENTS, REPLICATIONS = 3_000, 1_500, 1
else:
    AGENTS, LOG_AGENTS, REPLICATIONS = 10_000, 5_000, 2'''),
    """
## Simulate with an event log
`log_agents=N` records the individual journeys of `N` sampled agents: touches, stage moves and
purchases.
""",
    code('''
sc = js.load_scenario(SCENARIO, agents=AGENTS)
sim = js.Simulation(sc, log_agents=LOG_AGENTS)
ds = sim.run()
events = sim.events()
print(events.kind.value_counts())
events.head()'''),
    """
## Path table
One path per agent: its touches up to its first purchase (a converting path) or all its touches
(a null path). Identical paths are merged and counted.
""",
    code('''
paths = js.paths_from_events(events)
print(len(paths), "distinct paths")
paths.sort_values("total_conversions", ascending=False).head(8)'''),
    """
## Attribute
""",
    code('''
from journeysim.plots.attribution import plot_comparison

credits = js.attribute(paths)
print(credits.round(1))
fig = plot_comparison(credits, title="Conversions credited, by method")'''),
    """
## The truth: incremental conversions
`incremental_truth` runs the scenario with every channel on, then with each channel switched off,
under common random numbers, and counts the purchases lost. `compare_with_attribution`
attributes the same runs' paths (scaled to the whole population) and puts the credits beside the
truth.
""",
    code('''
from journeysim.plots.attribution import plot_truth_comparison

truth = js.incremental_truth(sc, replications=REPLICATIONS, agents=AGENTS, log_agents=LOG_AGENTS)
print(truth.summary().round(0))
table = js.compare_with_attribution(truth)
table.round(0)'''),
    code('''
fig = plot_truth_comparison(table, title="Attribution vs true incremental purchases")'''),
    """
Touch-based methods credit channels that are on the path, not the purchases they cause: a
channel that reaches people who would have bought anyway gets credit it does not deserve.
""",
]


def build(out_dir: Path = HERE) -> list[Path]:
    """Write every notebook (no outputs) to ``out_dir``; return their paths."""
    written = []
    for name, cells in NOTEBOOKS.items():
        nb = notebook(cells)
        nbformat.validate(nb)
        path = out_dir / name
        tmp = path.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        tmp.replace(path)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in build():
        print("wrote", p)

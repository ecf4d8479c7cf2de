"""journeysim: agent-based customer-journey simulation calibrated with Bayesian models.

The public surface, in the order a study uses it::

    sc = load_scenario("scenarios/shop.yaml")          # validated scenario
    ds = simulate(sc)                                   # agent engine -> xarray.Dataset
    tw = run_twin(sc)                                   # mean-field twin, same layout
    data = read_observed("scenarios/data/shop_observed.csv", sc)
    fit = calibrate(sc, data)                           # journeysim.calibrate.calibrate
    fc = forecast(sc, fit, data, ["scenarios/plans/shop_social_up.yaml"])
    cmp = compare(fc)                                   # incremental effect vs the baseline
    best = optimize(sc, fit, data, budget=250_000, horizon=26)  # journeysim.optimize.optimize

``calibrate``, ``optimize`` and ``sweep`` share their names with their modules: import them from
there (``from journeysim.calibrate import calibrate``).
"""

from journeysim.errors import ConvergenceError, InputError, JourneysimError, JourneysimWarning

__version__ = "0.1.0"

_LAZY = {
    "load_scenario": "journeysim.scenario",
    "Scenario": "journeysim.scenario",
    "simulate": "journeysim.engine",
    "Simulation": "journeysim.engine",
    "run_twin": "journeysim.twin",
    "Twin": "journeysim.twin",
    "Plan": "journeysim.plan",
    "read_observed": "journeysim.data",
    "load_fit": "journeysim.calibrate",
    "posterior_predictive": "journeysim.calibrate",
    "Fit": "journeysim.calibrate",
    "load_plan": "journeysim.planfile",
    "baseline_plan": "journeysim.planfile",
    "forecast": "journeysim.planning",
    "compare": "journeysim.planning",
    "known_fit": "journeysim.planning",
    "summarize_metrics": "journeysim.planning",
    "response_curves": "journeysim.optimize",
    "attribute": "journeysim.attribution",
    "read_path_table": "journeysim.paths",
    "write_path_table": "journeysim.paths",
    "incremental_truth": "journeysim.groundtruth",
    "compare_with_attribution": "journeysim.groundtruth",
    "paths_from_events": "journeysim.paths",
    "get_executor": "journeysim.executor",
}

__all__ = ["ConvergenceError", "InputError", "JourneysimError", "JourneysimWarning", "__version__", *_LAZY]


def __getattr__(name):
    """Import the public functions on first use (``import journeysim`` stays fast)."""
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'journeysim' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)

"""journeysim: agent-based customer-journey simulation calibrated with Bayesian models.

The public surface, in the order a study uses it::

    sc = load_scenario("scenarios/shop.yaml")          # validated scenario
    ds = simulate(sc)                                   # agent engine -> xarray.Dataset
    tw = run_twin(sc)                                   # mean-field twin, same layout
    data = read_observed("scenarios/data/shop_observed.csv", sc)
    fit = calibrate(sc, data)                           # Bayesian calibration (PyMC)
    fc = forecast(sc, fit, data, ["scenarios/plans/shop_social_up.yaml"])
    cmp = compare(fc)                                   # incremental effect vs the baseline
    best = optimize(sc, fit, data, budget=250_000, horizon=26)  # best split of a budget

Every name above is importable from the top (``from journeysim import calibrate, optimize, sweep``)
and is imported on first use. The subpackages, lowest layer first: ``model`` (what a scenario is),
``io`` (file formats), ``engine`` (the SimPy agents), ``twin`` (the mean-field twin), ``scale``
(executors and sweeps), ``inference`` (PyMC calibration; the only home of PyMC and PyTensor),
``planning`` (forecast, compare, optimize), ``paths`` (attribution), ``plots`` and ``cli``.
"""

from journeysim._util.version import VERSION as __version__
from journeysim.errors import (
    ConvergenceError,
    InputError,
    JourneysimError,
    JourneysimWarning,
)

_LAZY = {
    "load_scenario": "journeysim.model.scenario",
    "Scenario": "journeysim.model.scenario",
    "simulate": "journeysim.engine.simulation",
    "Simulation": "journeysim.engine.simulation",
    "run_twin": "journeysim.twin.run",
    "Twin": "journeysim.twin.run",
    "Plan": "journeysim.model.plan",
    "read_observed": "journeysim.io.observed",
    "load_fit": "journeysim.inference.posterior",
    "posterior_predictive": "journeysim.inference.checks",
    "Fit": "journeysim.inference.posterior",
    "load_plan": "journeysim.io.planfile",
    "baseline_plan": "journeysim.io.planfile",
    "forecast": "journeysim.planning.forecasting",
    "compare": "journeysim.planning.comparison",
    "known_fit": "journeysim.inference.posterior",
    "summarize_metrics": "journeysim.planning.comparison",
    "response_curves": "journeysim.planning.optimization",
    "attribute": "journeysim.paths.attribution",
    "read_path_table": "journeysim.io.pathtable",
    "write_path_table": "journeysim.io.pathtable",
    "incremental_truth": "journeysim.paths.groundtruth",
    "compare_with_attribution": "journeysim.paths.groundtruth",
    "paths_from_events": "journeysim.paths.from_events",
    "get_executor": "journeysim.scale.executor",
    "calibrate": "journeysim.inference.sampling",
    "optimize": "journeysim.planning.optimization",
    "sweep": "journeysim.scale.sweeps",
    "History": "journeysim.planning.history",
    "prepare": "journeysim.planning.history",
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

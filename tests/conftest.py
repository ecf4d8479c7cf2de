"""Shared fixtures: the repository root, small versions of the example scenarios, an output dir.

The example scenarios are loaded with :func:`journeysim.model.scenario.load_scenario` and the
``agents=`` / ``weeks=`` overrides, at sizes that keep each test to a second or two.

``scenarios/retail.yaml`` schedules events up to week 104, and ``load_scenario(..., weeks=W)``
currently refuses any ``W`` that cuts an event (the horizon check runs on the shortened file:
see ``tests/model/test_scenario.py::test_shorter_horizon_keeps_events_inside_it``). Until that is
fixed, :func:`shortened` writes a copy of a scenario file with the events clipped to the new
horizon and the plan CSV path made absolute, and loads that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from journeysim.model.scenario import Scenario, load_scenario

#: Root of the repository (the directory holding ``pyproject.toml``).
REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"
EXAMPLES = ("retail", "subscription", "funnel3")


def shortened(name: str, directory: Path, *, weeks: int, agents: int) -> Scenario:
    """Example scenario ``name`` over ``weeks`` weeks with ``agents`` agents (events clipped to the horizon)."""
    return load_scenario(SCENARIOS / f"{name}.yaml", weeks=weeks, agents=agents)


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def small_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("scenarios")


@pytest.fixture(scope="session")
def funnel3_small() -> Scenario:
    """``scenarios/funnel3.yaml`` with 4,000 agents over its 26 weeks (about 0.1 s a run)."""
    return load_scenario(SCENARIOS / "funnel3.yaml", agents=4_000)


@pytest.fixture(scope="session")
def subscription_small() -> Scenario:
    """``scenarios/subscription.yaml`` with 20,000 agents over its 78 weeks."""
    return load_scenario(SCENARIOS / "subscription.yaml", agents=20_000)


@pytest.fixture(scope="session")
def retail_small(small_dir) -> Scenario:
    """``scenarios/retail.yaml`` with 20,000 agents over 26 weeks (events clipped, see :func:`shortened`)."""
    return shortened("retail", small_dir, weeks=26, agents=20_000)


@pytest.fixture
def out_dir(tmp_path) -> Path:
    """A fresh output directory (not yet created, as a user would name one)."""
    return tmp_path / "out"


@pytest.fixture(scope="session")
def shop_fit(tmp_path_factory):
    """``journeysim fit`` of ``scenarios/shop.yaml`` with very few draws, in a fresh process (about 35 s).

    Not converged (planning commands need ``--allow-unconverged``); stderr goes to a file (not a
    terminal). Returns ``(root, fit_dir, completed_process, stderr_text)``.
    """
    root = tmp_path_factory.mktemp("shop_fit")
    out = root / "fit"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
               XDG_CACHE_HOME=str(root / "cache"))  # (a fresh cache: ArviZ shows its daily banner, if let through)
    with open(root / "fit.log", "w") as log:
        proc = subprocess.run([sys.executable, "-m", "journeysim.cli.main", "fit", str(SCENARIOS / "shop.yaml"),
                               "--draws", "30", "--tune", "30", "--chains", "2", "--seed", "1", "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=log, text=True, env=env, timeout=600)
    return root, out, proc, (root / "fit.log").read_text()


@pytest.fixture(scope="session")
def shop_backtest(tmp_path_factory) -> Path:
    """``journeysim backtest`` of ``scenarios/shop.yaml``: one fold of 4 weeks, very few draws (about 25 s)."""
    from journeysim.cli.main import main

    out = tmp_path_factory.mktemp("shop_backtest") / "backtest"
    assert main(["backtest", str(SCENARIOS / "shop.yaml"), "--folds", "1", "--horizon", "4", "--draws", "20",
                 "--tune", "20", "--chains", "2", "--out", str(out), "--quiet"]) == 0
    return out


# ---------------------------------------------------------------------------------------------
# agreement of the twin with the agents (tolerance: tests/twin/test_twin.py's docstring)

REL = 0.03
N_SE = 4.0


def agent_totals(sc, R):
    """Per replication: cumulative entries per stage ``(R, S)`` and total purchases ``(R,)``."""
    entries, purchases = [], []
    from journeysim.engine.simulation import simulate

    for r in range(R):
        ds = simulate(sc, replication=r)
        entries.append(ds.entries.sum(("time", "persona")).values)
        purchases.append(float(ds.purchases.sum()))
    return np.array(entries), np.array(purchases)


def check_agreement(sc, R):
    from journeysim.twin.run import run_twin

    entries, purchases = agent_totals(sc, R)
    tw = run_twin(sc)
    t_entries = tw.entries.sum(("time", "persona")).values
    t_purchases = float(tw.purchases.sum())
    se_e = entries.std(axis=0, ddof=1) / np.sqrt(R)
    se_p = purchases.std(ddof=1) / np.sqrt(R)
    gap = np.abs(entries.mean(axis=0) - t_entries)
    allowed = REL * t_entries + N_SE * se_e
    stages = sc.structure.stages
    bad = {s: (round(float(g)), round(float(a))) for s, g, a in zip(stages, gap, allowed) if g > a}
    assert not bad, f"entries: stage -> (|agents - twin|, allowed): {bad}"
    assert abs(purchases.mean() - t_purchases) <= REL * t_purchases + N_SE * se_p
    # the test has power: the Monte Carlo allowance is small beside the 3% budget
    assert N_SE * se_p < REL * t_purchases
    assert t_purchases > 0 and (t_entries > 0).all()


# ---------------------------------------------------------------------------------------------
# the checked boundary (tests/io/test_fuzz.py, tests/model/test_fuzz_scenario.py)

def check_refused(argv, capsys, *words) -> str:
    """Assert ``journeysim ARGV`` exits 2 with one line holding ``words`` and no traceback; return the line."""
    from journeysim.cli.main import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    line = err.strip()
    assert "\n" not in line, err
    for w in words:
        assert w in line, (w, line)
    return line


"""Sweeps: grid checks, what each axis does, resuming, and bit-identical results on every executor.

The executor tests run one sweep of agent runs (8 tasks) with two local worker processes, in
this process, on a real Dask ``LocalCluster`` of two worker processes, and again on that cluster
while one worker is killed: all four results must be equal bit for bit.
"""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import xarray as xr
from conftest import SCENARIOS

import journeysim.scale.sweeps as sweep_mod
from journeysim.cli.main import main
from journeysim.engine.simulation import Simulation
from journeysim.errors import InputError
from journeysim.model.plan import Plan
from journeysim.model.scenario import load_scenario
from journeysim.scale.grid import read_grid
from journeysim.scale.sweeps import SweepError, summarize_sweep, sweep, weekly_totals
from journeysim.twin.run import run_twin

FUNNEL = SCENARIOS / "funnel3.yaml"
#: 8 agent runs of ~0.1 s each: a spend level shared by 4 replications each.
EXEC_GRID = {"spend.tv": [0.5, 1.5], "replications": 4, "agents": 20_000, "weeks": 13}


def assert_bitwise_equal(a: xr.Dataset, b: xr.Dataset) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for v in a.data_vars:
        assert a[v].dims == b[v].dims
        assert np.array_equal(a[v].values, b[v].values), v
    for c in a.coords:
        assert np.array_equal(a[c].values, b[c].values), c


@pytest.fixture(scope="module")
def retail():
    return load_scenario(SCENARIOS / "retail.yaml")


@pytest.fixture(scope="module")
def reference(retail):
    """The executor sweep computed by two local worker processes."""
    return sweep(retail, EXEC_GRID, executor="local:2")


# ---------------------------------------------------------------------------------------------
# the grid


def test_grid_reads_axes_settings_and_the_example_file(funnel3_small):
    g = read_grid({"engine": "twin", "agents": 100, "spend.display": [0.5, 1], "seed": [3, 1],
                   "word_of_mouth.rate": 0.1, "replications": 2, "description": "x"})
    assert g.dims == ("spend.display", "seed", "replication")
    assert g.shape == (2, 2, 2) and g.size == 8
    assert g.axes[0][1] == (0.5, 1.0) and g.fixed == (("word_of_mouth.rate", 0.1),)
    assert (g.engine, g.agents, g.weeks) == ("twin", 100, None)
    ex = read_grid(SCENARIOS / "retail_sweep.yaml")
    assert ex.dims == ("spend.tv", "word_of_mouth.rate", "replication") and ex.size == 18


@pytest.mark.parametrize("grid, where, message", [
    ({"spnd.display": [1, 2]}, "grid", "unknown axis or setting 'spnd.display' (did you mean 'spend.display'?)"),
    ({"spend.dispaly": [1, 2]}, "grid: spend.dispaly", "unknown channel 'dispaly' (did you mean 'display'?)"),
    ({"spend.email": [1, 2]}, "grid: spend.email", "'email' is an owned channel (volume); it takes no spend"),
    ({"engin": "twin"}, "grid", "(did you mean 'engine'?)"),
    ({"engine": "twins"}, "grid: engine", "unknown engine 'twins' (did you mean 'twin'?)"),
    ({"replications": 0}, "grid: replications", "'0' is not a whole number >= 1"),
    ({"agents": 2.5}, "grid: agents", "is not a whole number"),
    ({"seed": [1, -2]}, "grid: seed", "'-2' is not a whole number >= 0"),
    ({"spend.display": []}, "grid: spend.display", "an empty list"),
    ({"spend.display": [1, "lots"]}, "grid: spend.display", "'lots' is not a finite number"),
    ({"spend.display": [1, 2, 1]}, "grid: spend.display", "the value 1 appears twice"),
    ({"word_of_mouth.rate": [0.1], "wom.rate": 0.2}, "grid", "'wom.rate' is given twice"),
    ({"carryover.display": [0.5, 1.2]}, "grid: carryover.display", "1.2: a carry-over lies in [0, 1)"),
    ({"saturation.display": 0}, "grid: saturation.display", "must be > 0"),
    ({"effect.display.unaware->customer": [0.1]}, "grid: effect.display.unaware->customer", "unaware->customer"),
    ({"rate.interested->custmer": [1, 2]}, "grid: rate.interested->custmer", "custmer"),
    ({"budget": [-1, 1]}, "grid: budget", "-1 is negative: spend multipliers are >= 0"),
])
def test_bad_grids_name_the_key(funnel3_small, grid, where, message):
    with pytest.raises(InputError) as err:
        sweep(funnel3_small, grid, executor="inline", engine="twin")
    assert str(err.value).startswith(where + ":"), str(err.value)
    assert message in str(err.value)


def test_bad_grid_files(tmp_path):
    with pytest.raises(InputError, match="grid file not found"):
        read_grid(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="list.yaml: a grid is a mapping"):
        read_grid(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("spend.tv: [1, 2\n")
    with pytest.raises(InputError, match="bad.yaml: not valid YAML"):
        read_grid(tmp_path / "bad.yaml")


# ---------------------------------------------------------------------------------------------
# what the axes do (twin: deterministic)


def test_axes_change_what_they_name(funnel3_small):
    ds = sweep(funnel3_small, {"spend.display": [0.5, 1.0, 2.0], "rate.interested->customer": [1.0, 1.5]},
               executor="inline", engine="twin")
    assert dict(ds.purchases.sizes) == {"spend.display": 3, "rate.interested->customer": 2, "time": 26}
    spend = ds.spend.sel(channel="display")
    # spend is the plan's spend times the multiplier (relative 1e-15: one float product)
    np.testing.assert_allclose(spend.sel({"spend.display": 2.0}), 2 * spend.sel({"spend.display": 1.0}), rtol=1e-15)
    np.testing.assert_array_equal(spend.sel({"spend.display": 1.0}).isel({"rate.interested->customer": 0}),
                                  funnel3_small.plan.spend[:, 0])
    tot = ds.sum("time")
    assert (tot.impressions.sel(channel="display").diff("spend.display") > 0).all()  # more spend, more impressions
    assert (tot.purchases.diff("rate.interested->customer") > 0).all()  # faster conversion, more purchases
    s = summarize_sweep(ds)
    assert len(s["points"]) == 6 and s["replicates_per_point"] == 1
    assert (s["points"][0]["spend.display"], s["points"][0]["rate.interested->customer"]) == (0.5, 1.0)


def test_word_of_mouth_axis_and_the_unchanged_point(retail):
    sc = retail.replace(weeks=8)
    ds = sweep(sc, {"word_of_mouth.rate": [0.0, 0.04, 0.08], "spend.tv": [1.0, 2.0]}, executor="inline",
               engine="twin")
    ref = ds.referrals.sum("time")
    assert float(abs(ref.sel({"word_of_mouth.rate": 0.0})).max()) == 0.0
    assert (ref.diff("word_of_mouth.rate") > 0).all()  # more recommendations per advocate, more referrals
    # the scenario's own values (rate 0.08, plan x 1) reproduce the plain twin run bit for bit
    base = weekly_totals(run_twin(sc))
    point = ds.sel({"word_of_mouth.rate": 0.08, "spend.tv": 1.0})
    for name, arr in base.items():
        assert np.array_equal(point[name].values, arr), name


def test_fixed_values_and_budget_apply_without_a_dimension(funnel3_small):
    ds = sweep(funnel3_small, {"budget": [1.0, 3.0], "spend.display": 2.0}, executor="inline", engine="twin")
    assert dict(ds.purchases.sizes) == {"budget": 2, "time": 26}
    np.testing.assert_allclose(ds.spend.sel(budget=3.0, channel="display"), 6 * funnel3_small.plan.spend[:, 0],
                               rtol=1e-15)
    assert json.loads(ds.attrs["grid"])["fixed"] == {"spend.display": 2.0}


def test_a_point_is_the_run_of_its_coordinates(funnel3_small):
    """The random streams of a point derive from its seed and replication, nothing else."""
    ds = sweep(funnel3_small, {"spend.display": [1.0, 1.5], "seed": [7, 8], "replications": 2}, executor="inline")
    plan = Plan(funnel3_small.plan.spend * np.array([1.5, 1.0]), funnel3_small.plan.channels)
    direct = weekly_totals(Simulation(funnel3_small, plan=plan, seed=8, replication=1).run())
    point = ds.sel({"spend.display": 1.5, "seed": 8, "replication": 1})
    for name, arr in direct.items():
        assert np.array_equal(point[name].values, arr), name
    # another seed or replication gives other random numbers
    a = ds.purchases.sel({"spend.display": 1.0})
    assert not np.array_equal(a.sel(seed=7, replication=0), a.sel(seed=7, replication=1))
    assert not np.array_equal(a.sel(seed=7, replication=0), a.sel(seed=8, replication=0))


# ---------------------------------------------------------------------------------------------
# store and resume


class Stop(Exception):
    pass


def test_interrupted_sweep_resumes_and_loses_nothing(funnel3_small, tmp_path):
    grid = {"spend.display": [0.5, 1.0], "replications": 4}
    store = tmp_path / "tasks"

    def stop_after_three(done, total):
        if done == 3:
            raise Stop("the lights went out")

    with pytest.raises(SweepError, match=r"the lights went out; 3 of 8 finished runs are kept in .*tasks: run again"):
        sweep(funnel3_small, grid, executor="inline", store=store, progress=stop_after_three)
    assert len(list(store.glob("*.npz"))) == 3
    resumed = sweep(funnel3_small, grid, executor="inline", store=store)
    assert (resumed.attrs["computed"], resumed.attrs["resumed"], resumed.attrs["tasks"]) == (5, 3, 8)
    fresh = sweep(funnel3_small, grid, executor="inline")
    assert_bitwise_equal(resumed, fresh)
    again = sweep(funnel3_small, grid, executor="inline", store=store)
    assert (again.attrs["computed"], again.attrs["resumed"]) == (0, 8)
    # a wider grid reuses the points it shares; another scenario content shares nothing
    wider = sweep(funnel3_small, {"spend.display": [0.5, 1.0, 2.0], "replications": 4}, executor="inline",
                  store=store)
    assert (wider.attrs["computed"], wider.attrs["resumed"]) == (4, 8)
    other = sweep(funnel3_small.replace(seed=99), grid, executor="inline", store=store)
    assert other.attrs["resumed"] == 0
    # an unreadable stored task is computed again
    first = sweep_mod.build_tasks(funnel3_small, read_grid(grid), "agents")[0]
    (store / f"{first.key}.npz").write_bytes(b"not a zip file")
    healed = sweep(funnel3_small, {"spend.display": [0.5, 1.0, 2.0], "replications": 4}, executor="inline",
                   store=store)
    assert healed.attrs["computed"] == 1
    assert not [f for f in os.listdir(store) if f.endswith(".tmp")]


def test_failing_task_names_its_point(funnel3_small, tmp_path, monkeypatch):
    real = sweep_mod.run_task

    def flaky(task):
        if task.spend_multiplier[0] == 2.0 and task.replication == 1:
            raise RuntimeError("boom")
        return real(task)

    monkeypatch.setattr(sweep_mod, "run_task", flaky)
    with pytest.raises(SweepError, match=r"the run at spend.display=2, replication=1 failed: RuntimeError: boom; "
                                         r"3 of 4 finished"):
        sweep(funnel3_small, {"spend.display": [1.0, 2.0], "replications": 2}, executor="inline",
              store=tmp_path / "t")


# ---------------------------------------------------------------------------------------------
# executors: bit-identical results, a worker killed mid-sweep


def test_inline_equals_local_processes(retail, reference):
    assert reference.attrs["executor"] == "LocalExecutor(workers=2)" and reference.attrs["workers"] == 2
    assert dict(reference.purchases.sizes) == {"spend.tv": 2, "replication": 4, "time": 13}
    assert_bitwise_equal(sweep(retail, EXEC_GRID, executor="inline"), reference)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        yield client


def test_dask_equals_local_processes(retail, reference, dask_client, tmp_path):
    ds = sweep(retail, EXEC_GRID, executor=dask_client, store=tmp_path / "tasks")
    assert ds.attrs["executor"] == "DaskExecutor(client=...)" and ds.attrs["workers"] == 2
    assert_bitwise_equal(ds, reference)


def test_worker_killed_mid_sweep_loses_nothing(retail, reference, dask_client, tmp_path):
    killed = []

    def kill_a_busy_worker(done, total):
        if killed:
            return
        pids = dask_client.run(os.getpid)
        busy = {w: keys for w, keys in dask_client.processing().items() if keys}
        assert busy, "no task in flight to lose"
        worker = max(busy, key=lambda w: len(busy[w]))
        os.kill(pids[worker], signal.SIGKILL)
        killed.append((worker, len(busy[worker])))

    store = tmp_path / "tasks"
    ds = sweep(retail, EXEC_GRID, executor=dask_client, store=store, progress=kill_a_busy_worker)
    assert killed and killed[0][1] >= 1  # a worker died with at least one task on it
    assert (ds.attrs["computed"], ds.attrs["tasks"]) == (8, 8)
    assert len(list(store.glob("*.npz"))) == 8
    assert_bitwise_equal(ds, reference)


# ---------------------------------------------------------------------------------------------
# command line


def test_cli_sweep_writes_outputs_and_resumes(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("engine: agents\nagents: 2000\nspend.display: [0.5, 1.5]\nreplications: 2\n")
    out = tmp_path / "out"
    args = ["sweep", str(FUNNEL), "--grid", str(grid), "--out", str(out), "--scheduler", "inline"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "4 runs: 4 computed, 0 taken from" in text and "mean +- sd over 2 runs" in text
    assert {"sweep.nc", "sweep.png", "summary.json", "tasks"} <= set(os.listdir(out))
    assert (out / "sweep.png").read_bytes().startswith(b"\x89PNG")
    s = json.loads((out / "summary.json").read_text())
    with xr.open_dataset(out / "sweep.nc", engine="h5netcdf") as ds:
        ds = ds.load()
    assert dict(ds.purchases.sizes) == {"spend.display": 2, "replication": 2, "time": 26}
    assert s["axes"] == {"spend.display": [0.5, 1.5], "replication": [0, 1]}
    np.testing.assert_allclose(s["points"][1]["purchases"],
                               float(ds.purchases.sel({"spend.display": 1.5}).sum("time").mean()), rtol=1e-12)
    assert main(args + ["--quiet", "--engine", "agents"]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads((out / "summary.json").read_text())["resumed"] == 4


@pytest.mark.parametrize("extra, code, message", [
    (["--workers", "2", "--scheduler", "inline"], 2, "--workers: give --workers (local processes) or --scheduler"),
    (["--scheduler", "lcoal:2"], 2, "--scheduler: unknown executor 'lcoal:2' (did you mean 'local'?)"),
    (["--grid-extra"], None, None),
])
def test_cli_sweep_bad_options(tmp_path, capsys, extra, code, message):
    grid = tmp_path / "grid.yaml"
    grid.write_text("spend.display: [1, 2]\n")
    args = ["sweep", str(FUNNEL), "--grid", str(grid), "--out", str(tmp_path / "o")] + extra
    if code is None:
        with pytest.raises(SystemExit):
            main(args)
        return
    assert main(args) == code
    assert message in capsys.readouterr().err


def test_cli_sweep_bad_grid_key(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("spend.dispaly: [1, 2]\n")
    assert main(["sweep", str(FUNNEL), "--grid", str(grid), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "grid.yaml: spend.dispaly: unknown channel 'dispaly' (did you mean 'display'?)" in capsys.readouterr().err

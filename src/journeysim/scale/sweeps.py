"""Sweeps: a scenario run over a grid of variations, gathered into one labelled dataset.

A grid is a YAML file (or the same content as a mapping). Every key that is not a setting is an
*axis*: a list of values becomes a dimension of the result, a single value changes every run::

    engine: agents              # or twin
    agents: 20_000              # agents per run (default: the scenario's)
    weeks: 52                   # horizon (default: the scenario's)
    spend.tv: [0.5, 1.0, 1.5]   # multipliers of the scenario plan's tv spend, every week
    word_of_mouth.rate: [0.04, 0.08]
    replications: 3             # or seed: [1, 2, 3]

===============================  ==================================================================
axis                             values
===============================  ==================================================================
``spend.<channel>``              multiplier of that channel's spend in the scenario's plan
``budget``                       multiplier of the whole plan (every channel)
``seed``                         seeds of the random streams (whole numbers >= 0)
``replications: N``              (a setting) adds a ``replication`` axis ``0 .. N-1``
``word_of_mouth.rate``           recommendations per recommender per day (alias of ``wom.rate``)
``effect.<channel>.<a->b>``      hazard added per unit of exposure memory
``carryover.<channel>``          daily retention of exposure memory, in ``[0, 1)``
``saturation.<channel>``         weekly frequency at which effectiveness halves, ``> 0``
``rate.<a->b>``                  multiplier of a transition's base hazard (all personas)
``initial.<stage>``              multiplier of a stage's initial share (re-normalised)
===============================  ==================================================================

Parameter names are those of the ``priors:`` section (:mod:`journeysim.model.parameters`).

Each grid point is one task: build the variant, run the engine, reduce the run to weekly totals
(:func:`weekly_totals`). A task's random numbers derive from its ``seed`` and ``replication``
coordinates only (:mod:`journeysim.model.rng`), never from the worker or the order of execution: results
are bit-identical whichever executor runs the sweep, and points that differ only in spend or a
parameter share their random numbers (common random numbers), so their difference is the effect
of the change rather than noise.

With a ``store`` directory, every finished task is written there at once as a small ``.npz`` file
named by a hash of the scenario's content and the task's settings. A sweep that stops (a crash,
Ctrl-C, a lost cluster) keeps what finished; running it again computes only what is missing.

>>> from journeysim.model.scenario import load_scenario
>>> sc = load_scenario({"market": {"population": 1e4, "agents": 500, "weeks": 4},
...                     "channels": {"tv": {"cpm": 5, "effects": {"unaware->aware": 0.01}}},
...                     "plan": {"spend": {"tv": 100}}})
>>> ds = sweep(sc, {"spend.tv": [0.5, 1.0], "replications": 2}, executor="inline")
>>> dict(ds.purchases.sizes)
{'spend.tv': 2, 'replication': 2, 'time': 4}
>>> float(ds.spend.sel({"spend.tv": 0.5}).sum()) / float(ds.spend.sel({"spend.tv": 1.0}).sum())
0.5
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from journeysim.errors import InputError, JourneysimError, did_you_mean
from journeysim.model.parameters import parameter_set
from journeysim.scale.grid import _ALIASES, ENGINES, RANDOM_AXES, Grid, _kind, read_grid

__all__ = ['sweep', 'weekly_totals', 'summarize_sweep', 'scenario_digest', 'SweepError']
#: Bump when the content of a stored task changes meaning (old stored tasks are then recomputed).
_STORE_FORMAT = 1

#: Variables of a task's result: name -> (dims after ``time``, units).
_VARS: dict[str, tuple[tuple[str, ...], str]] = {
    "stage_size": (("stage",), "people"),
    "entries": (("stage",), "people/week"),
    "purchases": ((), "purchases/week"),
    "purchases_new": ((), "purchases/week"),
    "purchases_repeat": ((), "purchases/week"),
    "revenue": ((), "currency/week"),
    "spend": (("channel",), "currency/week"),
    "impressions": (("channel",), "touches/week"),
    "reach": (("channel",), "people/week"),
    "referrals": ((), "recommendations/week"),
}


class SweepError(JourneysimError):
    """A sweep stopped because a task failed (finished tasks stay in the store)."""


# ---------------------------------------------------------------------------------------------
# tasks


@dataclass(frozen=True)
class SweepTask:
    """One grid point, self-contained (sent to a worker): scenario, engine, variant, random streams."""

    scenario: Any
    engine: str
    spend_multiplier: np.ndarray | None  # (C,) or None
    space: Any  # journeysim.model.parameters.ParameterSet or None
    values: tuple[float, ...]
    seed: int
    replication: int
    key: str


def run_task(task: SweepTask) -> dict[str, np.ndarray]:
    """Run one grid point and reduce it to weekly totals (executed on a worker)."""
    from journeysim.model.plan import Plan

    sc = task.scenario
    plan = sc.plan
    if task.spend_multiplier is not None:
        plan = Plan(sc.plan.spend * task.spend_multiplier, sc.plan.channels, "sweep")
    params = sc.params if task.space is None else task.space.to_params(np, task.values, sc.params)
    if task.engine == "agents":
        from journeysim.engine.simulation import Simulation

        ds = Simulation(sc, params=params, plan=plan, seed=task.seed, replication=task.replication).run()
    else:
        from journeysim.twin.run import run_twin

        ds = run_twin(sc, params=params, plan=plan)
    return weekly_totals(ds)


def weekly_totals(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """A run's weekly totals over personas: ``{name: array (time, [stage | channel])}``.

    The variables are those listed in ``_VARS`` (stage sizes and entries per stage; purchases,
    revenue, referrals; spend, impressions and reach per channel).
    """
    out = {}
    for name, (extra, _) in _VARS.items():
        da = ds[name]
        if "persona" in da.dims:
            da = da.sum("persona")
        out[name] = np.ascontiguousarray(da.transpose("time", *extra).values, dtype=np.float64)
    return out


def scenario_digest(scenario) -> str:
    """A hash of everything in a scenario that can change a run (file content, plan, parameters)."""
    h = hashlib.sha256()
    h.update(scenario.spec.model_dump_json().encode())
    h.update(repr(scenario.plan.channels).encode())
    h.update(np.ascontiguousarray(scenario.plan.spend, dtype=np.float64).tobytes())
    for name, v in scenario.params.as_dict().items():
        a = np.ascontiguousarray(np.asarray(v, dtype=np.float64))
        h.update(f"{name}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _resolve_params(grid: Grid, scenario, names: list[str]):
    """The :class:`~journeysim.model.parameters.ParameterSet` placing the grid's parameter values (or None)."""
    if not names:
        return None
    return parameter_set(scenario, [_ALIASES.get(n, n) for n in names], grid.where)


def _check_param_value(name: str, value: float, where: str) -> None:
    kind = _ALIASES.get(name, name).partition(".")[0]
    if kind == "carryover" and not 0 <= value < 1:
        raise InputError(f"{value:g}: a carry-over lies in [0, 1)", f"{where}: {name}")
    if kind == "saturation" and value <= 0:
        raise InputError(f"{value:g}: a saturation frequency must be > 0", f"{where}: {name}")
    if value < 0:
        raise InputError(f"{value:g} is negative", f"{where}: {name}")


def build_tasks(scenario, grid: Grid, engine: str) -> list[SweepTask]:
    """One task per grid point, in C order over the grid's axes (the last axis varies fastest)."""
    st = scenario.structure
    entries = list(grid.fixed) + [(name, None) for name, _ in grid.axes]
    spend_keys, param_keys = [], []
    for name, _ in entries:
        kind = _kind(name)
        if kind == "spend":
            ch = name[len("spend."):]
            if ch not in st.channels:
                raise InputError(f"unknown channel '{ch}'" + did_you_mean(ch, st.channels)
                                 + f"; the scenario's channels are {', '.join(st.channels) or 'none'}",
                                 f"{grid.where}: {name}")
            if st.owned_volume[st.channels.index(ch)] > 0:
                raise InputError(f"'{ch}' is an owned channel (volume); it takes no spend", f"{grid.where}: {name}")
            spend_keys.append(name)
        elif kind == "budget":
            spend_keys.append(name)
        elif kind == "param":
            param_keys.append(name)
    for name, vals in list(grid.fixed) + list(grid.axes):
        for v in vals if isinstance(vals, tuple) else (vals,):
            if name in param_keys:
                _check_param_value(name, v, grid.where)
            elif name in spend_keys and v < 0:
                raise InputError(f"{v:g} is negative: spend multipliers are >= 0", f"{grid.where}: {name}")
    space = _resolve_params(grid, scenario, param_keys)
    digest = scenario_digest(scenario)
    from journeysim._util.version import VERSION as __version__

    fixed = dict(grid.fixed)
    tasks = []
    for idx in np.ndindex(*grid.shape):
        point = dict(fixed)
        point.update({name: vals[i] for (name, vals), i in zip(grid.axes, idx)})
        mult = None
        if spend_keys:
            mult = np.ones(len(st.channels))
            for name in spend_keys:
                if name == "budget":
                    mult = mult * point[name]
                else:
                    mult[st.channels.index(name[len("spend."):])] *= point[name]
        values = tuple(point[n] for n in param_keys)
        seed = int(point.get("seed", scenario.seed))
        rep = int(point.get("replication", 0))
        ident = {"format": _STORE_FORMAT, "journeysim": __version__, "scenario": digest, "engine": engine,
                 "point": {_ALIASES.get(k, k): v for k, v in point.items()}, "seed": seed, "replication": rep}
        key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]
        tasks.append(SweepTask(scenario, engine, mult, space, values, seed, rep, key))
    return tasks


# ---------------------------------------------------------------------------------------------
# the store of finished tasks


class TaskStore:
    """Finished tasks of sweeps, one ``<key>.npz`` per task, written atomically."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def load(self, key: str, like: dict[str, tuple] | None = None) -> dict[str, np.ndarray] | None:
        """The stored result, or ``None`` if absent or unreadable (then it is computed again)."""
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return None
        if like is not None and {k: v.shape for k, v in out.items()} != like:
            return None
        return out

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        from journeysim._util.files import atomic_path

        with atomic_path(self.path(key)) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)


# ---------------------------------------------------------------------------------------------
# running


def _work_seconds(scenario, engine: str, n_tasks: int) -> float:
    """Rough single-core seconds of ``n_tasks`` runs (to keep tiny sweeps in this process)."""
    days = scenario.weeks * 7
    if engine == "agents":
        return n_tasks * (scenario.structure.agents * days * 1.1e-7 + 0.01)
    return n_tasks * days * 6e-4


def _point_text(grid: Grid, flat: int) -> str:
    idx = np.unravel_index(flat, grid.shape) if grid.axes else ()
    return ", ".join(f"{name}={vals[i]:g}" for (name, vals), i in zip(grid.axes, idx)) or "the single point"


def sweep(scenario, grid, *, executor=None, store: str | Path | None = None, progress=False,
          engine: str | None = None, agents: int | None = None, weeks: int | None = None) -> xr.Dataset:
    """Run a scenario over a grid of variations; return one dataset with a dimension per axis.

    Parameters
    ----------
    scenario
        A :class:`~journeysim.Scenario`, or a scenario file.
    grid
        A grid file, a mapping with the same content, or a :class:`Grid` (see the module docstring).
    executor
        Where tasks run: ``None`` (the default executor; a small sweep runs in this process), a
        spec such as ``"local:4"`` or ``"tcp://host:8786"``, or an executor
        (:mod:`journeysim.scale.executor`).
    store
        Directory keeping each finished task; a rerun takes finished tasks from it. ``None``: keep
        nothing.
    progress
        ``True`` for a progress bar, or a function called as ``f(done, total)`` after each task.
    engine, agents, weeks
        Override the grid's settings.

    Returns
    -------
    xarray.Dataset
        Weekly totals over personas (``stage_size``, ``entries``, ``purchases``, ``purchases_new``,
        ``purchases_repeat``, ``revenue``, ``spend``, ``impressions``, ``reach``, ``referrals``)
        with the grid's axes as leading dimensions, then ``time`` (and ``stage`` or ``channel``).
        Attributes record the grid, the executor, and how many tasks were computed or taken
        from the store (``computed``, ``resumed``).

    Raises
    ------
    InputError
        A bad grid (the message names the key), or a bad scenario.
    SweepError
        A task failed; finished tasks are kept in ``store``.
    """
    from journeysim.model.scenario import Scenario, load_scenario
    from journeysim.scale.base import ProgressBar
    from journeysim.scale.executor import get_executor

    t0 = time.perf_counter()
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    g = read_grid(grid, sc)
    engine = engine or g.engine
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}'" + did_you_mean(str(engine), ENGINES), "engine")
    agents = agents if agents is not None else g.agents
    weeks = weeks if weeks is not None else g.weeks
    if agents is not None or weeks is not None:
        sc = sc.replace(agents=agents, weeks=weeks)
    tasks = build_tasks(sc, g, engine)
    n = len(tasks)
    W, S, C = sc.weeks, len(sc.structure.stages), len(sc.channels)
    shapes = {name: (W,) + tuple({"stage": S, "channel": C}[d] for d in extra) for name, (extra, _) in _VARS.items()}

    results: list[dict | None] = [None] * n
    box = TaskStore(store) if store is not None else None
    if box is not None:
        for i, t in enumerate(tasks):
            results[i] = box.load(t.key, shapes)
    todo = [i for i in range(n) if results[i] is None]
    resumed = n - len(todo)
    ex = get_executor(executor, work_seconds=_work_seconds(sc, engine, len(todo)))
    workers = ex.workers if todo else 0  # connects to a cluster now, before any work
    bar = ProgressBar(progress, n, f"sweep {sc.name}", initial=resumed)
    try:
        for j, r in ex.imap(run_task, [tasks[i] for i in todo]):
            i = todo[j]
            results[i] = r
            if box is not None:
                box.save(tasks[i].key, r)
            bar.update()
    except InputError:
        raise
    except Exception as exc:
        j = getattr(exc, "task_index", None)
        what = f"the run at {_point_text(g, todo[j])}" if j is not None and j < len(todo) else "the sweep"
        kept = sum(r is not None for r in results)
        msg = f"{what} failed: {type(exc).__name__}: {exc}"
        if box is not None:
            msg += f"; {kept} of {n} finished runs are kept in {box.directory}: run again to resume"
        raise SweepError(msg) from exc
    finally:
        bar.close()
    ds = _combine(results, sc, g, engine)
    ds.attrs.update({
        "computed": len(todo), "resumed": resumed, "tasks": n, "seconds": time.perf_counter() - t0,
        "executor": repr(ex), "workers": workers,
    })
    return ds


def _combine(results: list[dict], sc, g: Grid, engine: str) -> xr.Dataset:
    """Stack the tasks' weekly totals into one labelled dataset."""
    st = sc.structure
    time_ = pd.date_range(pd.Timestamp(sc.start), periods=sc.weeks, freq="7D")
    coords = {name: np.asarray(vals, dtype=np.int64 if name in RANDOM_AXES else np.float64) for name, vals in g.axes}
    coords.update({"time": time_, "stage": list(st.stages), "channel": list(st.channels)})
    data = {}
    for name, (extra, units) in _VARS.items():
        arr = np.stack([r[name] for r in results]).reshape(g.shape + results[0][name].shape)
        data[name] = xr.Variable(g.dims + ("time",) + extra, arr, attrs={"units": units})
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({
        "scenario": sc.name, "engine": engine, "agents": int(st.agents), "weeks": int(sc.weeks),
        "population": float(st.population), "seed": int(sc.seed),
        "grid": json.dumps({"axes": {k: list(v) for k, v in g.axes}, "fixed": dict(g.fixed)}),
        "created_by": "journeysim sweep",
    })
    return ds


# ---------------------------------------------------------------------------------------------
# summary


def summarize_sweep(ds: xr.Dataset) -> dict[str, Any]:
    """Totals over the horizon at each grid point, as plain numbers (for ``summary.json``).

    Points differing only in ``seed``/``replication`` are pooled: each point reports the mean and
    standard deviation (``ddof=1``) over them.
    """
    dims = [d for d in ds.referrals.dims if d != "time"]
    rand = [d for d in dims if d in RANDOM_AXES]
    other = [d for d in dims if d not in RANDOM_AXES]
    spend = ds.spend.sum(("time", "channel"))
    tot = {
        "purchases": ds.purchases.sum("time"),
        "new_customers": ds.purchases_new.sum("time"),
        "revenue": ds.revenue.sum("time"),
        "referrals": ds.referrals.sum("time"),
        "spend": spend,
        "roas": (ds.revenue.sum("time") / spend).where(spend > 0),
    }
    n_rand = int(np.prod([ds.sizes[d] for d in rand])) if rand else 1
    points = []
    for idx in np.ndindex(*[ds.sizes[d] for d in other]):
        sel = {d: i for d, i in zip(other, idx)}
        row: dict[str, Any] = {d: ds[d].values[i].item() for d, i in sel.items()}
        for k, da in tot.items():
            v = np.asarray(da.isel(sel).values, dtype=float).ravel()
            row[k] = float(np.mean(v)) if np.all(np.isfinite(v)) else None
            if n_rand > 1 and k != "spend":
                row[f"{k}_sd"] = float(np.std(v, ddof=1)) if np.all(np.isfinite(v)) else None
        points.append(row)
    attrs = ds.attrs
    return {
        "scenario": attrs.get("scenario"), "engine": attrs.get("engine"), "agents": attrs.get("agents"),
        "weeks": attrs.get("weeks"),
        "axes": {d: ds[d].values.tolist() for d in dims},
        "replicates_per_point": n_rand,
        "tasks": attrs.get("tasks"), "computed": attrs.get("computed"), "resumed": attrs.get("resumed"),
        "seconds": attrs.get("seconds"), "executor": attrs.get("executor"), "workers": attrs.get("workers"),
        "points": points,
    }

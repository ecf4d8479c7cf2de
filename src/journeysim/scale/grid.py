"""A sweep's grid file: settings and axes (seeds, replications, parameters, plans), checked before any run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from journeysim.errors import InputError, did_you_mean
from journeysim.model.parameters import KINDS

__all__ = ['Grid', 'read_grid', 'RANDOM_AXES']



#: Keys of a grid that are settings, not axes.
SETTINGS = ("engine", "agents", "weeks", "replications", "description")
#: Axes whose values only change random numbers (averaged over in summaries).
RANDOM_AXES = ("seed", "replication")
ENGINES = ("agents", "twin")
_ALIASES = {"word_of_mouth.rate": "wom.rate"}


# ---------------------------------------------------------------------------------------------
# the grid


@dataclass(frozen=True)
class Grid:
    """A checked grid: axes (name, values) in order, single-valued settings, engine and sizes."""

    axes: tuple[tuple[str, tuple], ...]
    fixed: tuple[tuple[str, float], ...] = ()
    engine: str = "agents"
    agents: int | None = None
    weeks: int | None = None
    where: str = "grid"

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for _, v in self.axes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def _kind(key: str) -> str | None:
    if key == "seed":
        return "seed"
    if key == "budget":
        return "budget"
    if key.startswith("spend."):
        return "spend"
    if key in _ALIASES or key.partition(".")[0] in KINDS:
        return "param"
    return None


def _candidates(scenario) -> list[str]:
    out = list(SETTINGS) + ["seed", "budget", "word_of_mouth.rate", "wom.rate"]
    if scenario is not None:
        st = scenario.structure
        sources = st.channels + ("word_of_mouth",)
        out += [f"spend.{c}" for c in st.channels]
        out += [f"carryover.{s}" for s in sources] + [f"saturation.{c}" for c in st.channels]
        out += [f"rate.{e}" for e in st.edges] + [f"initial.{s}" for s in st.stages]
        out += [f"effect.{s}.{e}" for s in sources for e in st.edges]
    else:
        out += ["spend.<channel>", "effect.<channel>.<a->b>", "rate.<a->b>", "carryover.<channel>"]
    return out


def _whole(value, key: str, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"'{value}' is not a whole number >= {minimum}", f"{where}: {key}")
    return int(value)


def _number(value, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise InputError(f"'{value}' is not a finite number", f"{where}: {key}")
    return float(value)


def read_grid(source: str | Path | Mapping[str, Any] | Grid, scenario=None) -> Grid:
    """Read and check a grid (a YAML file or a mapping); see the module docstring for its keys.

    ``scenario`` (optional here, required to run) sharpens the did-you-mean hints for misspelt keys.
    """
    if isinstance(source, Grid):
        return source
    if isinstance(source, Mapping):
        raw, where = dict(source), "grid"
    else:
        import yaml

        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise InputError("grid file not found", where)
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML: {exc}", where) from None
        if raw is None:
            raise InputError("the grid file is empty", where)
        if not isinstance(raw, Mapping):
            raise InputError("a grid is a mapping of axes (spend.tv: [0.5, 1, 1.5]) and settings", where)
    axes: list[tuple[str, tuple]] = []
    fixed: list[tuple[str, float]] = []
    engine = "agents"
    sizes: dict[str, int] = {}
    for key, value in raw.items():
        key = str(key)
        loc = f"{where}: {key}"
        if key == "description":
            continue
        if key == "engine":
            if value not in ENGINES:
                raise InputError(f"unknown engine '{value}'" + did_you_mean(str(value), ENGINES)
                                 + f"; use {' or '.join(ENGINES)}", loc)
            engine = value
            continue
        if key in ("agents", "weeks", "replications"):
            sizes[key] = _whole(value, key, where, 1)
            continue
        kind = _kind(key)
        if kind is None:
            raise InputError(f"unknown axis or setting '{key}'" + did_you_mean(key, _candidates(scenario))
                             + "; axes are seed, budget, spend.<channel> and parameters (effect.<channel>.<a->b>,"
                               " rate.<a->b>, carryover.<channel>, saturation.<channel>, word_of_mouth.rate,"
                               " initial.<stage>)", where)
        if isinstance(value, (list, tuple)):
            if not value:
                raise InputError("an empty list: give at least one value", loc)
            if kind == "seed":
                vals = tuple(_whole(v, key, where, 0) for v in value)
            else:
                vals = tuple(_number(v, key, where) for v in value)
            dup = [v for v in vals if vals.count(v) > 1]
            if dup:
                raise InputError(f"the value {dup[0]:g} appears twice", loc)
            axes.append((key, vals))
        else:
            fixed.append((key, _whole(value, key, where, 0) if kind == "seed" else _number(value, key, where)))
    if "replications" in sizes:
        axes.append(("replication", tuple(range(sizes["replications"]))))
    names = [_ALIASES.get(k, k) for k, _ in axes + fixed]
    for n in names:
        if names.count(n) > 1:
            raise InputError(f"'{n}' is given twice (word_of_mouth.rate and wom.rate are the same)", where)
    return Grid(tuple(axes), tuple(fixed), engine, sizes.get("agents"), sizes.get("weeks"), where)

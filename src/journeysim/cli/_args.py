"""Argument checks and inputs shared by the command-line verbs.

Every flag is checked by its ``type=`` when argparse reads it (exit 2 with ``argument --x: ...``),
and every verb checks its output location (:func:`check_out`) before it reads or computes anything.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from journeysim.errors import InputError

#: Upper bound of week counts on the command line (``--weeks``, ``--horizon``, ``--tail``): 20 years.
MAX_WEEKS = 1040
#: Upper bound of posterior draws and sampler steps on the command line.
MAX_DRAWS = 1_000_000
#: Bytes the agent engine needs per agent, with headroom (state ~34 B, plus per-run work arrays).
BYTES_PER_AGENT = 96


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None


def positive_int(text: str) -> int:
    v = _int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v} must be > 0")
    return v


def non_negative_int(text: str) -> int:
    v = _int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} must be >= 0")
    return v


def bounded_int(low: int, high: int):
    """An argparse type: a whole number within ``low..high``."""
    def check(text: str) -> int:
        v = _int(text)
        if v < low:
            raise argparse.ArgumentTypeError(f"{v} must be > 0" if low == 1 else f"{v} must be >= {low}")
        if v > high:
            raise argparse.ArgumentTypeError(f"{v:,} is too large (at most {high:,})")
        return v
    check.__name__ = "whole number"
    return check


#: ``--draws``, ``--tune`` (0 allowed), ``--chains``, ``--weeks``/``--horizon``, ``--tail`` (0 allowed).
draws_int = bounded_int(1, MAX_DRAWS)
steps_int = bounded_int(0, MAX_DRAWS)
chains_int = bounded_int(1, 64)
weeks_int = bounded_int(1, MAX_WEEKS)
tail_int = bounded_int(0, MAX_WEEKS)


def agents_int(text: str) -> int:
    """``--agents``: a positive number of agents, at most the schema's bound."""
    from journeysim.model.schema import MAX_AGENTS

    return bounded_int(1, MAX_AGENTS)(text)


def log_agents_int(text: str) -> int:
    """``--log-agents``: a positive number of agents, or -1 for all."""
    v = _int(text)
    if v == 0 or v < -1:
        raise argparse.ArgumentTypeError(f"{v}: give a number of agents > 0, or -1 for all")
    return v


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return v


def positive_float(text: str) -> float:
    v = _float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v:g} must be > 0")
    return v


def change_or_none(text: str) -> float | None:
    """``--max-change``: a number >= 0 (0.3: within 30% of the current mix), or ``none`` (no limit)."""
    if text.strip().lower() in ("none", "off"):
        return None
    v = _float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v:g} must be >= 0, or none")
    return v


def population_float(text: str) -> float:
    """``--population``: a positive number of people (``5_000_000`` and ``5,000,000`` read as five million)."""
    v = _float(text.replace(",", ""))
    if not 0 < v < 1e11:
        raise argparse.ArgumentTypeError(f"{text}: the population must be a positive number of people")
    return v


def probability(text: str) -> float:
    """A number strictly between 0 and 1 (``--target-accept``)."""
    v = _float(text)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"{v:g} must be between 0 and 1 (exclusive)")
    return v


def check_out(out: str | os.PathLike[str], flag: str = "--out") -> Path:
    """Refuse an output directory that cannot be one, before any work: an existing file, a path
    under a file, or a place this process cannot write. Nothing is created here."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", f"{flag} {out}")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(f"'{probe}' is a file, so no directory can be made under it", f"{flag} {out}")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"cannot write in '{probe}' (permission denied)", f"{flag} {out}")
    return out


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(agents: int, where: str, *, runs: int = 1) -> None:
    """Refuse an agent run whose estimated memory exceeds what the machine has available, before allocating."""
    need = BYTES_PER_AGENT * int(agents) * max(1, runs)
    have = _available_memory()
    if have is not None and need > 0.8 * have:
        raise InputError(f"{agents:,} agents need about {need / 1e9:.1f} GB; this machine has {have / 1e9:.1f} GB "
                         f"available: use fewer agents (each carries population/agents people)", where)



def load_inputs(args):
    """Scenario, observed data and (with ``--posterior``) the fit of a planning verb, all checked."""
    from journeysim.inference.posterior import load_fit
    from journeysim.io.observed import read_observed
    from journeysim.model.scenario import load_scenario

    sc = load_scenario(args.scenario)
    data_path = args.data or (str(sc.base_dir / sc.spec.data) if sc.spec.data else None)
    if data_path is None:
        raise InputError("no observed data: pass --data CSV or set data: in the scenario", str(args.scenario))
    data = read_observed(data_path, sc)
    fit = load_fit(args.posterior, sc) if getattr(args, "posterior", None) else None
    return sc, data, fit


def executor_from_args(args):
    return getattr(args, "scheduler", None) or (f"local:{args.workers}" if getattr(args, "workers", None) else None)

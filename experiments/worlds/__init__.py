"""Ground-truth weekly market worlds written independently of journeysim (plain numpy).

``WORLDS`` maps a name to its class; ``make(name, seed)`` builds one.  Each world exposes
``history()``, ``baseline_plan()``, ``plans()``, ``expected(plan)``, ``truth(plan)``,
``response(spend)``, ``true_optimum(budget)`` and ``write(directory)``; see :mod:`.base`.
CLI: ``python -m experiments.worlds OUTDIR --seeds 0 1 2 3 4`` (from the repository root).
"""

from __future__ import annotations

from .base import CHANNELS, KPIS, World
from .brand_equity import BrandEquity
from .latent_demand import LatentDemand
from .segments import Segments

WORLDS: dict[str, type[World]] = {
    "brand_equity": BrandEquity,
    "segments": Segments,
    "latent_demand": LatentDemand,
}


def make(name: str, seed: int = 0, **sizes) -> World:
    """World ``name`` built from ``seed`` (sizes: n_history, n_plan, n_tail, population, ...)."""
    try:
        cls = WORLDS[name]
    except KeyError:
        raise KeyError(f"unknown world {name!r}; choose from {sorted(WORLDS)}") from None
    return cls(seed, **sizes)


__all__ = ["CHANNELS", "KPIS", "WORLDS", "World", "make"]

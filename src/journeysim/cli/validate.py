"""``journeysim validate``: the whole scenario file checked, with the files it names.

Beyond the scenario's own keys (:func:`journeysim.model.scenario.load_scenario`) this checks what
the other commands would otherwise find out late: the priors (parsed and resolved against the
journey and channels), the observations (against the journey's stages), the data file (read and
checked against the scenario; ``--data CSV`` checks another one), the example plan files, and
whether the agents fit in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from journeysim.errors import InputError

__all__ = ['check_scenario', 'check_plan_plausible', 'PLAUSIBLE_FACTOR', 'VALIDATE_HORIZON']

#: Horizon (weeks) plan files are checked over by ``validate`` (the forecast commands' default).
VALIDATE_HORIZON = 26
#: A plan spending more than this many times the largest observed weekly spend (all channels
#: together) in one week on one channel is refused as implausible (a typo in the number, a total
#: given as a weekly value).
PLAUSIBLE_FACTOR = 1000.0


def check_plan_plausible(plan, data, where: str) -> None:
    """Refuse a plan whose weekly spend is far beyond anything in the observed data."""
    if data is None:
        return
    observed = data.plan.spend.sum(axis=1).max() if data.plan.spend.size else 0.0
    if observed <= 0:
        return
    limit = PLAUSIBLE_FACTOR * observed
    spend = plan.spend
    if np.any(spend > limit):
        w, c = np.argwhere(spend > limit)[0]
        raise InputError(f"spend {spend[w, c]:,.4g} on '{plan.channels[c]}' in week {w + 1} is more than "
                         f"{PLAUSIBLE_FACTOR:,.0f}x the largest observed weekly spend of all channels together "
                         f"({observed:,.4g}); check the number (weekly spend, not a total)", where)


def check_scenario(path: str | Path, *, data: str | Path | None = None, horizon: int = VALIDATE_HORIZON):
    """Check a scenario file and every file it names; return ``(scenario, data or None, space, warnings)``.

    Raises :class:`~journeysim.InputError` at the first problem, naming the file and key (or row/column).
    """
    from journeysim.cli._args import check_memory
    from journeysim.inference.priors import build_space
    from journeysim.inference.support import data_support
    from journeysim.io.observed import check_observations, read_observed
    from journeysim.io.planfile import baseline_plan, load_plan
    from journeysim.model.plan import Plan, check_plan
    from journeysim.model.scenario import load_scenario

    sc = load_scenario(path)
    where = str(path)
    check_memory(sc.structure.agents, f"{where}: market.agents")
    check_observations(sc)
    space = build_space(sc)
    observed = None
    if data is not None:
        observed = read_observed(data, sc)
    elif sc.spec.data:
        f = sc.base_dir / sc.spec.data
        if not f.is_file():
            raise InputError(f"file not found: {f}", f"{where}: data")
        observed = read_observed(f, sc)
    channels = sc.structure.channels
    base = (baseline_plan(sc, observed, horizon) if observed is not None
            else Plan(np.zeros((horizon, len(channels))), channels, "baseline"))
    for i, p in enumerate(sc.spec.plans):
        f = sc.base_dir / p
        if not f.is_file():
            raise InputError(f"file not found: {f}", f"{where}: plans[{i}]")
        plan = load_plan(f, sc, baseline=base, horizon=horizon)
        check_plan(plan, sc.structure, horizon, str(f))  # (no spend on an owned channel)
        check_plan_plausible(plan, observed, str(f))
    notes = data_support(sc, observed) if observed is not None else []
    return sc, observed, space, notes

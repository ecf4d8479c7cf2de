"""Can the observed data support a fit? Checked before sampling, reported as plain-words warnings.

Data that can be read may still carry no information about what a fit estimates: too few weeks for
the uncertain parameters, a KPI column that is empty or all zeros, a paid channel whose spend never
moves. Such a fit runs, but its posterior is its prior; ``journeysim fit`` and ``plan`` print these
warnings before sampling and keep them in ``summary.json`` (``data_warnings``).

>>> import journeysim as js
>>> sc = js.load_scenario("scenarios/funnel3.yaml")
>>> data = js.read_observed("scenarios/data/funnel3_observed.csv", sc)
>>> data_support(sc, data)
[]
"""

from __future__ import annotations

import numpy as np

from journeysim.errors import InputError

__all__ = ['data_support', 'MIN_WEEKS']

#: Coefficients of a demand process (one per knot or week) rather than parameters of their own.
STEP_PREFIXES = ("demand.latent.", "demand.shock.")

#: Fewest observed weeks a fit is run on at all; fewer than :data:`FEW_WEEKS` (or than twice the
#: uncertain parameters) gets a warning.
MIN_WEEKS = 2
FEW_WEEKS = 8


def data_support(scenario, data, priors: dict[str, str] | None = None) -> list[str]:
    """Warnings (sentences) about what the data cannot tell a fit; :class:`InputError` below :data:`MIN_WEEKS`."""
    from journeysim.inference.priors import build_space

    space = build_space(scenario, priors)
    # (the latent demand's steps and the weekly shocks are one process each, pooled by their prior,
    # not parameters the weeks must each pin down)
    n = sum(p.form != "fixed" and not name.startswith(STEP_PREFIXES) for name, p in zip(space.names, space.priors))
    W = data.weeks
    src = data.source
    if W < MIN_WEEKS:
        raise InputError(f"{W} week of data: a fit needs at least {MIN_WEEKS} weeks (and many more to learn "
                         f"{n} parameters)", src)
    out = []
    if W < max(FEW_WEEKS, 2 * n):
        out.append(f"{src}: only {W} weeks of data for {n} uncertain parameters; the posterior will mostly "
                   f"repeat the priors (aim for at least {max(FEW_WEEKS, 2 * n)} weeks)")
    for i, obs in enumerate(data.observations):
        seen = obs.values[obs.observed]
        if seen.size == 0:
            out.append(f"{src}: column {obs.column} (observations[{i}]) has no observed week; it adds nothing to "
                       f"the fit")
        elif np.all(seen == 0):
            out.append(f"{src}: column {obs.column} (observations[{i}]) is 0 in every observed week; it carries "
                       f"no information on the effects")
    st = scenario.structure
    spend = data.plan.aligned(st.channels)
    for j, c in enumerate(st.channels):
        if st.cost_per_touch[j] <= 0:
            continue
        s = spend[:, j]
        if np.all(s == 0):
            out.append(f"{src}: column spend_{c}: '{c}' never spent in these {W} weeks; its effect is its "
                       f"prior, and a plan that spends on it rests on that prior")
        elif np.ptp(s) == 0:
            out.append(f"{src}: column spend_{c}: spend never varies ({s[0]:g} every week); its effect cannot be "
                       f"told apart from the base rates")
    return out

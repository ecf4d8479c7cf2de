"""The sampler's coordinates of the parameters: where NUTS moves, not what the model is.

Two ridges of the posterior, each a product or a sum that the data see while they cannot tell its
parts apart, are straightened by a change of coordinates with unit Jacobian (the same prior, the
same posterior; ``tests/inference/test_coordinates.py``):

* **An effect and its channel's saturation.** A saturated channel shows ``effect x saturation``.
  The effect of a channel whose saturation is learned is sampled as its value at the channel's
  typical weekly frequency ``f`` over the history: ``log m = log beta + log q(f)``,
  ``q(f) = 1 / (1 + f / saturation)``.
* **A transition's base rate and the channels that move it.** Where only the flow through a
  transition is seen (no survey of the stage before it), ``rate x base + sum_k effect_k x memory_k``
  is pinned down and its split is not. A transition with a learned base rate and learned channel
  effects is sampled as the log of its typical hazard over the history and the log-odds of each
  channel's share of it against the base rate's (``hazard.<a->b>@typical``,
  ``share.<a->b>@typical``); the priors of the rate and of the effects enter as a ``Potential``
  at the values they imply.

"Typical" values come from one run of the compiled twin at the scenario's own values over the
observed history (:func:`typical_exposure`). Log coordinates only (``coords="log"``).
"""

from __future__ import annotations

import numpy as np

from journeysim.model.dynamics import TINY

__all__ = ['typical_exposure', 'free_parameters']


def typical_exposure(scenario, touches, em, cm) -> dict:
    """What is typical over the history, in the scenario's twin at its own values.

    ``scenario`` with its data; per step: touches per day ``(T, C)``, base and channel multipliers
    ``em (T, P, E)``, ``cm (T, K, P)`` (as :func:`journeysim.inference.inputs.observed_inputs` gives
    them). Returns ``frequency (C,)``: each channel's mean weekly touches per targeted person;
    ``base (E,)``: each transition's base hazard times its multipliers, averaged over the people in
    its source stage and the steps; ``memory (K, E)``: the mean exposure memory of each source
    among those people, times its affinity and multipliers.
    """
    from journeysim.twin._kernel.forward import twin_scan_forward
    from journeysim.twin._kernel.layout import kernel_structure, struct_args
    from journeysim.twin.state import initial_X

    st = scenario.structure
    p = scenario.params
    ks = kernel_structure(st)
    K = st.n_sources
    f64 = lambda x: np.ascontiguousarray(x, dtype=np.float64)  # noqa: E731
    cap = np.full(K, np.inf) if p.cap is None else p.cap
    Xs = twin_scan_forward(f64(touches), f64(em), f64(cm), f64(initial_X(np, p.initial, st)), f64(p.base),
                           f64(p.beta), f64(p.carryover), f64(p.fhalf), f64(cap), float(p.wom_rate), float(st.dt),
                           np.asarray(st.substeps, np.int64), *struct_args(ks))[0]  # (T, R, 1 + 2K)
    N = Xs[:, :, 0]
    targeted = N @ ks.targ  # (T, K)
    C = len(st.channels)
    frequency = 7.0 * np.mean(touches / np.maximum(targeted[:, :C], TINY), axis=0)
    E = len(st.edges)
    src, pid, eid = ks.srow.astype(int), ks.pidx.astype(int), ks.eidx.astype(int)
    people = N[:, src]  # (T, R_E)
    base = np.zeros(E)
    memory = np.zeros((K, E))
    for e in range(E):
        rows = np.flatnonzero(eid == e)
        w = people[:, rows].sum()
        if w <= 0:
            continue
        base[e] = np.sum(people[:, rows] * em[:, pid[rows], e]) / w
        for k in range(K):
            mem = Xs[:, src[rows], 1 + k] * ks.aff[k, pid[rows]] * cm[:, k, pid[rows]]
            memory[k, e] = np.sum(mem) / w
    return {"frequency": frequency, "base": base, "memory": memory}


def free_parameters(pm, pt, scenario, space, coords: str, touches, em, cm, typical: bool = True) -> list:
    """The parameters of ``space`` as PyMC variables (or expressions of them), in its order.

    With ``typical`` and log coordinates, in the coordinates of this module's docstring; the
    parameters keep their names (``Deterministic``), the sampler's coordinates are named
    ``<parameter>@typical``, ``hazard.<a->b>@typical`` and ``share.<a->b>@typical``.
    """
    n = len(space)
    theta: list = [None] * n
    # (only lognormal priors in log coordinates move: their log is the coordinate this module transforms)
    movable = [coords == "log" and typical and space.priors[i].form == "lognormal" for i in range(n)]
    sat = {tgt[0]: i for i, (kind, tgt) in enumerate(zip(space.kinds, space.targets))
           if kind == "saturation" and space.priors[i].form != "fixed"}
    rate_of = {tgt[0]: i for i, (kind, tgt) in enumerate(zip(space.kinds, space.targets))
               if kind == "rate" and movable[i]}
    effects = [i for i in range(n) if space.kinds[i] == "effect" and movable[i]]
    typ = typical_exposure(scenario, touches, em, cm) if effects else None
    st = scenario.structure
    C = len(st.channels)
    fhalf0 = np.asarray(scenario.params.fhalf, float)

    def q_scenario(k):  # effectiveness at the typical frequency with the scenario's saturation
        return 1.0 / (1.0 + typ["frequency"][k] / fhalf0[k]) if k < C and np.isfinite(fhalf0[k]) else 1.0

    groups: dict[int, list[int]] = {}
    for i in effects:
        k, e = space.targets[i]
        if e in rate_of and typ["base"][e] > 0 and typ["memory"][k, e] > 0:
            groups.setdefault(e, []).append(i)
    in_group = {rate_of[e] for e in groups} | {i for v in groups.values() for i in v}
    at_typical = [i for i in effects if i not in in_group and space.targets[i][0] in sat]
    for i, (name, prior) in enumerate(zip(space.names, space.priors)):
        if i not in in_group and i not in at_typical:
            theta[i] = pt.as_tensor(prior.args[0]) if prior.form == "fixed" else prior.pymc(name, coords=coords)

    def log_q(k):
        """``log q(f)`` at channel ``k``'s typical frequency with its saturation (learned or fixed)."""
        if k in sat:
            return -pt.log1p(float(typ["frequency"][k]) / theta[sat[k]])
        return float(np.log(q_scenario(k)))

    for i in at_typical:
        name, prior, k = space.names[i], space.priors[i], space.targets[i][0]
        lq = log_q(k)
        log_m = pm.Normal(f"{name}@typical", mu=float(np.log(prior.args[0])) + lq, sigma=prior.args[1])
        theta[i] = pm.Deterministic(name, pt.exp(log_m - lq))
    for e, members in groups.items():
        edge = st.edges[e]
        i_r = rate_of[e]
        b_bar = float(typ["base"][e])
        # memory per unit of effectiveness: the effect at the typical frequency times it is the channel's hazard
        a_bar = [float(typ["memory"][space.targets[i]] / q_scenario(space.targets[i][0])) for i in members]
        parts = np.array([space.priors[i_r].args[0] * b_bar]
                         + [space.priors[i].args[0] * q_scenario(space.targets[i][0]) * a
                            for i, a in zip(members, a_bar)])
        log_h = pm.Flat(f"hazard.{edge}@typical", initval=float(np.log(parts.sum())))
        z = pm.Flat(f"share.{edge}@typical", shape=(len(members),), initval=np.log(parts[1:] / parts[0]))
        lse = pt.logsumexp(pt.concatenate([pt.zeros(1), z]))
        terms = []
        log_r = log_h - lse - np.log(b_bar)
        prior = space.priors[i_r]
        terms.append(_normal_logp(pt, log_r, np.log(prior.args[0]), prior.args[1]))
        theta[i_r] = pm.Deterministic(space.names[i_r], pt.exp(log_r))
        for j, (i, a) in enumerate(zip(members, a_bar)):
            prior, k = space.priors[i], space.targets[i][0]
            log_beta = log_h + z[j] - lse - np.log(a) - log_q(k)
            terms.append(_normal_logp(pt, log_beta, np.log(prior.args[0]), prior.args[1]))
            theta[i] = pm.Deterministic(space.names[i], pt.exp(log_beta))
        pm.Potential(f"prior.{edge}@typical", pt.sum(pt.stack(terms)))
    return theta


def _normal_logp(pt, x, mu: float, sigma: float):
    return -0.5 * ((x - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)

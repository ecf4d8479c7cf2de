"""The one definition of the journey dynamics.

Every engine (the agent engine, the mean-field twin, the PyMC likelihood) calls these functions;
none writes the equations again. They are written against an *array namespace* ``xp``: ``numpy``
for the agents and the twin, ``pytensor.tensor`` for the PyMC model. Only operations that both
namespaces share are used (broadcasting arithmetic, ``exp``, ``sum``, ``where``, ``maximum``,
``matmul``/``@``); no in-place update, no scatter.

The model, per time step of ``dt`` days:

1. **Delivery.** Channel ``k`` makes ``T_k`` touches (impressions, clicks, owned contacts or
   recommendations). They land on group ``g = (persona, stage)`` in proportion to its targeting
   weight, so a person in ``g`` expects ``lam[k, g] = T_k w[k, g] / sum_g' N_g' w[k, g']`` touches.
   Effectiveness per touch falls with the average weekly frequency ``f_k`` among the targeted,
   ``q_k = 1 / (1 + f_k / f_half_k)`` (diminishing returns, a Hill curve of shape one). A
   demand-capped channel delivers at most ``cap_k`` touches a week to a targeted person
   (:func:`effectiveness`).
2. **Memory.** Each person's exposure memory of channel ``k`` decays by ``carryover_k`` a day and
   grows by ``q_k`` per touch received (adstock at the individual level).
3. **Hazards.** The hazard of transition ``e`` for a person of persona ``p`` with memories
   ``a_k`` is ``h_e = base[p, e] m_e(t) + sum_k B[k, p, e] a_k`` with ``B = beta * affinity``:
   linear in memory, so the mean hazard of a group is the hazard at its mean memory.
4. **Moves.** Transitions out of a stage compete: a person leaves with probability
   ``1 - exp(-H dt)`` (``H`` the sum of the hazards out of the stage) along edge ``e`` with
   probability ``h_e / H``. Agents do this with exponential clocks; the twin moves expected flows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

__all__ = ['Structure', 'Params', 'edge_multipliers', 'hazard_terms', 'delivery', 'delivered', 'effectiveness', 'competing_exit', 'wom_touches', 'TINY']


#: Guard against division by an empty group.
TINY = 1e-12
#: Below this ``7 p0 / cap`` a demand cap is taken to first order (:func:`effectiveness`).
CAP_SMALL = 1e-8
#: Below this, ``log1p(x) / x`` is summed as its series (exact to rounding; no 0 / 0 at ``x = 0``).
SERIES_BELOW = 0.01


@dataclass(frozen=True)
class Structure:
    """What a scenario fixes: graph, personas, channels, targeting, costs, plan-independent events.

    Arrays (``P`` personas, ``S`` stages, ``E`` edges, ``C`` channels, ``K = C + 1`` touch
    sources: the channels then word of mouth, ``W`` weeks):
    """

    stages: tuple[str, ...]
    edges: tuple[str, ...]
    personas: tuple[str, ...]
    channels: tuple[str, ...]
    src: np.ndarray  # (E,) int
    dst: np.ndarray  # (E,) int
    src_matrix: np.ndarray  # (E, S)
    dst_matrix: np.ndarray  # (E, S)
    purchase_edges: np.ndarray  # (E,) bool
    customer_stages: np.ndarray  # (S,) bool: stages of people who have bought before
    persona_share: np.ndarray  # (P,)
    value: np.ndarray  # (P,) revenue per purchase
    targeting: np.ndarray  # (K, P, S) delivery weights, max 1 per source
    affinity: np.ndarray  # (K, P) multiplier of each source's effect
    cost_per_touch: np.ndarray  # (C,) 0 for owned channels
    owned_volume: np.ndarray  # (C,) touches per week of owned channels
    wom_from: np.ndarray  # (S,) recommendation intensity of each stage
    edge_multiplier: np.ndarray  # (W, P, E) scheduled events on base hazards
    channel_multiplier: np.ndarray  # (W, K, P) scheduled events on channel effects
    population: float
    agents: int
    dt: int  # days per step
    demand: Any = None  # journeysim.model.demand.Demand: seasonality, trend, controls (None: none)
    cost_elasticity: Any = None  # (C,) of the cost per touch to weekly spend (None: constant costs)
    spend_reference: Any = None  # (C,) weekly spend at which a touch costs cost_per_touch
    delivery: Any = None  # {channel: journeysim.model.delivery.DeliveryCurve} learned from impressions

    @property
    def n_sources(self) -> int:
        return len(self.channels) + 1

    @property
    def substeps(self) -> tuple[int, ...]:
        """The twin's steps of a week, each as its number of memory steps of ``dt`` days.

        Daily scenarios: two steps, of 3 and 4 days (memory followed day by day inside each, the
        people's flows once per step; within 2.2% of the daily agents on every shipped example,
        ``experiments/weekly_step.py``). Weekly scenarios: one step of one week.
        """
        return (3, 4) if self.dt == 1 else (1,)

    def step_days(self, weeks: int) -> np.ndarray:
        """Days of each of the twin's steps over ``weeks`` weeks, ``(weeks * len(substeps),)``."""
        return np.tile(np.asarray(self.substeps, float) * self.dt, weeks)

    @property
    def weight(self) -> float:
        """People represented by one agent."""
        return self.population / self.agents

    def event_multipliers(self, week: int) -> tuple[np.ndarray, np.ndarray]:
        """Scheduled multipliers of base hazards ``(P, E)`` and channel effects ``(K, P)`` in a week.

        Weeks outside the scenario's horizon (a forecast beyond it) have no events.
        """
        if 0 <= week < self.edge_multiplier.shape[0]:
            return self.edge_multiplier[week], self.channel_multiplier[week]
        return np.ones(self.edge_multiplier.shape[1:]), np.ones(self.channel_multiplier.shape[1:])

    def touches(self, spend_week: np.ndarray) -> np.ndarray:
        """Touches per *day* of each channel, ``(..., C)``, from weekly spend ``(..., C)``: spend over
        the cost per touch, which moves with spend along a learned delivery curve
        (``cost * (spend / spend_reference) ** cost_elasticity``, :mod:`journeysim.model.delivery`)."""
        cost = self.cost_per_touch
        paid = np.divide(spend_week, np.where(cost > 0, cost, 1.0)) * (cost > 0)
        g = self.cost_elasticity
        if g is not None and np.any(g != 0):
            s = np.asarray(spend_week, float)
            pos = s > 0
            paid = paid * np.where(pos, (np.where(pos, s, 1.0) / self.spend_reference) ** -np.asarray(g), 1.0)
        return (paid + self.owned_volume) / 7.0


#: Dimensions of each :class:`Params` field that are not batch dimensions.
_CORE_NDIM = {"base": 2, "beta": 2, "carryover": 1, "fhalf": 1, "wom_rate": 0, "initial": 2, "demand": 1, "cap": 1}


@dataclass(frozen=True)
class Params:
    """What calibration learns. Arrays may carry leading batch dimensions (posterior draws).

    base : (..., P, E) daily base hazard of each transition
    beta : (..., K, E) daily hazard added per unit of exposure memory of source k
    carryover : (..., K) daily retention of exposure memory
    fhalf : (..., K) weekly frequency halving effectiveness (``inf``: no saturation)
    wom_rate : (...,) recommendations per recommender per day
    initial : (..., P, S) stage shares within each persona at the start
    demand : (..., J) coefficients of the scenario's demand terms (``J = 0`` without a ``demand:``
        section; see :func:`edge_multipliers`)
    cap : (..., K) most touches a targeted person can receive a week (``inf``: no cap; ``None``:
        none anywhere; see :func:`effectiveness`)
    """

    base: Any
    beta: Any
    carryover: Any
    fhalf: Any
    wom_rate: Any
    initial: Any
    demand: Any = field(default_factory=lambda: np.zeros(0))
    cap: Any = None

    def batch_shape(self) -> tuple[int, ...]:
        """The broadcast shape of the fields' leading (batch) dimensions (``()`` for one draw)."""
        return np.broadcast_shapes(*(np.shape(v)[:np.ndim(v) - _CORE_NDIM[k]] for k, v in self.as_dict().items()
                                     if v is not None))

    def broadcast(self, batch: tuple[int, ...]) -> Params:
        """Every field as a float numpy array with leading dimensions ``batch`` (copies)."""
        out = {}
        for k, v in self.as_dict().items():
            if v is None:
                out[k] = None
                continue
            v = np.asarray(v, float)
            core = v.shape[v.ndim - _CORE_NDIM[k]:]
            out[k] = np.broadcast_to(v, tuple(batch) + core).copy()
        return Params(**out)

    def replace(self, **changes) -> Params:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def draw(self, i: int, batch_ndim: int = 1) -> Params:
        """The ``i``-th member of a batch of parameters (leading dimension)."""
        out = {}
        for k, v in self.as_dict().items():
            out[k] = np.asarray(v)[i] if batch_ndim and v is not None else v
        return Params(**out)


def edge_multipliers(xp, structure: Structure, demand, weeks):
    """Multipliers of the base hazards in weeks ``weeks`` (from the start): ``(..., n, P, E)``.

    The scheduled events times the scenario's demand (:mod:`journeysim.model.demand`): on the
    transitions the demand section names, ``exp(design(week) @ demand)``, with ``demand (..., J)``
    the coefficients (:attr:`Params.demand`). Without demand terms, the events alone ``(n, P, E)``.
    """
    weeks = np.asarray(weeks, int).reshape(-1)
    fixed = np.stack([structure.event_multipliers(int(w))[0] for w in weeks])  # (n, P, E)
    d = structure.demand
    if d is None or d.size == 0:
        return fixed
    X = d.design(weeks)  # (n, J)
    log_m = xp.sum(xp.expand_dims(demand, -2) * X, axis=-1)  # (..., n)
    log_m = xp.expand_dims(xp.expand_dims(log_m, -1), -1)  # (..., n, 1, 1)
    return fixed * xp.exp(log_m * d.edges)


def hazard_terms(xp, params: Params, structure: Structure, edge_mult, chan_mult):
    """Base hazards with scheduled events, and the memory coefficients ``B``.

    ``edge_mult (P, E)`` and ``chan_mult (K, P)`` are the week's event multipliers
    (:meth:`Structure.event_multipliers`). Returns ``base_eff (..., P, E)`` and
    ``B (..., K, P, E)``: the hazard of edge ``e`` for a persona-``p`` person with memories ``a``
    is ``base_eff[p, e] + sum_k B[k, p, e] a[k]``.
    """
    base_eff = params.base * edge_mult
    chan = structure.affinity * chan_mult  # (K, P)
    beta = params.beta
    B = xp.expand_dims(beta, -2) * chan[..., None]  # (..., K, 1, E) * (K, P, 1)
    return base_eff, B


def wom_touches(xp, N, structure: Structure, wom_rate):
    """Recommendations made per day by the whole population, from stage sizes ``N (..., P, S)``."""
    return wom_rate * xp.sum(N * structure.wom_from, axis=(-2, -1))


def effectiveness(xp, touches, targeted, fhalf, cap=None):
    """Touches per unit of targeting weight, and the effectiveness of one touch.

    Parameters
    ----------
    touches : (..., K) daily touches of each source (bought or sent)
    targeted : (..., K) targeted people, weighted: ``sum_g N_g w[k, g]``
    fhalf : (..., K) half-saturation weekly frequency
    cap : (..., K) or None, most touches a targeted person can receive a week (``inf``: no cap)

    Returns ``per_weight (..., K)`` (a person of weight ``w`` expects ``per_weight * w`` touches a
    day) and ``q (..., K) = 1 / (1 + f / fhalf)`` with ``f = 7 per_weight`` the weekly frequency.

    A *demand-capped* channel (search: queries come from people in market) delivers at most ``cap``
    touches a week to a targeted person: of ``p0 = touches / targeted`` bought, it delivers
    ``p = (cap / 7) (1 - exp(-7 p0 / cap))``, as many as bought while that is far below the cap,
    never more than the cap, so spend beyond it buys (almost) nothing. The touches delivered are
    ``p * targeted`` (:func:`delivered`).
    """
    per_weight = touches / xp.maximum(targeted, TINY)
    if cap is not None:
        x = 7.0 * per_weight / cap  # (cap = inf: x = 0, nothing capped)
        xs = xp.maximum(x, CAP_SMALL)
        per_weight = per_weight * xp.where(x > CAP_SMALL, -xp.expm1(-xs) / xs, 1.0 - 0.5 * x)
    q = 1.0 / (1.0 + 7.0 * per_weight / fhalf)
    return per_weight, q


def delivered(xp, per_weight, targeted):
    """Touches delivered a day, ``(..., K)``: ``per_weight`` times the targeted (weighted) people."""
    return per_weight * xp.maximum(targeted, TINY)


def delivery(xp, touches, N, structure: Structure, fhalf, cap=None):
    """Expected touches per person per day by group, and effectiveness per touch.

    Parameters
    ----------
    touches : (..., K) daily touches of each source (channels, then word of mouth)
    N : (..., P, S) people per group
    fhalf : (..., K) half-saturation weekly frequency
    cap : (..., K) or None, demand caps (:func:`effectiveness`)

    Returns
    -------
    lam : (..., K, P, S) expected daily touches per person in each group
    q : (..., K) effectiveness of one touch
    sent : (..., K) touches delivered a day (fewer than ``touches`` where a cap binds)
    """
    w = structure.targeting  # (K, P, S)
    targeted = xp.sum(xp.expand_dims(N, -3) * w, axis=(-2, -1))  # (..., K)
    per_weight, q = effectiveness(xp, touches, targeted, fhalf, cap)
    return per_weight[..., None, None] * w, q, delivered(xp, per_weight, targeted)


def competing_exit(xp, h, H, dt: float):
    """Probability of leaving along an edge in one step, ``(1 - exp(-H dt)) h / H``.

    ``h`` is the edge's hazard and ``H`` the total hazard out of its source stage (same shape).
    Returns ``(frac, L)`` with ``L = 1 - exp(-H dt)`` the probability of leaving at all.
    """
    safe = xp.maximum(H, TINY)
    L = 1.0 - xp.exp(-safe * dt)
    return L * h / safe, L

"""Observed path tables as a likelihood in calibration: how often a channel's touch is followed by a purchase.

A path table (:mod:`journeysim.io.pathtable`) lists journeys as ordered touches ending in a conversion or
not. Read as a sequence of events, every touch of channel ``k`` is followed either by another
touch, by a conversion, or by nothing (the journey ends). The statistic used here is, per
channel,

* ``n_k``: touches of ``k`` over all journeys (each path's touches times its journeys), and
* ``c_k``: converting journeys whose *last* touch is ``k`` (touches of ``k`` followed by a
  conversion with no touch in between),

and the likelihood is ``c_k ~ Binomial(n_k, pi_k)``, where ``pi_k`` is the probability, under the
calibrated model, that a touch of ``k`` is followed by a purchase before any other touch.

The predicted probability comes from the twin's own hazards along the observed history. A touch
of ``k`` landing on a person of persona ``p`` in stage ``s`` on step ``t`` raises the hazard of the
purchase edges out of ``s`` by ``x = q_k(t) B[k, p, purchase(s)]`` (its effectiveness times the
channel's effect), an increment that decays by the carry-over ``c_k`` each step. From then on, on
each step ``j`` the person

* buys with hazard ``y_j = h_buy(t, p, s) + x c_k^j`` (the group's mean purchase hazard, from base
  rates and the group's mean exposure memory, plus the touch's own increment),
* leaves ``s`` otherwise with hazard ``h_exit``, and
* is touched again at the rate ``lambda(t, p, s)`` of every source together (which ends the chance
  that *this* touch is the last one);

so ``pi = sum_j S_j (1 - exp(-(y_j + h_exit) dt)) y_j / (y_j + h_exit)`` with ``S_j`` the chance of
reaching step ``j`` with neither a move nor another touch. Touches on the same day are ordered as
the engine orders them (channels in scenario order, then word of mouth), so a touch is last on
its own day if no later source touches the person that day. ``pi_k`` averages this over where
``k``'s touches land (persona, stage, step), weighted by the twin's expected touches. The effect
parameters enter through ``x``; base rates and other channels' memory through ``h_buy`` and
``h_exit``; carry-over through the decay. On simulated data from the example scenarios the
predicted ``pi_k`` at the true parameters are within a few percent of the observed ``c_k / n_k``
(``tests/inference/test_pathlik.py``).

Model error: the prediction is a mean-field approximation (memory at the group mean; the time
after the horizon's end ignored), and the touches of one journey are not independent. Each
channel's observed rate may therefore deviate from the prediction by a relative error:
``logit(pi_obs_k) = logit(pi_k) + sigma z_k``, ``z_k ~ N(0, 1)``, ``sigma ~ HalfNormal(0.1)``
(variables ``noise_paths`` and ``paths_offset``), the same 10% prior scale as the noise of the
weekly negative-binomial series. The path table is taken to cover the observed weeks.

Examples
--------
>>> import pandas as pd
>>> from journeysim.model.scenario import load_scenario
>>> sc = load_scenario("scenarios/funnel3.yaml")  # doctest: +SKIP
>>> table = pd.DataFrame({"path": ["display > email", "email"], "total_conversions": [3, 1],
...                       "total_null": [7, 9]})
>>> counts = path_counts(table, sc)  # doctest: +SKIP
>>> dict(zip(counts.sources, counts.touches))  # doctest: +SKIP
{'display': 10.0, 'email': 20.0, 'word_of_mouth': 0.0}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeysim.errors import InputError, did_you_mean
from journeysim.io.pathtable import DIRECT, SEPARATOR, check_path_table, read_path_table
from journeysim.model.dynamics import TINY, Params, effectiveness, hazard_terms
from journeysim.model.scenario import WOM

__all__ = ['NOISE_PRIOR_SIGMA', 'PathCounts', 'add_path_likelihood', 'follow_probability', 'paths_info', 'path_counts', 'predict_follow', 'read_path_counts', 'select_channels']


#: Prior scale of the relative (logit-scale) model error of each channel's follow probability.
NOISE_PRIOR_SIGMA = 0.1
#: A channel's follow rate enters the likelihood when the touch's own effect makes up this share of it.
MIN_EFFECT_SHARE = 0.25
#: Steps after a touch summed explicitly; the rest is a geometric tail (first order in the increment).
HORIZON_STEPS = 16

Unknown = Literal["error", "ignore"]


@dataclass(frozen=True)
class PathCounts:
    """What the path likelihood reads from a path table, per touch source of the scenario.

    Attributes
    ----------
    sources
        The scenario's channels, then ``word_of_mouth``.
    touches
        ``n_k``: touches of each source over all journeys.
    followed
        ``c_k``: converting journeys whose last touch is the source.
    journeys, conversions, direct
        Journeys, conversions, and conversions with no touch (not used by the likelihood).
    ignored
        Touchpoints of the table that are not sources of the scenario (with ``unknown="ignore"``),
        with their touch counts.
    source
        Where the table came from.
    channels
        The sources the likelihood uses; ``None``: chosen by :func:`select_channels`.
    """

    sources: tuple[str, ...]
    touches: np.ndarray
    followed: np.ndarray
    journeys: float
    conversions: float
    direct: float
    ignored: dict[str, float]
    source: str = "path table"
    channels: tuple[str, ...] | None = None

    @property
    def used(self) -> np.ndarray:
        """Sources that enter the likelihood (touched at least once)."""
        return self.touches > 0

    def table(self) -> pd.DataFrame:
        """Per source: touches, followed by a conversion, and the observed rate."""
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(self.touches > 0, self.followed / self.touches, np.nan)
        return pd.DataFrame({"touches": self.touches, "followed": self.followed, "observed_rate": rate},
                            index=pd.Index(self.sources, name="channel"))

    def info(self) -> dict[str, Any]:
        """A JSON-ready summary (for ``Fit.info``)."""
        return {"source": self.source, "journeys": self.journeys, "conversions": self.conversions,
                "direct": self.direct, "touches": dict(zip(self.sources, self.touches.tolist())),
                "followed": dict(zip(self.sources, self.followed.tolist())), "ignored": dict(self.ignored)}


def path_counts(table: pd.DataFrame, scenario, *, unknown: Unknown = "error", channels=None,
                where: str = "path table") -> PathCounts:
    """Count, per source of the scenario, touches and touches followed by a conversion.

    Parameters
    ----------
    table
        A path table (DataFrame with ``path``, ``total_conversions``, ``total_null``); counts must
        be whole numbers (journeys, not scaled values).
    scenario
        The scenario whose channels the touchpoints must name.
    unknown
        ``"error"`` (default): a touchpoint that is not a channel of the scenario (nor
        ``word_of_mouth``) is an :class:`InputError`. ``"ignore"``: such touches are dropped from
        the paths (a touch of a known channel followed by an unknown one and then a conversion
        then counts as followed by the conversion).
    channels
        The sources whose follow rates enter the likelihood (default: chosen by
        :func:`select_channels`).
    where
        How messages name the table.

    Returns
    -------
    PathCounts

    Examples
    --------
    >>> from journeysim.model.scenario import load_scenario
    >>> sc = load_scenario({"market": {"population": 1e4, "agents": 100, "weeks": 2},
    ...                     "channels": {"tv": {"cpm": 5.0}, "search": {"cpc": 1.0}}})
    >>> t = pd.DataFrame({"path": ["tv > search", "tv", "(direct)"], "total_conversions": [3, 1, 2],
    ...                   "total_null": [7, 9, 0]})
    >>> c = path_counts(t, sc)
    >>> c.table()  # doctest: +NORMALIZE_WHITESPACE
                   touches  followed  observed_rate
    channel
    tv                20.0       1.0           0.05
    search            10.0       3.0           0.30
    word_of_mouth      0.0       0.0            NaN
    """
    if unknown not in ("error", "ignore"):
        raise InputError(f"unknown must be 'error' or 'ignore', got {unknown!r}", "unknown")
    clean = check_path_table(table, where=where)
    for col in ("total_conversions", "total_null"):
        v = clean[col].to_numpy()
        bad = np.flatnonzero(v != np.round(v))
        if bad.size:
            raise InputError(f"count {v[bad[0]]:g} is not a whole number: the path likelihood needs journey "
                             f"counts (a scaled table, such as the paths.csv of `journeysim attribute --scenario`, "
                             f"must be given in journeys)", f"{where}, row {int(bad[0])}, column {col}")
    sources = tuple(scenario.structure.channels) + (WOM,)
    if channels is not None:
        channels = (channels,) if isinstance(channels, str) else tuple(channels)
        for c in channels:
            if c not in sources:
                raise InputError(f"unknown channel '{c}'{did_you_mean(c, sources)}; the scenario's sources are "
                                 f"{', '.join(sources)}", "path channels")
    conv = clean["total_conversions"].to_numpy(dtype=float)
    walks = conv + clean["total_null"].to_numpy(dtype=float)
    is_direct = (clean["path"] == DIRECT).to_numpy()
    tokens = clean["path"][~is_direct].str.split(SEPARATOR, regex=False).explode()
    row = tokens.index.to_numpy()
    names = tokens.to_numpy(dtype=object)
    known = np.isin(names, np.array(sources, dtype=object))
    ignored: dict[str, float] = {}
    if not known.all():
        strange = pd.Series(walks[row[~known]], index=names[~known]).groupby(level=0).sum()
        if unknown == "error":
            first = str(strange.index[0])
            raise InputError(f"touchpoint '{first}' is not a channel of the scenario{did_you_mean(first, sources)}"
                             f" ({len(strange)} unknown touchpoint(s): {', '.join(map(str, strange.index[:5]))}); "
                             f"the scenario's sources are {', '.join(sources)}; rename them, or pass "
                             f"unknown='ignore' (--paths-ignore-unknown) to drop them", where)
        ignored = {str(k): float(v) for k, v in strange.items()}
        row, names = row[known], names[known]
    lookup = {name: i for i, name in enumerate(sources)}
    code = pd.Series(names, dtype=object).map(lookup).to_numpy(dtype=np.int64)
    K = len(sources)
    touches = np.bincount(code, weights=walks[row], minlength=K).astype(float)
    followed = np.zeros(K)
    if row.size:  # the last (known) touch of each path
        is_last = np.ones(row.size, dtype=bool)
        is_last[:-1] = row[1:] != row[:-1]
        followed = np.bincount(code[is_last], weights=conv[row[is_last]], minlength=K).astype(float)
    touched = np.zeros(len(clean), dtype=bool)
    touched[row] = True
    return PathCounts(sources=sources, touches=touches, followed=followed, journeys=float(walks.sum()),
                      conversions=float(conv.sum()), direct=float(conv[~touched].sum()),
                      ignored=ignored, source=where, channels=channels)


def read_path_counts(path: str | Path, scenario, *, unknown: Unknown = "error", channels=None,
                     path_sep: str | None = None) -> PathCounts:
    """:func:`path_counts` of a path-table CSV (see :func:`journeysim.io.pathtable.read_path_table`;
    ``path_sep``: the touchpoint separator, detected when ``None``)."""
    return path_counts(read_path_table(path, path_sep=path_sep), scenario, unknown=unknown, channels=channels,
                       where=str(path))


# --------------------------------------------------------------------------------------------
# the predicted follow probability (numpy or pytensor)


def follow_probability(xp, structure, mats, params: Params, X_pre, touches_c, edge_mult, chan_mult, dt: float,
                       horizon: int = HORIZON_STEPS, own_effect: bool = True):
    """Probability that a touch of each source is followed by a purchase before any other touch.

    Written against the array namespace ``xp`` (numpy or ``pytensor.tensor``); one history, no
    batch dimension.

    Parameters
    ----------
    structure, mats
        The scenario's :class:`~journeysim.model.dynamics.Structure` and
        :class:`~journeysim.twin.state.TwinMatrices`.
    params
        Parameters (numpy arrays or tensors, no batch dimension).
    X_pre
        Twin states at the start of each step, ``(T, R, 1 + 2K)``.
    touches_c
        Daily touches of each channel per step, ``(T, C)``.
    edge_mult, chan_mult
        Event multipliers per step, ``(T, P, E)`` and ``(T, K, P)``.
    dt
        Days per step.
    horizon
        Steps after the touch summed explicitly (the rest is a geometric tail).
    own_effect
        ``False``: leave out the touch's own increment (what the probability would be if the
        touch itself moved nobody forward).

    Returns
    -------
    pi : (K,) follow probability of each source, averaged over where its touches land
    landed : (K,) expected touches of each source over the history (people, not agents)
    """
    st, m = structure, mats
    P, E, K = m.P, m.E, m.K
    N = X_pre[..., 0]  # (T, R)
    A = X_pre[..., 1:1 + K]  # (T, R, K)
    wom = params.wom_rate * (N @ m.wom_from)  # (T,)
    touches = xp.concatenate([touches_c + 0.0 * wom[:, None], xp.expand_dims(wom, -1)], axis=-1)  # (T, K)
    per_weight, q = effectiveness(xp, touches, N @ m.targeting, params.fhalf, params.cap)  # (T, K)
    lam = m.targeting * xp.expand_dims(per_weight, -2)  # (T, R, K) touches per person per day
    Ne = xp.expand_dims(N, -1)
    d = params.carryover ** dt  # (K,)
    A_post = d * A + xp.expand_dims(q, -2) * lam * dt * Ne  # memory after the step's touches
    abar = A_post / xp.maximum(Ne, TINY)
    base_eff, B = hazard_terms(xp, params, st, edge_mult, chan_mult)  # (T, P, E), (T, K, P, E)
    T_ = base_eff.shape[0]
    b = base_eff.reshape((T_, P * E))
    b_rows = xp.concatenate([b, b], axis=-1)  # (T, R_E)
    c = B.transpose(0, 2, 3, 1).reshape((T_, P * E, K))
    B_rows = xp.concatenate([c, c], axis=-2)  # (T, R_E, K)
    h = b_rows + xp.sum(B_rows * (m.src @ abar), axis=-1)  # (T, R_E) edge hazards at the group mean
    buy = np.tile(np.tile(np.asarray(st.purchase_edges, float), P), 2)  # (R_E,)
    h_buy = (h * buy) @ m.src  # (T, R)
    h_exit = (h * (1.0 - buy)) @ m.src
    x = xp.expand_dims(q, -2) * (m.src.T @ (B_rows * buy[:, None]))  # (T, R, K) increment of one touch
    if not own_effect:
        x = 0.0 * x
    lam_all = xp.sum(lam, axis=-1)  # (T, R)
    later = xp.cumsum(lam[..., ::-1], axis=-1)[..., ::-1] - lam  # sources after k on the same day
    first = xp.exp(-(later + 0.5 * lam) * dt)  # no later touch on the touch's own day
    # steps j = 0 .. horizon-1 after the touch: axis -1
    j = np.arange(horizon, dtype=float)
    decay = xp.expand_dims(d, -1) ** j  # (K, J)
    y = xp.expand_dims(xp.expand_dims(h_buy, -1), -1) + xp.expand_dims(x, -1) * decay  # (T, R, K, J)
    hx = xp.expand_dims(xp.expand_dims(h_exit, -1), -1)
    tot = xp.maximum(y + hx, TINY)
    L = 1.0 - xp.exp(-tot * dt)
    buy_j = L * y / tot
    stay = (1.0 - L) * xp.expand_dims(xp.expand_dims(xp.exp(-lam_all * dt), -1), -1)
    run = xp.cumprod(stay, axis=-1)
    surv = xp.concatenate([xp.ones_like(run[..., :1]), run[..., :-1]], axis=-1)
    head = xp.sum(surv * buy_j, axis=-1)  # (T, R, K)
    # tail j >= horizon: hazards back at the group's, plus the residual increment to first order
    tot0 = xp.maximum(h_buy + h_exit, TINY)
    L0 = 1.0 - xp.exp(-tot0 * dt)
    rho = xp.expand_dims((1.0 - L0) * xp.exp(-lam_all * dt), -1)  # (T, R, 1)
    buy0 = xp.expand_dims(L0 * h_buy / tot0, -1)
    resid = x * d ** horizon * xp.expand_dims(L0 / tot0, -1)
    tail = run[..., -1] * (buy0 / (1.0 - rho) + resid / (1.0 - rho * d))
    pi = first * (head + tail)  # (T, R, K)
    land = Ne * lam * dt  # expected touches landing on each group
    landed = xp.sum(land, axis=(0, 1))
    return xp.sum(land * pi, axis=(0, 1)) / xp.maximum(landed, TINY), landed


def per_day(x, structure):
    """Per-step numpy arrays ``(T, ...)`` of the twin (:attr:`~journeysim.model.dynamics.Structure.substeps`) as
    arrays per memory step of ``dt`` days (each step's entry repeated over its days): the follow
    probability follows one person day by day, at the state each twin step starts from."""
    return np.repeat(x, _day_repeats(structure, x.shape[0]), axis=0)


def _day_repeats(structure, steps: int) -> np.ndarray:
    return np.tile(np.asarray(structure.substeps, np.int64), steps // len(structure.substeps))


def _history_states(scenario, params: Params, touches, em, cm):
    """Numpy twin over a history: the states at the start of each step."""
    from journeysim.twin.state import TwinMatrices, TwinState, initial_X
    from journeysim.twin.step import twin_step

    st = scenario.structure
    mats = TwinMatrices.build(st)
    p = Params(*(np.asarray(v, float) for v in params.as_dict().values()))
    X = initial_X(np, p.initial, st)
    states = []
    subs = st.substeps
    for t in range(touches.shape[0]):
        states.append(X)
        X = twin_step(np, TwinState(X), touches[t], p, st, em[t], cm[t], st.dt, mats, subs[t % len(subs)])[0].X
    return np.stack(states), mats, p


def predict_follow(scenario, data, params: Params | None = None) -> pd.Series:
    """Predicted follow probability of each source over an observed history (numpy twin).

    Parameters
    ----------
    scenario, data
        The scenario and its observed data (:func:`journeysim.io.observed.read_observed`): the history
        the path table is taken to cover.
    params
        One set of parameters (default: the scenario's).

    Returns
    -------
    pandas.Series
        Index ``channel`` (the scenario's sources).
    """
    from journeysim.inference.inputs import observed_inputs

    params = scenario.params if params is None else params
    touches, em, cm, _ = observed_inputs(scenario, data)
    X, mats, p = _history_states(scenario, params, touches, em, cm)
    st = scenario.structure
    pi, _ = follow_probability(np, st, mats, p, *(per_day(z, st) for z in (X, touches, em, cm)), st.dt)
    sources = tuple(scenario.structure.channels) + (WOM,)
    return pd.Series(pi, index=pd.Index(sources, name="channel"), name="predicted")


# --------------------------------------------------------------------------------------------
# inside the PyMC model


def select_channels(scenario, counts: PathCounts, touches_c, edge_mult, chan_mult,
                    min_share: float = MIN_EFFECT_SHARE) -> pd.DataFrame:
    """Which sources' follow rates enter the likelihood, judged at the scenario's own parameters.

    A source is used when the table has touches of it, the scenario delivers touches of it over
    the history, and (unless ``counts.channels`` names the sources explicitly) its touch's own
    increment makes up at least ``min_share`` of its predicted follow probability: where the
    probability is mostly the baseline of the people the channel happens to reach, the path data
    says little about the channel's effect and much about the mean-field approximation of that
    baseline (which is off by 10-30% for broad channels on the retail example).

    Returns
    -------
    pandas.DataFrame
        Per source: ``touches``, ``followed``, ``observed_rate``, ``predicted`` and
        ``effect_share`` at the scenario's parameters, and ``used``.
    """
    st = scenario.structure
    X, mats, p = _history_states(scenario, scenario.params, touches_c, edge_mult, chan_mult)
    args = (np, st, mats, p, *(per_day(z, st) for z in (X, touches_c, edge_mult, chan_mult)), st.dt)
    pi, landed = follow_probability(*args)
    pi0, _ = follow_probability(*args, own_effect=False)
    out = counts.table()
    out["predicted"] = pi
    with np.errstate(invalid="ignore", divide="ignore"):
        out["effect_share"] = np.where(pi > 0, (pi - pi0) / pi, 0.0)
    delivered = landed > 0
    if counts.channels is not None:
        chosen = np.isin(np.array(counts.sources, dtype=object), np.array(counts.channels, dtype=object))
        for k in np.flatnonzero(chosen & ~(counts.used & delivered)):
            why = "the path table has no touches of it" if not counts.used[k] else \
                "the scenario delivers no touches of it over the observed weeks"
            raise InputError(f"channel '{counts.sources[k]}' cannot inform the fit: {why}", counts.source)
        out["used"] = chosen
    else:
        silent = [counts.sources[k] for k in np.flatnonzero(counts.used & ~delivered)]
        if silent:
            raise InputError(f"the path table has touches of {', '.join(silent)} but the scenario delivers none over "
                             f"the observed weeks (no spend, volume or recommendations)", counts.source)
        out["used"] = counts.used & delivered & (out["effect_share"].to_numpy() >= min_share)
    return out


def add_path_likelihood(pt, scenario, counts: PathCounts | pd.DataFrame, params: Params, X0, X_steps, touches_c,
                        edge_mult, chan_mult, edge_mult_model=None) -> pd.DataFrame:
    """Add the path-table likelihood to the PyMC model being built (call inside its context).

    Parameters
    ----------
    pt
        ``pytensor.tensor``.
    scenario
        The scenario.
    counts
        :class:`PathCounts` (or a path table, counted with ``unknown="error"``).
    params
        The model's parameters (tensors where uncertain).
    X0, X_steps
        Initial twin state ``(R, cols)`` and the states after each step ``(T, R, cols)`` from the
        model's ``scan``.
    touches_c, edge_mult, chan_mult
        The step inputs (numpy) of :func:`journeysim.inference.inputs.observed_inputs`.
    edge_mult_model
        The model's base multipliers per step where they depend on parameters (learned demand);
        default ``edge_mult``.

    Returns
    -------
    pandas.DataFrame
        The table of :func:`select_channels` (which sources were used).
    """
    import pymc as pm

    from journeysim.twin.state import TwinMatrices

    if not isinstance(counts, PathCounts):
        counts = path_counts(counts, scenario)
    st = scenario.structure
    if counts.sources != tuple(st.channels) + (WOM,):
        raise InputError("the path counts were made for another scenario (its channels differ)", counts.source)
    chosen = select_channels(scenario, counts, touches_c, edge_mult, chan_mult)
    used = np.flatnonzero(chosen["used"].to_numpy())
    if used.size == 0:
        raise InputError("no channel of the path table can inform the fit: none has touches whose own effect on a "
                         "purchase makes up a noticeable part of what follows them (name channels explicitly to "
                         "use them anyway)", counts.source)
    mats = TwinMatrices.build(st)
    X_pre = pt.concatenate([pt.expand_dims(X0, 0), X_steps[:-1]], axis=0)
    fields = {k: (pt.as_tensor(np.asarray(v, float)) if isinstance(v, np.ndarray | float | int | np.floating) else v)
              for k, v in params.as_dict().items()}
    em = edge_mult if edge_mult_model is None else edge_mult_model
    reps = _day_repeats(st, touches_c.shape[0])
    day = (lambda x: x) if st.substeps == (1,) else (lambda x: pt.repeat(pt.as_tensor(x), reps, axis=0))
    pi, _ = follow_probability(pt, st, mats, Params(**fields), day(X_pre), day(touches_c), day(em), day(chan_mult), st.dt)
    sigma = pm.HalfNormal("noise_paths", sigma=NOISE_PRIOR_SIGMA)
    z = pm.Normal("paths_offset", 0.0, 1.0, shape=used.size)
    p = pt.clip(pi[used], 1e-12, 1 - 1e-12)
    logit = pt.log(p) - pt.log1p(-p) + sigma * z
    pm.Binomial("obs_paths", n=counts.touches[used].astype(np.int64), p=pt.sigmoid(logit),
                observed=counts.followed[used].astype(np.int64))
    chosen.attrs["counts"] = counts.info()
    return chosen


def paths_info(paths, model) -> dict[str, Any]:
    """What :func:`journeysim.inference.sampling.calibrate` records in ``Fit.info["paths"]``."""
    chosen = getattr(model, "_journeysim_paths", None)
    if chosen is None:
        return {}
    info = dict(chosen.attrs.get("counts", {}))
    info["used"] = [str(c) for c in chosen.index[chosen["used"].to_numpy()]]
    info["at_scenario_values"] = {str(c): {k: (float(v) if np.isfinite(v) else None) for k, v in row.items()
                                           if k != "used"} for c, row in chosen.iterrows()}
    return info

"""The twin's state and its matrices: expected people and exposure memory per (history, persona, stage)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from journeysim.model.dynamics import (
    Params,
    Structure,
)

__all__ = ['TwinState', 'TwinMatrices', 'initial_twin_state', 'initial_X']


@dataclass(frozen=True)
class TwinMatrices:
    """Constant 0/1 matrices that let one step work on 2-D arrays (few, larger operations).

    State rows ``r = (h, p, s)`` (history, persona, stage), ``R = 2 P S``; edge rows
    ``(h, p, e)``, ``R_E = 2 P E``. State columns: ``N``, then ``A`` per source, then ``Q`` per source.
    """

    P: int
    S: int
    E: int
    K: int
    src: np.ndarray  # (R_E, R) edge row -> its source state row
    same_src: np.ndarray  # (R_E, R_E) edges sharing a source state
    move: np.ndarray  # (R, R_E) destination (purchases promote h=0 to h=1) minus source
    targeting: np.ndarray  # (R, K)
    wom_from: np.ndarray  # (R,)
    edge_out: np.ndarray  # (P*E, R_E) sum over history
    new_sel: np.ndarray  # (P, R_E) purchases by people who never bought
    repeat_sel: np.ndarray  # (P, R_E)
    stage_out: np.ndarray  # (P*S, R) sum over history

    @classmethod
    def build(cls, st: Structure) -> TwinMatrices:
        P, S, E, K = len(st.personas), len(st.stages), len(st.edges), st.n_sources
        R, RE = 2 * P * S, 2 * P * E
        src = np.zeros((RE, R))
        dst = np.zeros((R, RE))
        buy = st.purchase_edges
        new_sel = np.zeros((P, RE))
        repeat_sel = np.zeros((P, RE))
        edge_out = np.zeros((P * E, RE))
        for h in range(2):
            for p in range(P):
                for e in range(E):
                    re = (h * P + p) * E + e
                    src[re, (h * P + p) * S + st.src[e]] = 1.0
                    h2 = 1 if buy[e] else h
                    dst[(h2 * P + p) * S + st.dst[e], re] = 1.0
                    edge_out[p * E + e, re] = 1.0
                    if buy[e]:
                        (new_sel if h == 0 else repeat_sel)[p, re] = 1.0
        targeting = np.tile(st.targeting.reshape(K, P * S).T, (2, 1))
        wom_from = np.tile(np.tile(st.wom_from, P), 2)
        stage_out = np.tile(np.eye(P * S), (1, 2))
        return cls(P, S, E, K, src, src @ src.T, dst - src.T, targeting, wom_from, edge_out, new_sel, repeat_sel,
                   stage_out)


@dataclass(frozen=True)
class TwinState:
    """Expected stocks ``X (..., R, 1 + 2K)``: per state row ``(h, p, s)`` (``h = 0`` never bought,
    ``h = 1`` bought before) the people ``N``, their total exposure memory ``A`` per source and
    the total of its square ``Q`` per source (the spread of memory within a group)."""

    X: Any

    def people(self, P: int, S: int) -> np.ndarray:
        """People per persona and stage, ``(..., P, S)`` (numpy states only)."""
        X = np.asarray(self.X)
        N = X[..., 0]
        return N.reshape(N.shape[:-1] + (2, P, S)).sum(axis=-3)


def initial_twin_state(params: Params, structure: Structure) -> TwinState:
    """People by persona and stage from the initial shares; memory empty."""
    st = structure
    init = np.asarray(params.initial, float)  # (..., P, S)
    people = st.population * st.persona_share[:, None] * init
    cust = st.customer_stages.astype(float)
    N = np.concatenate([(people * (1 - cust)).reshape(people.shape[:-2] + (-1,)),
                        (people * cust).reshape(people.shape[:-2] + (-1,))], axis=-1)  # (..., R)
    X = np.zeros(N.shape + (1 + 2 * st.n_sources,))
    X[..., 0] = N
    return TwinState(X)




def initial_X(xp, initial, st: Structure):
    """Twin state rows from initial stage shares ``(P, S)`` (numpy or pytensor)."""
    people = st.population * st.persona_share[:, None] * initial  # (P, S)
    cust = st.customer_stages.astype(float)
    P, S = len(st.personas), len(st.stages)
    if xp is np:
        flat0 = (people * (1 - cust)).reshape(people.shape[:-2] + (P * S,))
        flat1 = (people * cust).reshape(people.shape[:-2] + (P * S,))
    else:
        flat0 = (people * (1 - cust)).reshape((P * S,))
        flat1 = (people * cust).reshape((P * S,))
    N = xp.concatenate([flat0, flat1], axis=-1)
    zeros = 0.0 * xp.expand_dims(N, -1) * np.zeros(2 * st.n_sources)
    return xp.concatenate([xp.expand_dims(N, -1), zeros], axis=-1)

"""The state of an agent population: quotas of people per persona and stage, and the agents at the end of a history."""

from __future__ import annotations

import numpy as np

__all__ = ['agent_initial_state']


def quota(share: np.ndarray, n: int) -> np.ndarray:
    """Integer counts proportional to ``share`` summing to ``n`` (largest remainder)."""
    raw = share / share.sum() * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - counts.sum()
    if rest:
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:rest]] += 1
    return counts




# ---------------------------------------------------------------------------------------------
# agents


def agent_initial_state(state_X: np.ndarray, scenario, agents: int, rng: np.random.Generator) -> dict:
    """Agents drawn from one draw's twin end state: exact quotas per (history, persona, stage) group,
    exposure memory drawn from a gamma with the group's mean and variance."""

    st = scenario.structure
    P, S, K = len(st.personas), len(st.stages), st.n_sources
    X = np.asarray(state_X, float)  # (R, 1 + 2K), rows (h, p, s)
    N = np.maximum(X[:, 0], 0.0)
    counts = quota(N / N.sum(), agents)
    rows = np.repeat(np.arange(N.size), counts)
    rng.shuffle(rows)
    group = rows % (P * S)
    bought = rows >= P * S
    mean = X[:, 1:1 + K] / np.maximum(N, 1e-12)[:, None]
    var = np.maximum(X[:, 1 + K:] / np.maximum(N, 1e-12)[:, None] - mean ** 2, 0.0)
    m, v = mean[rows], var[rows]  # (n, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        shape = np.where(v > 0, m * m / v, 0.0)
        scale = np.where(m > 0, v / m, 0.0)
    mem = np.where(v > 1e-12 * np.maximum(m * m, 1e-300), rng.gamma(np.maximum(shape, 1e-9), 1.0) * scale, m)
    mem = np.where(m > 0, mem, 0.0)
    return {"group": group, "clock": rng.standard_exponential(agents).astype(np.float32),
            "memory": np.ascontiguousarray(mem.T, dtype=np.float32),
            "last_purchase": np.where(bought, -(10**6), -1).astype(np.int32),
            "weight": st.population / agents}

"""Common random numbers for the agent engine: counter-based draws so that plans share every random number.

:class:`CRNSimulation` is a :class:`~journeysim.engine.simulation.Simulation` whose two random
hooks, ``_touch`` (who a channel reaches) and ``_move`` (which edge a mover takes, and when its
next clock rings), draw their uniforms from a hash of (seed, agent, how many such draws this agent
has had, purpose) instead of from a shared stream. An agent's draws then do not depend on what
happened to other agents, so two plans differ only where the plans make them differ: the
difference of two runs has far less noise than two independent runs (used by agent forecasts,
``journeysim.planning.forecasting``, and the attribution ground truth, ``journeysim.paths.groundtruth``).
"""

from __future__ import annotations

import numpy as np

from journeysim.engine import _kernels
from journeysim.engine.simulation import Simulation

__all__ = ['CRNSimulation']


# --------------------------------------------------------------------------------------------
# counter-based draws (splitmix64 finaliser)

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))


def _mix(z: np.ndarray) -> np.ndarray:
    """The splitmix64 output function, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = z + _GAMMA
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _uniform(key: int, agent: np.ndarray, count: np.ndarray, purpose: int) -> np.ndarray:
    """Uniforms in (0, 1), one per ``(agent, count)``, fixed by ``key`` and ``purpose``."""
    with np.errstate(over="ignore"):
        a = _mix(agent.astype(np.uint64) * np.uint64(2) + np.uint64(purpose) + np.uint64(key))
        z = _mix(a ^ (count.astype(np.uint64) * _GAMMA))
    return ((z >> _S11).astype(np.float64) + 0.5) * 2.0**-53


class _AgentDraws:
    """Stands in for the journey stream in one call of the engine's ``_move``: the uniforms and
    exponential clocks of the movers, keyed by agent and by how many moves the agent made."""

    def __init__(self, key: int, movers: np.ndarray, count: np.ndarray):
        self._key = key
        self._movers = movers
        self._count = count[movers]

    def random(self, size: int, dtype=np.float64) -> np.ndarray:
        return _uniform(self._key, self._movers, self._count, 0).astype(dtype, copy=False)

    def standard_exponential(self, size: int, dtype=np.float64) -> np.ndarray:
        return (-np.log(_uniform(self._key, self._movers, self._count, 1))).astype(dtype, copy=False)


class CRNSimulation(Simulation):
    """The agent engine with common random numbers kept agent by agent.

    Same parameters, model and outputs as :class:`~journeysim.engine.simulation.Simulation`; only the
    random numbers of the journey moves and of the choice of touched agents are keyed (see the
    module documentation), so that two runs of the same seed and replication that differ in one
    channel differ because of the channel.

    Examples
    --------
    >>> from journeysim.model.scenario import load_scenario
    >>> sc = load_scenario({"market": {"population": 1e4, "agents": 1000, "weeks": 3}})
    >>> a = CRNSimulation(sc, seed=1).run().purchases.sum().item()
    >>> b = CRNSimulation(sc, seed=1).run().purchases.sum().item()
    >>> a == b
    True
    """

    def _init_state(self):
        super()._init_state()
        self._moves = np.zeros(self._N, np.uint32)
        self._journey_key = int(self._streams["crn:journey"].integers(0, 2**63))
        self._delivery_entropy = int(self._streams["crn:delivery"].integers(0, 2**63))

    def _move(self, movers, base_eff, B, rng, week):
        super()._move(movers, base_eff, B, _AgentDraws(self._journey_key, movers, self._moves), week)
        self._moves[movers] += np.uint32(1)

    def _touch(self, k: int, rng, w, m: int, share: float, week: int, keep: bool):
        # Candidates are drawn among all agents (no pool: a pool would depend on the stages) from
        # the generator of (source k, day), whose i-th pair of uniforms is the i-th candidate
        # and its acceptance draw however the batches fall.
        reached, bit = self._reached_bit(k, week)
        mem_k, val = self.memory[k], self._q[k] / self._scale[k]
        flat = bool(np.all(w == 1))
        ss = np.random.SeedSequence(self._delivery_entropy, spawn_key=(k, int(self.env.now)))
        gen = np.random.Generator(np.random.PCG64(ss))
        n_agents = self._N
        touched = []
        need, fresh = m, 0
        while need > 0:
            n_cand = need if flat else int(need / share * 1.1) + 32
            u = gen.random((n_cand, 2))
            cand = np.minimum((u[:, 0] * n_agents).astype(self._index_type), n_agents - 1)
            acc = None if flat else u[:, 1].astype(np.float32)
            got, f = _kernels.deliver(cand, acc, self.group, w, need, mem_k, reached, bit, val, self.use_numba)
            need -= got
            fresh += f
            if keep:
                touched.append(cand[:got])
        return (np.concatenate(touched) if keep else None), fresh

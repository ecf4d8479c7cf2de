"""The agent engine's event log: every touch, transition and purchase, in columnar arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ['EventLog']


class EventLog:
    """Individual journeys of a sample of agents: touches, stage moves, purchases.

    Columns: ``agent``, ``day``, ``kind`` (0 touch, 1 move, 2 purchase), ``source`` (channel
    index for touches, ``-1`` otherwise), ``src``/``dst`` stage (moves), ``value`` (purchases).
    Bounded by ``max_events``; past that, logging stops and ``truncated`` is set.
    """

    KINDS = ("touch", "move", "purchase")

    def __init__(self, n_logged: int, max_events: int):
        self.n_logged = n_logged
        self.max_events = max_events
        self.truncated = False
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self._size = 0

    def add(self, agent, day, kind, source=-1, src=-1, dst=-1, value=0.0):
        agent = np.asarray(agent, dtype=np.int32)
        n = agent.size
        if n == 0 or self.truncated:
            return
        if self._size + n > self.max_events:
            self.truncated = True
            return

        def col(x, dtype):
            return np.broadcast_to(np.asarray(x, dtype=dtype), (n,)).copy()

        self._chunks.append((agent, col(day, np.int32), col(kind, np.int8), col(source, np.int16),
                             col(src, np.int16), col(dst, np.int16), col(value, np.float32)))
        self._size += n

    def to_frame(self, sources: tuple[str, ...], stages: tuple[str, ...], start) -> Any:
        """The log as a pandas DataFrame with readable columns, sorted by agent and day."""
        import pandas as pd

        names = ("agent", "day", "kind", "source", "src", "dst", "value")
        if self._chunks:
            cols = [np.concatenate([c[i] for c in self._chunks]) for i in range(len(names))]
        else:
            cols = [np.zeros(0, dt) for dt in (np.int32, np.int32, np.int8, np.int16, np.int16, np.int16, np.float32)]
        d = dict(zip(names, cols))
        # stable sort by (agent, day), keeping the in-day order touch -> move -> purchase
        order = np.lexsort((d["kind"], d["day"], d["agent"]))
        d = {k: v[order] for k, v in d.items()}

        def cat(codes, labels):
            return pd.Categorical.from_codes(np.where(codes >= 0, codes, -1), categories=list(labels))

        return pd.DataFrame({
            "agent": d["agent"],
            "day": d["day"],
            "date": pd.Timestamp(start) + pd.to_timedelta(d["day"], unit="D"),
            "kind": cat(d["kind"], self.KINDS),
            "channel": cat(d["source"], sources),
            "from_stage": cat(d["src"], stages),
            "to_stage": cat(d["dst"], stages),
            "value": d["value"].astype(float),
        })

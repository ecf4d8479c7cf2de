"""Named random streams derived from one seed.

Each stream is keyed by a *name* (``"channel:tv"``, ``"journey"``) and optional integer
coordinates (a replication, a posterior draw), never by creation order. Adding a channel, or
changing one channel's spend, leaves every other stream's numbers as they were: two plans run
with common random numbers and their difference is the plan's effect.

>>> a = stream(7, "channel:tv").random()
>>> b = stream(7, "channel:tv").random()
>>> a == b
True
>>> stream(7, "channel:tv").random() == stream(7, "channel:search").random()
False
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ['stream', 'Streams']


def _key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def stream(seed: int, name: str, *coords: int) -> np.random.Generator:
    """The generator for ``name`` (and coordinates) under ``seed``."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(_key(name), *map(int, coords)))
    return np.random.Generator(np.random.PCG64(ss))


class Streams:
    """Lazily created named streams for one run (``seed`` plus fixed coordinates)."""

    def __init__(self, seed: int, *coords: int):
        self.seed = int(seed)
        self.coords = tuple(int(c) for c in coords)
        self._cache: dict[str, np.random.Generator] = {}

    def __getitem__(self, name: str) -> np.random.Generator:
        g = self._cache.get(name)
        if g is None:
            g = self._cache[name] = stream(self.seed, name, *self.coords)
        return g

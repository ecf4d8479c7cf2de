"""How many workers this machine has for parallel runs."""

from __future__ import annotations

import os

__all__ = ['default_workers']


def default_workers() -> int:
    """Cores this process may use (``os.sched_getaffinity`` where available, else ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)

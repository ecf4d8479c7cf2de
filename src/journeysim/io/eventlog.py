"""Event logs of individual journeys: save and load as Parquet (columnar)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from journeysim._util.files import atomic_path
from journeysim.errors import InputError

__all__ = ['save_events', 'load_events']


def save_events(events: pd.DataFrame, path: str | Path) -> None:
    """Write an event log (from :meth:`journeysim.engine.simulation.Simulation.events`) as Parquet, atomically."""
    with atomic_path(path) as tmp:
        events.to_parquet(tmp, index=False)


def load_events(path: str | Path) -> pd.DataFrame:
    """Read an event log written by :func:`save_events`."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", str(path))
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types
        raise InputError(f"not a readable Parquet event log: {exc}", str(path)) from None

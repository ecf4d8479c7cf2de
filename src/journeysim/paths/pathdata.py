"""A path table as arrays for the attribution methods: paths as channel-index sequences, conversions and their value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from journeysim.errors import InputError, did_you_mean
from journeysim.io.pathtable import SEPARATOR, check_path_table

Measure = Literal["conversions", "value"]
Seed = int | np.random.Generator | None


# --------------------------------------------------------------------------------------------
# shared preparation


@dataclass(frozen=True)
class _PathData:
    """A path table as flat integer arrays (what every method works on)."""

    channels: np.ndarray  # sorted channel names (object array of str)
    codes: np.ndarray  # channel code of every touch, path after path
    offsets: np.ndarray  # touches of path p are codes[offsets[p]:offsets[p + 1]]
    conversions: np.ndarray
    value: np.ndarray
    null: np.ndarray

    @property
    def n_paths(self) -> int:
        return int(self.conversions.size)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def path_of_touch(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_paths), self.lengths)

    def weights(self, measure: Measure) -> np.ndarray:
        return self.value if measure == "value" else self.conversions

    def series(self, values: np.ndarray, name: str) -> pd.Series:
        index = pd.Index(self.channels.tolist(), name="channel", dtype=str)
        return pd.Series(np.asarray(values, dtype=np.float64), index=index, name=name)


def prepare_paths(table: pd.DataFrame | _PathData) -> _PathData:
    """Validate a path table and turn it into flat arrays."""
    if isinstance(table, _PathData):
        return table
    clean = check_path_table(table)
    if len(clean) == 0:
        raise InputError("path table has no rows: nothing to attribute", where="path table")
    tokens = clean["path"].str.split(SEPARATOR, regex=False).explode()
    lengths = np.bincount(tokens.index.to_numpy(), minlength=len(clean))
    names = tokens.to_numpy(dtype=object)
    channels, codes = np.unique(names, return_inverse=True)
    offsets = np.zeros(len(clean) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return _PathData(
        channels=channels.astype(object),
        codes=codes.astype(np.int64).ravel(),
        offsets=offsets,
        conversions=clean["total_conversions"].to_numpy(dtype=np.float64),
        value=clean["total_conversion_value"].to_numpy(dtype=np.float64),
        null=clean["total_null"].to_numpy(dtype=np.float64),
    )


def check_measure(measure: str) -> None:
    if measure not in ("conversions", "value"):
        raise InputError(
            f"measure must be 'conversions' or 'value', got {measure!r}"
            f"{did_you_mean(measure, ['conversions', 'value'])}",
            where="measure",
        )

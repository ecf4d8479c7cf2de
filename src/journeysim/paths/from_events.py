"""Path tables from an agent run's event log: one row per converting or non-converting journey."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from journeysim.errors import InputError, did_you_mean
from journeysim.io.pathtable import (
    DIRECT,
    EVENT_KINDS,
    SEPARATOR,
    make_table,
)

__all__ = ['paths_from_events']


# --------------------------------------------------------------------------------------------
# event log -> path table


def _event_columns(events: pd.DataFrame | Mapping[str, Any]) -> dict[str, pd.Series]:
    """Return the event columns as equal-length Series with a RangeIndex, or raise."""
    if isinstance(events, pd.DataFrame):
        cols = {str(c).strip(): events[c].reset_index(drop=True) for c in events.columns}
    elif isinstance(events, Mapping):
        cols = {}
        for key, value in events.items():
            arr = value if isinstance(value, pd.Series) else np.asarray(value)
            if arr.ndim != 1:
                raise InputError(
                    f"expected a 1-D array, got shape {arr.shape}", where=f"events[{key!r}]"
                )
            cols[str(key).strip()] = pd.Series(arr).reset_index(drop=True)
        lengths = {k: len(v) for k, v in cols.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"columns have different lengths: {lengths}", where="events")
    else:
        raise InputError(
            f"expected a DataFrame or a dict of arrays, got {type(events).__name__}",
            where="events",
        )
    if "time" not in cols and "day" in cols:  # the engine's event log calls it "day"
        cols["time"] = cols["day"]
    for name in ("agent", "time", "kind"):
        if name not in cols:
            raise InputError(
                f"missing column {name!r}{did_you_mean(name, cols)}; found {sorted(cols)}",
                where="events",
            )
    return cols


def _bad_event(mask: np.ndarray, column: str, message: str) -> None:
    """Raise naming the first event (0-based position) where ``mask`` holds."""
    bad = np.flatnonzero(mask)
    if bad.size:
        more = f" ({bad.size - 1} more such rows)" if bad.size > 1 else ""
        raise InputError(
            message + more, where=f"events, row {int(bad[0])} (0-based position), column {column}"
        )


def _categories(col: pd.Series) -> tuple[np.ndarray, list[str | None]]:
    """Factorize a text column: codes (-1 for missing) and stripped labels (None if not text).

    Only the distinct values are inspected in Python, so this is fast for long logs with few
    distinct kinds and channels.
    """
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    raw = [u.strip() if isinstance(u, str) else None for u in list(uniques)]
    labels: list[str | None] = []
    remap = np.empty(len(raw) + 1, dtype=np.int64)
    remap[-1] = -1
    seen: dict[str | None, int] = {}
    for i, label in enumerate(raw):
        if label not in seen:
            seen[label] = len(labels)
            labels.append(label)
        remap[i] = seen[label]
    return remap[codes], labels


def _numbers(col: pd.Series) -> np.ndarray:
    """Column as float64, NaN where missing or not a number."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(col.astype(object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )


def _sequence_ids(codes: np.ndarray, starts: np.ndarray, lengths: np.ndarray, base: int) -> np.ndarray:
    """Give equal code sequences equal ids, exactly, without a Python loop over sequences.

    The sequences (``codes[starts[j] : starts[j] + lengths[j]]``) are inserted into a trie one
    level at a time: at level ``k`` every sequence longer than ``k`` gets the id of its prefix of
    length ``k + 1`` (``np.unique`` of ``(parent id, code)`` pairs). Two sequences are equal iff
    they have the same length and the same id at their last level.
    """
    node = np.full(starts.size, -1, dtype=np.int64)
    for k in range(int(lengths.max(initial=0))):
        alive = np.flatnonzero(lengths > k)
        key = (node[alive] + 1) * base + codes[starts[alive] + k]
        _, node[alive] = np.unique(key, return_inverse=True)
    _, ids = np.unique(np.stack([lengths, node]), axis=1, return_inverse=True)
    return ids.ravel()


def paths_from_events(
    events: pd.DataFrame | Mapping[str, Any], *, per_purchase: bool = False
) -> pd.DataFrame:
    """Turn an event log into a path table.

    Parameters
    ----------
    events
        A DataFrame, or a dict of equal-length 1-D arrays, with columns ``agent`` (id),
        ``time`` (number; a column ``day`` is used when there is no ``time``, as in
        :meth:`journeysim.engine.simulation.Simulation.events`), ``kind`` (``"touch"``, ``"move"`` or ``"purchase"``), ``channel``
        (needed for touches) and ``value`` (purchase revenue; 0 when the column is absent).
        ``move`` events are ignored.
    per_purchase
        ``False`` (default): one journey per agent, made of its touches up to its *first*
        purchase (a converting path whose value is that purchase's value); an agent with
        touches and no purchase gives a null path; later events are ignored.
        ``True``: every purchase closes a converting path and the touches after it start a new
        journey; touches after the last purchase give a null path.

    Returns
    -------
    pandas.DataFrame
        A path table (:data:`PATH_COLUMNS`) sorted by path. A purchase with no touch before it
        (in its journey) has the path ``"(direct)"``.

    Raises
    ------
    InputError
        For a missing column, an unknown event kind, a touch without a channel (or whose channel
        contains ``>``), a missing or non-numeric time, a missing or negative purchase value.
        The message names the column and the event's 0-based position in the log.

    Notes
    -----
    Events are ordered by agent, then time; at equal times a touch comes before a purchase
    (a touch on the day of purchase counts towards it), then the order of the log. The work is
    vectorised (sorts, cumulative sums, and a level-by-level trie of the channel sequences to find
    equal paths exactly), and only the *distinct* paths are turned into strings, so logs of
    millions of events take seconds.

    Examples
    --------
    >>> events = {
    ...     "agent": [1, 1, 1, 2, 3],
    ...     "time": [0, 2, 3, 1, 4],
    ...     "kind": ["touch", "touch", "purchase", "touch", "purchase"],
    ...     "channel": ["tv", "search", "", "tv", ""],
    ...     "value": [0, 0, 50.0, 0, 20.0],
    ... }
    >>> paths_from_events(events)
              path  total_conversions  total_conversion_value  total_null
    0     (direct)                1.0                    20.0         0.0
    1           tv                0.0                     0.0         1.0
    2  tv > search                1.0                    50.0         0.0
    """
    cols = _event_columns(events)
    n = len(cols["agent"])

    agent_codes, _ = pd.factorize(cols["agent"], use_na_sentinel=True)
    _bad_event(agent_codes < 0, "agent", "missing agent id")

    time = _numbers(cols["time"])
    _bad_event(~np.isfinite(time), "time", "missing, non-numeric or infinite time")

    kind_codes, kind_labels = _categories(cols["kind"])
    _bad_event(kind_codes < 0, "kind", "missing event kind")
    for i, label in enumerate(kind_labels):
        if label not in EVENT_KINDS:
            hint = did_you_mean(label, EVENT_KINDS) if label is not None else ""
            _bad_event(
                kind_codes == i,
                "kind",
                f"unknown event kind {label!r}{hint}; expected one of {', '.join(EVENT_KINDS)}",
            )
    lookup = {label: i for i, label in enumerate(kind_labels)}
    is_touch = kind_codes == lookup.get("touch", -2)
    is_purchase = kind_codes == lookup.get("purchase", -2)

    if is_touch.any() and "channel" not in cols:
        raise InputError(
            f"missing column 'channel' (needed for touches){did_you_mean('channel', cols)}",
            where="events",
        )
    channel_codes = np.full(n, -1, dtype=np.int64)
    channel_labels: list[str | None] = []
    if "channel" in cols:
        channel_codes, channel_labels = _categories(cols["channel"])
        for i, label in enumerate(channel_labels):
            this = is_touch & (channel_codes == i)
            if label is None or label == "":
                _bad_event(this, "channel", "touch without a channel")
            elif ">" in label:
                _bad_event(this, "channel", f"channel {label!r} contains '>', the path separator")
            elif label == DIRECT:
                _bad_event(this, "channel", f"channel name {DIRECT!r} is reserved")
        _bad_event(is_touch & (channel_codes < 0), "channel", "touch without a channel")

    value = np.zeros(n, dtype=np.float64)
    if "value" in cols:
        value = _numbers(cols["value"])
        _bad_event(is_purchase & ~np.isfinite(value), "value", "missing or non-numeric purchase value")
        _bad_event(is_purchase & (value < 0), "value", "negative purchase value")

    # keep touches and purchases; order by agent, time, touch-before-purchase, log order
    idx = np.flatnonzero(is_touch | is_purchase)
    if idx.size == 0:
        return make_table([], [], [], [])
    purchase = is_purchase[idx].astype(np.int64)
    order = np.lexsort((idx, purchase, time[idx], agent_codes[idx]))
    idx = idx[order]
    purchase = purchase[order]
    agent = agent_codes[idx]
    m = idx.size

    # segment = number of earlier purchases of the same agent; purchase k closes segment k
    new_agent = np.empty(m, dtype=bool)
    new_agent[0] = True
    np.not_equal(agent[1:], agent[:-1], out=new_agent[1:])
    inclusive = np.cumsum(purchase)
    block_start = np.maximum.accumulate(np.where(new_agent, np.arange(m), 0))
    segment = inclusive - purchase - (inclusive[block_start] - purchase[block_start])
    if not per_purchase:
        first = segment == 0
        idx, purchase, agent, segment = idx[first], purchase[first], agent[first], segment[first]
        m = idx.size

    # journeys are contiguous runs of equal (agent, segment); a purchase ends its journey
    boundary = np.empty(m, dtype=bool)
    boundary[0] = True
    boundary[1:] = (agent[1:] != agent[:-1]) | (segment[1:] != segment[:-1])
    journey = np.cumsum(boundary) - 1
    n_journeys = int(journey[-1]) + 1
    converted = np.zeros(n_journeys, dtype=np.float64)
    converted[journey[purchase == 1]] = 1.0
    revenue = np.zeros(n_journeys, dtype=np.float64)
    revenue[journey[purchase == 1]] = value[idx[purchase == 1]]

    # touches of each journey, in order: find equal sequences, then spell each distinct one once
    touch = purchase == 0
    codes = channel_codes[idx[touch]]
    lengths = np.bincount(journey[touch], minlength=n_journeys)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    seq = _sequence_ids(codes, starts, lengths, max(len(channel_labels), 1))
    _, first_of_seq = np.unique(seq, return_index=True)
    flat = codes.tolist()
    spelled = [
        SEPARATOR.join([channel_labels[c] for c in flat[s : s + n_]]) if n_ else DIRECT  # type: ignore[misc]
        for s, n_ in zip(starts[first_of_seq].tolist(), lengths[first_of_seq].tolist(), strict=True)
    ]
    n_seq = len(spelled)
    table = make_table(
        spelled,
        np.bincount(seq, weights=converted, minlength=n_seq),
        np.bincount(seq, weights=revenue, minlength=n_seq),
        np.bincount(seq, weights=1.0 - converted, minlength=n_seq),
    )
    return table.sort_values("path", ignore_index=True)

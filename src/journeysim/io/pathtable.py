"""Path tables: one row per distinct customer path, the input of path-level attribution.

A *path table* has one row per distinct path and the columns

``path``
    The touchpoints of the path in order, separated by ``" > "`` (``"tv > search > email"``).
    A conversion without any touch is the path ``"(direct)"``. Files may use another separator
    (``->``, ``|``, or ``,`` inside a quoted field): :func:`read_path_table` detects it, or takes it
    as ``path_sep``, and returns the canonical form; a file mixing separators is refused.
``total_conversions``
    How many journeys with this path ended in a conversion.
``total_conversion_value``
    The revenue of those conversions (optional on read: 0 when the column is absent).
``total_null``
    How many journeys with this path ended without a conversion.

This is the format popular attribution tools (ChannelAttribution, most "Markov attribution"
scripts) read and write. Counts are stored as ``float64`` so that weighted or scaled tables work;
they must be finite and non-negative.

Normalisation
    Whitespace around the whole path, around each touchpoint and around every ``>`` is removed,
    so ``" tv>search  >email "`` becomes ``"tv > search > email"``. Whitespace inside a channel
    name (``"paid search"``) is kept; names are case sensitive.
Duplicated paths
    Two rows whose paths are equal after normalisation are *merged* (their counts summed, the
    row kept where the path first appears) with a :class:`~journeysim.JourneysimWarning` naming
    the lines; pass ``duplicates="error"`` to get an :class:`~journeysim.InputError` instead.
Row numbers
    Errors in a CSV file name the *file line* (1-based, the header is line 1, so the first data
    row is line 2), which is what an editor shows.

Examples
--------
>>> import io
>>> table = read_path_table(io.StringIO(
...     "path,total_conversions,total_null\n"
...     "tv > search,3,10\n"
...     " search ,1, 4\n"))
>>> table
          path  total_conversions  total_conversion_value  total_null
0  tv > search                3.0                     0.0        10.0
1       search                1.0                     0.0         4.0
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd

from journeysim._util.files import atomic_path
from journeysim.errors import InputError, JourneysimWarning, did_you_mean

__all__ = ['DIRECT', 'PATH_COLUMNS', 'PATH_SEPARATORS', 'SEPARATOR', 'check_path_table', 'read_path_table', 'write_path_table']


SEPARATOR = " > "
"""Separator between touchpoints in a path string."""

DIRECT = "(direct)"
"""The path of a conversion that had no touch before it."""

PATH_COLUMNS = ("path", "total_conversions", "total_conversion_value", "total_null")
"""Columns of a path table, in the order they are returned and written."""

_REQUIRED = ("path", "total_conversions", "total_null")
_NUMERIC = ("total_conversions", "total_conversion_value", "total_null")
EVENT_KINDS = ("touch", "move", "purchase")
_MAX_LISTED = 5

PathOrBuffer = str | os.PathLike[str] | IO[str] | IO[bytes]
Duplicates = Literal["merge", "error"]


# --------------------------------------------------------------------------------------------
# validation shared by CSV input and DataFrame input


def _listing(positions: np.ndarray, locate: Callable[[int], str]) -> str:
    """``"; also line 7, line 9 and 3 more"`` for the offenders after the first."""
    rest = [locate(int(p)) for p in positions[1 : 1 + _MAX_LISTED]]
    if not rest:
        return ""
    more = len(positions) - 1 - len(rest)
    tail = f" and {more} more" if more > 0 else ""
    return f"; also at {', '.join(rest)}{tail}"


def _numeric_column(
    col: pd.Series, name: str, source: str, locate: Callable[[int], str]
) -> np.ndarray:
    """Parse one count column to finite non-negative float64, or raise naming the first bad row."""
    noun = "value" if name == "total_conversion_value" else "count"
    if pd.api.types.is_bool_dtype(col):
        raise InputError(f"column holds booleans, expected {noun}s", where=f"{source}, column {name}")
    if pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        text = np.where(np.isnan(values), "", col.astype(str).to_numpy(dtype=object))
    else:
        obj = col.astype(object)
        missing = obj.isna().to_numpy()
        text = obj.astype(str).str.strip().to_numpy(dtype=object)
        text[missing] = ""
        values = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    problems = (
        (text == "", "missing {noun}"),
        (np.isnan(values) & (text != ""), "non-numeric {noun} {value!r}"),
        (np.isinf(values), "non-finite {noun} {value!r}"),
        (values < 0, "negative {noun} {value!r} ({noun}s must be >= 0)"),
    )
    for mask, template in problems:
        bad = np.flatnonzero(mask)
        if bad.size:
            first = int(bad[0])
            message = template.format(noun=noun, value=str(text[first]))
            raise InputError(
                message + _listing(bad, locate),
                where=f"{source}, {locate(first)}, column {name}",
            )
    return values


def _normalise_paths(
    col: pd.Series, source: str, locate: Callable[[int], str]
) -> np.ndarray:
    """Validate path strings and normalise their whitespace; return an object array of str."""
    obj = col.astype(object)
    if pd.api.types.is_string_dtype(col):
        bad = np.zeros(0, dtype=np.int64)
    else:
        is_text = obj.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        bad = np.flatnonzero(~is_text & obj.notna().to_numpy())
    if bad.size:
        raise InputError(
            f"path must be a string, got {obj.iloc[bad[0]]!r}" + _listing(bad, locate),
            where=f"{source}, {locate(int(bad[0]))}, column path",
        )
    text = obj.fillna("").astype(str)
    stripped = text.str.strip()
    checks = (
        (stripped == "", "empty path"),
        (text.str.contains(r"[\r\n]", regex=True), "path contains a line break"),
        (
            stripped.str.contains(r"^>|>$|>\s*>", regex=True),
            "empty touchpoint in path {value!r} (two '>' in a row, or a '>' at an end)",
        ),
    )
    for mask, template in checks:
        bad = np.flatnonzero(mask.to_numpy(dtype=bool))
        if bad.size:
            first = int(bad[0])
            raise InputError(
                template.format(value=text.iloc[first]) + _listing(bad, locate),
                where=f"{source}, {locate(first)}, column path",
            )
    normal = stripped.str.replace(r"\s*>\s*", SEPARATOR, regex=True)
    return normal.to_numpy(dtype=object)


#: Separators between touchpoints a path-table file may use; ``None`` (the default of
#: :func:`read_path_table`) detects which one a file uses. ``"->"`` is looked for before ``">"``.
PATH_SEPARATORS = ("->", ">", "|", ",")

# a touchpoint: starts and ends with a letter, digit or _ (any script), with spaces and - . & ' + / inside;
# or a label in parentheses such as (direct)
_TOUCHPOINT = re.compile(r"^(?:\w(?:[\w .&'+/-]*\w)?|\(\w[\w .-]*\))$")


def _separators_in(text: str) -> list[str]:
    found = []
    rest = text
    if "->" in rest:
        found.append("->")
        rest = rest.replace("->", " ")
    for sep in PATH_SEPARATORS[1:]:
        if sep in rest:
            found.append(sep)
    return found


def _split_paths(col: pd.Series, path_sep: str | None, source: str, locate: Callable[[int], str]) -> pd.Series:
    """Paths written with any one separator of :data:`PATH_SEPARATORS` (detected, or ``path_sep``), in
    canonical form ``a > b``; a mixed or unknown separator, or a touchpoint that is no channel name, is an
    :class:`InputError` naming the line."""
    if path_sep is not None and path_sep.strip() not in PATH_SEPARATORS:
        raise InputError(f"unknown path separator {path_sep!r}; use one of "
                         + ", ".join(repr(x) for x in PATH_SEPARATORS), where="--sep")
    texts = [str(v) if isinstance(v, str) else "" for v in col.tolist()]
    used: dict[str, int] = {}
    for i, t in enumerate(texts):
        for sep in _separators_in(t):
            used.setdefault(sep, i)
    if path_sep is None:
        if len(used) > 1:
            (a, i), (b, j) = sorted(used.items(), key=lambda kv: kv[1])[:2]
            raise InputError(f"paths use two separators: {a!r} ({locate(i)}) and {b!r}; write every path with one, "
                             f"or declare it (--sep, read_path_table(path_sep=...))",
                             where=f"{source}, {locate(j)}, column path")
        sep = next(iter(used), ">")
    else:
        sep = path_sep.strip()
        others = {k: v for k, v in used.items() if k != sep}
        if others:
            k, i = min(others.items(), key=lambda kv: kv[1])
            raise InputError(f"path {texts[i].strip()!r} contains {k!r}, but the separator is {sep!r}",
                             where=f"{source}, {locate(i)}, column path")
    out = []
    for i, t in enumerate(texts):
        if not t.strip() or t.strip() == DIRECT:
            out.append(t)
            continue
        parts = [x.strip() for x in t.split(sep)]
        for x in parts:
            if x and not _TOUCHPOINT.match(x):
                hint = " (did the path use '->'? declare the separator with --sep)" if x.endswith("-") else ""
                raise InputError(f"touchpoint {x!r} in path {t.strip()!r} is not a channel name (letters, digits, "
                                 f"spaces and - _ . & ' + / inside){hint}", where=f"{source}, {locate(i)}, column path")
        out.append(" > ".join(parts) if all(parts) else t.replace(sep, ">"))
    return pd.Series(out, index=col.index, dtype=object)


def make_table(path: Any, conv: Any, value: Any, null: Any) -> pd.DataFrame:
    """Assemble a path table with the canonical columns and dtypes."""
    return pd.DataFrame(
        {
            "path": pd.Series(np.asarray(path, dtype=object), dtype=str),
            "total_conversions": np.asarray(conv, dtype=np.float64),
            "total_conversion_value": np.asarray(value, dtype=np.float64),
            "total_null": np.asarray(null, dtype=np.float64),
        }
    )


def _clean(
    raw: pd.DataFrame,
    source: str,
    locate: Callable[[int], str],
    duplicates: Duplicates,
) -> pd.DataFrame:
    """Validate and normalise the rows of ``raw`` (columns already checked)."""
    if duplicates not in ("merge", "error"):
        raise InputError(
            f"duplicates must be 'merge' or 'error', got {duplicates!r}", where="duplicates"
        )
    paths = _normalise_paths(raw["path"], source, locate)
    numbers = {}
    for name in _NUMERIC:
        if name in raw.columns:
            numbers[name] = _numeric_column(raw[name], name, source, locate)
        else:
            numbers[name] = np.zeros(len(raw), dtype=np.float64)
    table = make_table(
        paths, numbers["total_conversions"], numbers["total_conversion_value"], numbers["total_null"]
    )
    dup = table["path"].duplicated(keep=False).to_numpy()
    if dup.any():
        first = int(np.flatnonzero(dup)[0])
        same = np.flatnonzero((table["path"] == table["path"].iloc[first]).to_numpy())
        lines = ", ".join(locate(int(p)) for p in same[:_MAX_LISTED])
        n_paths = table["path"][dup].nunique()
        what = (
            f"path {table['path'].iloc[first]!r} appears {len(same)} times ({lines})"
            + (f"; {n_paths - 1} other paths are duplicated too" if n_paths > 1 else "")
        )
        if duplicates == "error":
            raise InputError(what, where=f"{source}, column path")
        warnings.warn(
            f"{source}: {what}; their counts were summed", JourneysimWarning, stacklevel=3
        )
        table = table.groupby("path", sort=False, as_index=False)[list(_NUMERIC)].sum()
        table = make_table(
            table["path"],
            table["total_conversions"],
            table["total_conversion_value"],
            table["total_null"],
        )
    return table


def _check_columns(names: list[str], source: str, where_header: str) -> None:
    """Raise for duplicated or missing columns; warn for likely misspelt ones."""
    seen: set[str] = set()
    for name in names:
        if name in seen and name in PATH_COLUMNS:
            raise InputError(f"column {name!r} appears twice", where=f"{source}, {where_header}")
        seen.add(name)
    unknown = [n for n in names if n not in PATH_COLUMNS and n != ""]
    for name in _REQUIRED:
        if name not in seen:
            hint = did_you_mean(name, unknown)
            found = ", ".join(repr(n) for n in names) or "none"
            sep_hint = ""
            if len(names) == 1 and any(s in names[0] for s in (";", "\t", "|")):
                sep_hint = " (the file seems to use another separator than ','; pass sep=)"
            raise InputError(
                f"missing column {name!r}{hint}; found columns {found}{sep_hint}",
                where=f"{source}, {where_header}",
            )
    for name in unknown:
        hint = did_you_mean(name, [c for c in PATH_COLUMNS if c not in seen])
        if hint:
            warnings.warn(
                f"{source}: column {name!r} is not a path-table column and is ignored{hint}",
                JourneysimWarning,
                stacklevel=3,
            )


def check_path_table(
    table: pd.DataFrame, *, where: str = "path table", duplicates: Duplicates = "merge"
) -> pd.DataFrame:
    """Validate a path table held in a DataFrame and return it in canonical form.

    Parameters
    ----------
    table
        A DataFrame with columns ``path``, ``total_conversions``, ``total_null`` and optionally
        ``total_conversion_value`` (other columns are ignored).
    where
        How error messages name the table.
    duplicates
        ``"merge"`` (sum the counts of equal paths, with a warning) or ``"error"``.

    Returns
    -------
    pandas.DataFrame
        A new table with exactly the columns :data:`PATH_COLUMNS`, normalised path strings,
        ``float64`` counts and a fresh ``RangeIndex``.

    Raises
    ------
    InputError
        Naming the row (``row 3 (index 7)``: 0-based position and index label) and column.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"path": ["a>b"], "total_conversions": [2], "total_null": [5]})
    >>> check_path_table(df)["path"].tolist()
    ['a > b']
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError(
            f"expected a pandas DataFrame, got {type(table).__name__}", where=where
        )
    names = [str(c).strip() for c in table.columns]
    _check_columns(names, where, "columns")
    raw = table.copy()
    raw.columns = names
    labels = raw.index.tolist()

    def locate(pos: int) -> str:
        return f"row {pos} (index {labels[pos]!r})"

    return _clean(raw.reset_index(drop=True), where, locate, duplicates)


def read_path_table(
    path_or_buffer: PathOrBuffer, *, sep: str = ",", duplicates: Duplicates = "merge",
    path_sep: str | None = None, require_conversions: bool = True,
) -> pd.DataFrame:
    """Read a path table from a CSV file (or an open text or binary buffer).

    Parameters
    ----------
    path_or_buffer
        File name or open file. Files are read as UTF-8 (a byte-order mark is accepted).
    sep
        Field separator.
    path_sep
        Separator between touchpoints in the ``path`` column, one of :data:`PATH_SEPARATORS`
        (``tv > search``, ``tv -> search``, ``tv|search``, ``"tv,search"``); ``None`` detects it.
        A file that mixes separators, or a touchpoint that is no channel name (``display -``), is refused
        naming the line. Paths are returned in the canonical ``a > b`` form.
    require_conversions
        Refuse a table without data rows or whose ``total_conversions`` are all zero (nothing to attribute).
    duplicates
        What to do with paths that appear on several lines: ``"merge"`` sums their counts and
        warns (:class:`~journeysim.JourneysimWarning`), ``"error"`` raises.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PATH_COLUMNS` (``total_conversion_value`` is 0 when the file lacks it),
        one row per distinct path in the order of the file; counts as ``float64``.

    Raises
    ------
    InputError
        For a missing file, a missing column (with a did-you-mean hint), an empty path or
        touchpoint, a missing, non-numeric, infinite or negative count, or (with
        ``duplicates="error"``) a duplicated path. The message names the *file line* (the header
        is line 1) and the column. Blank lines are skipped.

    Examples
    --------
    >>> import io
    >>> csv = "path,total_conversions,total_null\\nemail,2,oops\\n"
    >>> read_path_table(io.StringIO(csv))
    Traceback (most recent call last):
    ...
    journeysim.errors.InputError: <buffer>, line 2, column total_null: non-numeric count 'oops'
    """
    if isinstance(path_or_buffer, (str, os.PathLike)):
        source = str(path_or_buffer)
        file = Path(path_or_buffer)
        if not file.exists():
            raise InputError("file not found", where=source)
        if file.is_dir():
            raise InputError("is a directory, expected a CSV file", where=source)
        src: Any = file
    else:
        source = str(getattr(path_or_buffer, "name", "<buffer>"))
        src = path_or_buffer
    try:
        raw = pd.read_csv(
            src,
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError("file is empty (no header line)", where=source) from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"not a valid CSV file: {exc}".strip(), where=source) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=source) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=source) from exc

    header = [str(v).strip().lstrip("\ufeff").strip() for v in raw.iloc[0].fillna("")]
    _check_columns(header, source, "line 1 (header)")
    body = raw.iloc[1:]
    body.columns = header
    keep = [i for i, name in enumerate(header) if name in PATH_COLUMNS]
    body = body.iloc[:, keep]
    blank = body.apply(lambda c: c.isna() | (c.astype(str).str.strip() == "")).all(axis=1)
    body = body[~blank.to_numpy()]
    lines = body.index.to_numpy() + 1  # read_csv numbers rows from 0 = the header line

    def locate(pos: int) -> str:
        return f"line {lines[pos]}"

    body = body.reset_index(drop=True)
    if require_conversions and len(body) == 0:
        raise InputError("no data rows (only a header): nothing to attribute", where=source)
    body["path"] = _split_paths(body["path"], path_sep, source, locate)
    table = _clean(body, source, locate, duplicates)
    if require_conversions and not table["total_conversions"].sum() > 0:
        what = "every count is 0" if not table["total_null"].sum() > 0 else "no path has a conversion"
        raise InputError(f"{what} (column total_conversions sums to 0): nothing to attribute or fit",
                         where=f"{source}, column total_conversions")
    return table


def write_path_table(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a path table to CSV atomically (a temporary file, then :func:`os.replace`).

    The table is validated first (see :func:`check_path_table`). Counts that are all whole
    numbers are written without a decimal point; other floats are written with enough digits to
    read back exactly.

    Parameters
    ----------
    table
        A path table.
    path
        Output file; its directory must exist.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> df = pd.DataFrame({"path": ["a > b"], "total_conversions": [1.0], "total_null": [2.0]})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = write_path_table(df, pathlib.Path(d) / "paths.csv")
    ...     print(out.read_text().strip())
    path,total_conversions,total_conversion_value,total_null
    a > b,1,0,2
    """
    clean = check_path_table(table)
    out = clean.astype(object)
    for name in _NUMERIC:
        values = clean[name].to_numpy()
        if np.all(np.floor(values) == values) and (values.size == 0 or values.max() < 2**53):
            out[name] = values.astype(np.int64)
        else:
            out[name] = values
    with atomic_path(path, make_dirs=False) as tmp:
        out.to_csv(tmp, index=False, lineterminator="\n")
    return Path(path)

"""Tests of journeysim.io.pathtable: reading, writing and building path tables."""

from __future__ import annotations

import io
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeysim.errors import InputError, JourneysimWarning
from journeysim.io.pathtable import (
    DIRECT,
    PATH_COLUMNS,
    check_path_table,
    read_path_table,
    write_path_table,
)
from journeysim.paths.from_events import paths_from_events

HEADER = "path,total_conversions,total_conversion_value,total_null\n"


def read_text(text: str, **kwargs) -> pd.DataFrame:
    return read_path_table(io.StringIO(text), **kwargs)


# ---------------------------------------------------------------------------------------------
# reading


def test_read_normalises_whitespace_and_types():
    table = read_text(
        "  path , total_conversions,total_null ,total_conversion_value\n"
        "tv>search ,  3 , 10, 120.5\n"
        "\n"
        "  paid search  >   email,0,4,0\n"
    )
    assert list(table.columns) == list(PATH_COLUMNS)
    assert table["path"].tolist() == ["tv > search", "paid search > email"]
    assert table["total_conversions"].tolist() == [3.0, 0.0]
    assert table["total_conversion_value"].tolist() == [120.5, 0.0]
    assert table["total_null"].tolist() == [10.0, 4.0]
    assert all(table[c].dtype == np.float64 for c in PATH_COLUMNS[1:])


def test_conversion_value_is_optional():
    table = read_text("path,total_conversions,total_null\na,1,2\n")
    assert table["total_conversion_value"].tolist() == [0.0]


def test_byte_buffer_with_bom():
    table = read_path_table(io.BytesIO("\ufeffpath,total_conversions,total_null\na,1,2\n".encode()))
    assert table["path"].tolist() == ["a"]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found") as err:
        read_path_table(tmp_path / "nope.csv")
    assert "nope.csv" in str(err.value)


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        # misspelt column: did-you-mean names the column found
        (
            "path,total_conversion,total_null\na,1,2\n",
            "line 1 (header)",
            "missing column 'total_conversions' (did you mean 'total_conversion'?)",
        ),
        # empty path on the second data row = file line 3
        (HEADER + "a,1,0,2\n   ,1,0,2\n", "line 3, column path", "empty path"),
        # a blank line is skipped but still counted in the line numbers
        (HEADER + "a,1,0,2\n\nb,-4,0,2\n", "line 4, column total_conversions", "negative count '-4'"),
        (HEADER + "a,1,0,2\nb,1,0,lots\n", "line 3, column total_null", "non-numeric count 'lots'"),
        (HEADER + "a,1,0,2\nb,1,-3.5,2\n", "line 3, column total_conversion_value", "negative value"),
        (HEADER + "a,1,0,\n", "line 2, column total_null", "missing count"),
        (HEADER + "a,inf,0,1\n", "line 2, column total_conversions", "non-finite count 'inf'"),
        (HEADER + "tv >> search,1,0,2\n", "line 2, column path", "empty touchpoint"),
        (HEADER + "tv > search >,1,0,2\n", "line 2, column path", "empty touchpoint"),
        (HEADER + "a,1,0,2,9\n", "", "not a valid CSV file"),
        ("", "", "file is empty"),
        ("path;total_conversions;total_null\na;1;2\n", "line 1 (header)", "another separator"),
    ],
)
def test_malformed_tables_name_problem_and_place(text, where, problem):
    with pytest.raises(InputError) as err:
        read_text(text)
    message = str(err.value)
    assert problem in message
    assert f"<buffer>, {where}" in message if where else message.startswith("<buffer>")


def test_several_bad_rows_are_listed():
    text = HEADER + "a,x,0,1\nb,1,0,1\nc,y,0,1\nd,z,0,1\n"
    with pytest.raises(InputError, match=r"line 2, column total_conversions: non-numeric count 'x'; also at line 4, line 5"):
        read_text(text)


def test_duplicated_paths_merge_with_warning():
    text = HEADER + "tv > search,1,10,2\nemail,0,0,1\ntv>search ,2,5,3\n"
    with pytest.warns(JourneysimWarning, match=r"'tv > search' appears 2 times \(line 2, line 4\)"):
        table = read_text(text)
    assert table["path"].tolist() == ["tv > search", "email"]
    assert table["total_conversions"].tolist() == [3.0, 0.0]
    assert table["total_conversion_value"].tolist() == [15.0, 0.0]
    assert table["total_null"].tolist() == [5.0, 1.0]


def test_duplicated_paths_can_be_an_error():
    with pytest.raises(InputError, match=r"column path: path 'a' appears 2 times \(line 2, line 3\)"):
        read_text(HEADER + "a,1,0,1\na,1,0,1\n", duplicates="error")


def test_misspelt_extra_column_warns():
    with pytest.warns(JourneysimWarning, match="did you mean 'total_conversion_value'"):
        table = read_text("path,total_conversions,total_null,total_conversion_valeu\na,1,2,3\n")
    assert table["total_conversion_value"].tolist() == [0.0]


def test_check_path_table_names_dataframe_rows():
    df = pd.DataFrame(
        {"path": ["a", "b"], "total_conversions": [1, -1], "total_null": [0, 0]}, index=[10, 11]
    )
    with pytest.raises(InputError, match=r"row 1 \(index 11\), column total_conversions: negative"):
        check_path_table(df)
    with pytest.raises(InputError, match="missing column 'total_null'"):
        check_path_table(df.drop(columns="total_null"))
    with pytest.raises(InputError, match="path must be a string"):
        check_path_table(df.assign(path=[1, 2], total_conversions=[1, 1]))


# ---------------------------------------------------------------------------------------------
# writing


def test_write_then_read_is_exact(tmp_path):
    table = pd.DataFrame(
        {
            "path": ["tv > search", "email", DIRECT],
            "total_conversions": [3.0, 0.5, 1.0],
            "total_conversion_value": [0.1 + 0.2, 0.0, 1e-300],
            "total_null": [10.0, 4.0, 0.0],
        }
    )
    out = write_path_table(table, tmp_path / "paths.csv")
    back = read_path_table(out)
    pd.testing.assert_frame_equal(back, check_path_table(table), check_exact=True)
    assert sorted(os.listdir(tmp_path)) == ["paths.csv"]  # no temporary file left


def test_write_uses_integers_when_whole(tmp_path):
    table = pd.DataFrame({"path": ["a"], "total_conversions": [2.0], "total_null": [5.0]})
    text = write_path_table(table, tmp_path / "p.csv").read_text()
    assert text == "path,total_conversions,total_conversion_value,total_null\na,2,0,5\n"


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "paths.csv"
    target.write_text("old content\n")

    def broken_to_csv(self, path, *args, **kwargs):
        Path(path).write_text("half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    table = pd.DataFrame({"path": ["a"], "total_conversions": [1], "total_null": [1]})
    with pytest.raises(OSError, match="disk full"):
        write_path_table(table, target)
    assert target.read_text() == "old content\n"
    assert sorted(os.listdir(tmp_path)) == ["paths.csv"]


def test_write_into_missing_directory(tmp_path):
    table = pd.DataFrame({"path": ["a"], "total_conversions": [1], "total_null": [1]})
    with pytest.raises(InputError, match="directory does not exist"):
        write_path_table(table, tmp_path / "no" / "paths.csv")


# ---------------------------------------------------------------------------------------------
# event logs


def small_log() -> pd.DataFrame:
    rows = [
        # agent, time, kind, channel, value
        (1, 0.0, "touch", "tv", 0.0),
        (1, 1.0, "move", "", 0.0),
        (1, 2.0, "touch", "search", 0.0),
        (1, 3.0, "purchase", "", 50.0),
        (1, 4.0, "touch", "email", 0.0),
        (1, 5.0, "purchase", "", 30.0),
        (1, 6.0, "touch", "tv", 0.0),
        (2, 1.0, "touch", "tv", 0.0),  # never buys: null path "tv"
        (3, 4.0, "purchase", "", 20.0),  # buys without a touch: "(direct)"
        (4, 2.0, "purchase", "", 10.0),  # touch at the same time counts (touch before purchase)
        (4, 2.0, "touch", "search", 0.0),
        (5, 9.0, "touch", "search", 0.0),  # log not sorted by time
        (5, 1.0, "touch", "tv", 0.0),
        (5, 10.0, "purchase", "", 40.0),
        (6, 0.0, "move", "", 0.0),  # only moves: no journey
    ]
    return pd.DataFrame(rows, columns=["agent", "time", "kind", "channel", "value"])


def as_dict(table: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    return {
        p: (c, v, n)
        for p, c, v, n in zip(
            table["path"],
            table["total_conversions"],
            table["total_conversion_value"],
            table["total_null"],
            strict=True,
        )
    }


def test_paths_from_events_first_purchase():
    table = paths_from_events(small_log())
    assert as_dict(table) == {
        DIRECT: (1.0, 20.0, 0.0),
        "search": (1.0, 10.0, 0.0),
        "tv": (0.0, 0.0, 1.0),
        "tv > search": (2.0, 90.0, 0.0),
    }
    assert table["path"].tolist() == sorted(table["path"])


def test_paths_from_events_per_purchase():
    table = paths_from_events(small_log(), per_purchase=True)
    assert as_dict(table) == {
        DIRECT: (1.0, 20.0, 0.0),
        "email": (1.0, 30.0, 0.0),  # agent 1's second journey
        "search": (1.0, 10.0, 0.0),
        "tv": (0.0, 0.0, 2.0),  # agent 2, and agent 1's touch after its last purchase
        "tv > search": (2.0, 90.0, 0.0),
    }


def test_paths_from_events_accepts_dict_of_arrays():
    log = small_log()
    as_arrays = {c: log[c].to_numpy() for c in log.columns}
    pd.testing.assert_frame_equal(paths_from_events(as_arrays), paths_from_events(log))


def test_paths_from_events_empty_and_moves_only():
    log = small_log().iloc[[1, 14]]
    table = paths_from_events(log)
    assert list(table.columns) == list(PATH_COLUMNS) and len(table) == 0


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.assign(kind=d["kind"].replace("purchase", "purchse")),
         r"row 3 \(0-based position\), column kind: unknown event kind 'purchse' \(did you mean 'purchase'\?\)"),
        (lambda d: d.assign(channel=d["channel"].where(d.index != 2, " ")),
         r"row 2 \(0-based position\), column channel: touch without a channel"),
        (lambda d: d.assign(channel=d["channel"].replace("tv", "tv>radio")), "contains '>'"),
        (lambda d: d.drop(columns="agent"), "missing column 'agent'"),
        (lambda d: d.assign(time=d["time"].astype(object).where(d.index != 4, "soon")),
         r"row 4 \(0-based position\), column time"),
        (lambda d: d.assign(value=-d["value"]), "column value: negative purchase value"),
    ],
)
def test_paths_from_events_errors(change, match):
    with pytest.raises(InputError, match=match):
        paths_from_events(change(small_log()))


def test_paths_from_events_unequal_lengths():
    with pytest.raises(InputError, match="different lengths"):
        paths_from_events({"agent": [1, 2], "time": [0], "kind": ["touch", "touch"], "channel": ["a", "b"]})


def reference_paths(log: pd.DataFrame, per_purchase: bool) -> dict[str, tuple[float, float, float]]:
    """Slow, obvious implementation: one Python loop per agent and event."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    log = log.assign(rank=(log["kind"] == "purchase").astype(int), pos=np.arange(len(log)))
    for _, events in log.sort_values(["agent", "time", "rank", "pos"]).groupby("agent"):
        touches: list[str] = []
        for kind, channel, value in zip(events["kind"], events["channel"], events["value"], strict=True):
            if kind == "touch":
                touches.append(channel)
            elif kind == "purchase":
                row = out[" > ".join(touches) or DIRECT]
                row[0] += 1
                row[1] += value
                touches = []
                if not per_purchase:
                    break
        else:
            if touches:
                out[" > ".join(touches)][2] += 1
    return {k: tuple(v) for k, v in out.items()}


def random_log(n_events: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kind = rng.choice(["touch", "move", "purchase"], size=n_events, p=[0.6, 0.25, 0.15])
    channel = np.where(kind == "touch", rng.choice(["tv", "search", "email", "social"], size=n_events), "")
    return pd.DataFrame(
        {
            "agent": rng.integers(0, n_events // 6, size=n_events),
            "time": rng.integers(0, 30, size=n_events),  # many ties on purpose
            "kind": kind,
            "channel": channel,
            "value": np.where(kind == "purchase", np.round(rng.gamma(2.0, 20.0, size=n_events), 2), 0.0),
        }
    )


@pytest.mark.parametrize("per_purchase", [False, True])
def test_paths_from_events_matches_reference(per_purchase):
    log = random_log(3000, seed=7)
    got = as_dict(paths_from_events(log, per_purchase=per_purchase))
    want = reference_paths(log, per_purchase)
    assert got.keys() == want.keys()
    for path, (c, v, n) in want.items():
        assert got[path][0] == c and got[path][2] == n
        assert got[path][1] == pytest.approx(v, rel=1e-12)


@pytest.mark.parametrize("per_purchase", [False, True])
def test_round_trip_events_table_file(tmp_path, per_purchase):
    table = paths_from_events(random_log(5000, seed=11), per_purchase=per_purchase)
    back = read_path_table(write_path_table(table, tmp_path / "paths.csv"))
    pd.testing.assert_frame_equal(back, table, check_exact=True)


def test_paths_from_events_engine_style_log():
    """Categorical kind/channel and a ``day`` column, as the simulation engine writes them."""
    log = small_log().rename(columns={"time": "day"})
    log["kind"] = log["kind"].astype("category")
    log["channel"] = pd.Categorical(log["channel"].replace("", None), categories=["tv", "search", "email"])
    pd.testing.assert_frame_equal(paths_from_events(log), paths_from_events(small_log()))

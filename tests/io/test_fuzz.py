"""Property tests of the file boundaries (issue 19): observed CSVs, plan files and path tables.

Each malformed example goes through the command line (``validate --data``, ``validate`` of a
scenario listing the plan, ``attribute``) and must give exit status 2, one line naming the file
and the row/line and column (or the key), no traceback and no output. Valid path tables written
with any separator, spacing, unicode names and fractional counts must read back to the same table.
"""

from __future__ import annotations

import csv
import io
import math
import shutil

import numpy as np
import pytest
import yaml
from conftest import SCENARIOS, check_refused
from hypothesis import HealthCheck, given, settings, strategies as st

from journeysim.io.pathtable import read_path_table

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

OBSERVED = (SCENARIOS / "data" / "shop_observed.csv").read_text().splitlines()
HEAD = OBSERVED[0].split(",")
ROWS = len(OBSERVED) - 1


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz_io")
    shutil.copytree(SCENARIOS, d / "scenarios")
    return d / "scenarios"




# --------------------------------------------------------------------------------------------
# observed CSVs


BAD_SPEND = ["abc", "-1", "-0.5", "inf", "-inf", "1e400", "", "1,5", "NaN"]
BAD_COUNT = ["abc", "-3", "inf", "1e400", "2.5", "ten"]
BAD_DATE = ["2025-13-45", "abc", "", "yesterday"]


@st.composite
def broken_cell(draw):
    row = draw(st.integers(1, ROWS))
    col = draw(st.sampled_from(HEAD))
    pool = BAD_DATE if col == "date" else BAD_SPEND if col.startswith("spend_") else BAD_COUNT
    return row, col, draw(st.sampled_from(pool))


@SETTINGS
@given(cell=broken_cell())
def test_a_broken_cell_of_the_observed_csv_is_refused_naming_row_and_column(cell, shop_dir, capsys):
    row, col, value = cell
    lines = [x.split(",") for x in OBSERVED]
    lines[row][HEAD.index(col)] = f'"{value}"' if "," in value else value
    f = shop_dir / "data" / "broken.csv"
    f.write_text("\n".join(",".join(x) for x in lines) + "\n")
    check_refused(["validate", shop_dir / "shop.yaml", "--data", f], capsys, str(f), f"row {row + 1}", col)


@SETTINGS
@given(kind=st.sampled_from(["duplicate", "gap", "order", "six days"]), row=st.integers(2, ROWS))
def test_broken_weeks_are_refused_naming_the_row(kind, row, shop_dir, capsys):
    import datetime as dt

    lines = [x.split(",") for x in OBSERVED]
    prev = dt.date.fromisoformat(lines[row - 1][0])
    new = {"duplicate": prev, "gap": prev + dt.timedelta(14), "order": prev - dt.timedelta(7),
           "six days": prev + dt.timedelta(6)}[kind]
    lines[row][0] = new.isoformat()
    f = shop_dir / "data" / "weeks.csv"
    f.write_text("\n".join(",".join(x) for x in lines) + "\n")
    line = check_refused(["validate", shop_dir / "shop.yaml", "--data", f], capsys, str(f), "column date")
    # (the changed row, or the next one: a week moved on to the next week's date duplicates that one)
    assert f"row {row + 1}," in line or f"row {row + 2}," in line, line


@SETTINGS
@given(change=st.sampled_from(["unknown column", "unknown channel", "owned spend", "no date", "twice", "empty",
                               "header only", "binary"]))
def test_broken_columns_are_refused(change, shop_dir, capsys):
    lines = list(OBSERVED)
    if change == "unknown column":
        lines = [lines[0] + ",weather"] + [x + ",1" for x in lines[1:]]
    elif change == "unknown channel":
        lines = [lines[0] + ",spend_radio"] + [x + ",1" for x in lines[1:]]
    elif change == "owned spend":
        lines = [lines[0] + ",spend_newsletter"] + [x + ",5" for x in lines[1:]]
    elif change == "no date":
        lines = [lines[0].replace("date", "day", 1)] + lines[1:]
    elif change == "twice":
        lines = [lines[0].replace("site_visits", "new_customers")] + lines[1:]
    elif change == "empty":
        lines = []
    elif change == "header only":
        lines = lines[:1]
    f = shop_dir / "data" / "columns.csv"
    if change == "binary":
        f.write_bytes(b"\x00\xff\xfe" * 50)
    else:
        f.write_text("\n".join(lines) + "\n")
    check_refused(["validate", shop_dir / "shop.yaml", "--data", f], capsys, str(f))


# --------------------------------------------------------------------------------------------
# plan files


PAID = ["display", "social", "search"]
BAD_NUMBER = [math.nan, math.inf, -math.inf, -1.0, "lots"]


@st.composite
def broken_plan(draw):
    ch = draw(st.sampled_from(PAID))
    bad = draw(st.sampled_from(BAD_NUMBER))
    kind = draw(st.sampled_from(["weekly", "spend list", "short list", "unknown channel", "owned", "scale", "move",
                                 "total", "two ops", "weeks", "unknown key", "set"]))
    if kind == "weekly":
        return {"weekly": {ch: bad}}, f"weekly.{ch}"
    if kind == "spend list":
        return {"spend": {ch: [1000.0] * 5 + [bad] + [1000.0] * 20}}, f"spend.{ch}"
    if kind == "short list":
        return {"spend": {ch: [1000.0] * draw(st.integers(1, 25))}}, f"spend.{ch}"
    if kind == "unknown channel":
        return {"weekly": {ch + "x": 100.0}}, f"weekly.{ch}x"
    if kind == "owned":
        return {"weekly": {"newsletter": 100.0}}, "'newsletter' is an owned channel"
    if kind == "scale":
        return {"changes": [{"scale": {ch: bad}}]}, f"changes.0.scale.{ch}"
    if kind == "move":
        share = draw(st.sampled_from([1.5, -0.1, math.nan]))
        return {"changes": [{"move": {"from": ch, "to": "search", "share": share}}]}, "changes.0.move.share"
    if kind == "total":
        return {"changes": [{"total": bad}]}, "changes.0.total"
    if kind == "two ops":
        return {"changes": [{"scale": {ch: 1.1}, "total": 1.0}]}, "changes.0"
    if kind == "weeks":
        return {"changes": [{"scale": {ch: 1.1}, "weeks": draw(st.sampled_from([[5, 100], [0, 3], [4, 2]]))}]}, \
            "changes[0].weeks"
    if kind == "set":
        return {"changes": [{"set": {ch: bad}}]}, f"changes.0.set.{ch}"
    return {"weekly": {ch: 100.0}, "wekly": {}}, "wekly"


@SETTINGS
@given(case=broken_plan())
def test_a_broken_plan_file_is_refused_naming_the_key(case, shop_dir, capsys):
    doc, key = case
    plan = shop_dir / "plans" / "broken.yaml"
    plan.write_text(yaml.safe_dump({"name": "broken", **doc}))
    sc = yaml.safe_load((shop_dir / "shop.yaml").read_text())
    sc["plans"] = ["plans/shop_social_up.yaml", "plans/broken.yaml"]
    f = shop_dir / "with_plan.yaml"
    f.write_text(yaml.safe_dump(sc))
    line = check_refused(["validate", f], capsys, "broken.yaml")
    # the key path, or (for a check across keys: "changes.0: scale.display is -1.0") its first and last parts
    parts = key.replace("[0]", ".0").split(".")
    assert key in line or key.replace("[0]", ".0") in line or (parts[0] in line and parts[-1] in line), (key, line)


# --------------------------------------------------------------------------------------------
# path tables


NAMES = ["tv", "search", "paid search", "e-mail", "word_of_mouth", "télé", "ソーシャル", "display2", "a.b"]
SEPS = [" > ", ">", " -> ", "->", "|", " | ", ",", ", "]


@st.composite
def path_table(draw):
    paths = draw(st.lists(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4).map(tuple), min_size=1,
                          max_size=8, unique=True))
    counts = st.one_of(st.integers(0, 1000).map(float), st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 3)))
    conv = [draw(counts) for _ in paths]
    null = [draw(counts) for _ in paths]
    if not sum(conv) > 0:
        conv[0] = 1.0
    return paths, conv, null, draw(st.sampled_from(SEPS))


def write_table(paths, conv, null, sep, *, crlf=False, bom=False) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    w.writerow(["path", "total_conversions", "total_null"])
    for p, c, n in zip(paths, conv, null):
        w.writerow([sep.join(p), repr(c), repr(n)])
    return ("\ufeff" if bom else "") + buf.getvalue()


@SETTINGS
@given(table=path_table(), crlf=st.booleans(), bom=st.booleans(), declared=st.booleans())
def test_a_valid_path_table_reads_back_whatever_the_separator(table, crlf, bom, declared, tmp_path_factory):
    paths, conv, null, sep = table
    f = tmp_path_factory.mktemp("paths") / "paths.csv"
    f.write_bytes(write_table(paths, conv, null, sep, crlf=crlf, bom=bom).encode())
    got = read_path_table(f, path_sep=sep.strip() if declared else None)
    assert got["path"].tolist() == [" > ".join(p) for p in paths]
    np.testing.assert_array_equal(got["total_conversions"].to_numpy(), conv)
    np.testing.assert_array_equal(got["total_null"].to_numpy(), null)


@st.composite
def broken_table(draw):
    paths, conv, null, sep = draw(path_table())
    i = draw(st.integers(0, len(paths) - 1))
    kind = draw(st.sampled_from(["count", "mixed", "dangling", "empty touch", "no conversions", "bad name"]))
    rows = [[sep.join(p), repr(c), repr(n)] for p, c, n in zip(paths, conv, null)]
    where = f"line {i + 2}"
    if kind == "count":
        rows[i][draw(st.sampled_from([1, 2]))] = draw(st.sampled_from(["-1", "abc", "inf", "", "nan"]))
    elif kind == "mixed":
        other = next(s for s in ("|", "->", ">", ",") if s != sep.strip() and not (s == ">" and "->" in sep))
        rows[i][0] = f"tv{other}search{sep}email"
        where = "column path"  # (the line of the second separator's first use)
    elif kind == "dangling":
        rows[i][0] = f"{rows[i][0]}{sep}"
    elif kind == "empty touch":
        rows[i][0] = f"tv{sep}{sep}search"
    elif kind == "bad name":
        rows[i][0] = draw(st.sampled_from(["display -", "tv > - ", "tv > #!", "tv > (", "*"]))
        if sep.strip() != ">":
            rows[i][0] = rows[i][0].replace(">", sep.strip())
    else:
        for r in rows:
            r[1] = "0"
        where = "total_conversions"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([["path", "total_conversions", "total_null"], *rows])
    return buf.getvalue(), where


@SETTINGS
@given(case=broken_table())
def test_a_broken_path_table_is_refused_naming_the_line(case, capsys, tmp_path_factory):
    text, where = case
    d = tmp_path_factory.mktemp("attr")
    f = d / "paths.csv"
    f.write_text(text)
    out = d / "out"
    check_refused(["attribute", f, "--out", out, "--quiet", "--methods", "last"], capsys, str(f), where)
    assert not out.exists()


@SETTINGS
@given(week=st.integers(1, 26), col=st.sampled_from(["spend_display", "spend_social", "spend_search"]),
       bad=st.sampled_from(["inf", "-inf", "nan", "", "-5", "abc", "1e400"]))
def test_a_broken_cell_of_a_plan_csv_is_refused_naming_row_and_column(week, col, bad, shop_dir, capsys):
    rows = [["week", "spend_display", "spend_social", "spend_search"]]
    rows += [[str(w), "1000", "2000", "1500"] for w in range(1, 27)]
    rows[week][rows[0].index(col)] = bad
    plan = shop_dir / "plans" / "broken.csv"
    plan.write_text("\n".join(",".join(r) for r in rows) + "\n")
    sc = yaml.safe_load((shop_dir / "shop.yaml").read_text())
    sc["plans"] = ["plans/broken.csv"]
    f = shop_dir / "with_csv_plan.yaml"
    f.write_text(yaml.safe_dump(sc))
    check_refused(["validate", f], capsys, str(plan), f"row {week + 1}", col)

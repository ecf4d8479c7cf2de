"""The README's command reference is right: every row runs, and writes the files it lists.

The reference table (README.md, "Command line") is parsed: for each row, the files in its
*writes* column outside parentheses must be written, and nothing else may be (files named in
parentheses are written only in the case named). Every verb of the parser must have a row.
Small settings throughout: one fit of the shop example with very few draws (not converged, so the
planning commands get ``--allow-unconverged``), reused by every command that needs a posterior.
About 1.5 minutes on the 2-core machine, most of it the fit's and the backtest's compiling.
"""

from __future__ import annotations

import fnmatch
import os
import re

import pytest
from conftest import REPO, SCENARIOS

from journeysim.cli.main import _EXTRA_VERBS, _register_extras, build_parser, main

SHOP = str(SCENARIOS / "shop.yaml")
FUNNEL = str(SCENARIOS / "funnel3.yaml")


def reference_rows() -> list[dict]:
    """The rows of the README's command table: command text, verb, required and allowed files."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Command line"):]
    section = section[: section.index("\n## ", 3)]
    rows, previous = [], None
    for line in section.splitlines():
        if not line.startswith("| `journeysim "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        command, writes = cells[0], cells[-1]
        first = re.findall(r"`([^`]+)`", command)[0]
        verb = first.split()[1]
        outside = re.sub(r"\([^()]*(\([^()]*\)[^()]*)*\)", "", writes)
        required = set(re.findall(r"`([^`]+)`", outside))
        allowed = set(re.findall(r"`([^`]+)`", writes))
        if writes.startswith("as above") and previous is not None:
            required |= previous["required"]
            allowed |= previous["allowed"]
        row = {"command": first, "verb": verb, "key": verb + (" --scenario" if "--scenario" in first else ""),
               "required": required, "allowed": allowed, "aliases": re.findall(r"`journeysim (\w+)` is the same",
                                                                                 command)}
        rows.append(row)
        previous = row
    return rows


ROWS = reference_rows()


def _verbs() -> set[str]:
    if not _EXTRA_VERBS:
        _register_extras()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    return set(sub.choices)


def test_every_verb_has_a_row_and_every_row_a_verb():
    documented = {r["verb"] for r in ROWS} | {a for r in ROWS for a in r["aliases"]}
    assert documented == _verbs()


def test_forecast_and_compare_are_one_command():
    if not _EXTRA_VERBS:
        _register_extras()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    f, c = sub.choices["forecast"], sub.choices["compare"]
    usage = lambda p, name: " ".join(p.format_usage().replace(name, "X").split())  # noqa: E731
    assert usage(f, "forecast") == usage(c, "compare")
    assert f.get_default("func") is c.get_default("func")
    row = next(r for r in ROWS if r["verb"] == "forecast")
    assert row["aliases"] == ["compare"]


def test_every_file_the_readme_cites_exists():
    text = (REPO / "README.md").read_text()
    cited = set(re.findall(r"`((?:tests|experiments|scenarios|notebooks|src|docs)/[\w./-]+\.(?:py|yaml|csv|png|md))`",
                           text))
    missing = sorted(p for p in cited if not (REPO / p).exists())
    assert not missing


def written(out) -> set[str]:
    return {f + ("/" if (out / f).is_dir() else "") for f in os.listdir(out) if not f.startswith(".")} \
        if out.exists() else set()


def check_row(key: str, out) -> None:
    row = next(r for r in ROWS if r["key"] == key)
    files = written(out)
    required = {f for f in row["required"] if "<" not in f}
    patterns = [re.sub(r"<[^>]+>", "*", f) for f in row["allowed"] if "<" in f]
    allowed = {f.rstrip("/") for f in row["allowed"]} | {f for f in row["allowed"]}
    missing = {f for f in required if f.rstrip("/") not in {g.rstrip("/") for g in files}}
    assert not missing, f"{row['command']}: README says it writes {sorted(missing)}; it wrote {sorted(files)}"
    for p in patterns:
        assert any(fnmatch.fnmatch(f, p) for f in files), (row["command"], p)
    extra = {f for f in files if f.rstrip("/") not in allowed and f not in allowed
             and not any(fnmatch.fnmatch(f, p) for p in patterns)}
    assert not extra, f"{row['command']} writes {sorted(extra)}, which the README does not list"


def test_fit(shop_fit):
    root, out, proc, log = shop_fit
    assert proc.returncode == 0, log
    check_row("fit", out)
    # a quiet terminal: progress as plain lines, no library banner or warning, journeysim's warning on one line
    assert "building and compiling the model" in log and "sampling 2 chains x (30 tuning + 30 draws)" in log
    assert "\r" not in log
    for noise in ("ArviZ", "BLAS", "RuntimeWarning", "FutureWarning", "UserWarning", "warnings.warn"):
        assert noise not in log, log
    assert all(not line.startswith(" " * 4 + "warnings") for line in log.splitlines())
    assert "posterior" in proc.stdout


def test_validate(tmp_path, capsys):
    assert main(["validate", SHOP]) == 0
    assert "valid scenario" in capsys.readouterr().out


def test_run(tmp_path):
    out = tmp_path / "run"
    assert main(["run", FUNNEL, "--engine", "twin", "--weeks", "4", "--out", str(out), "--quiet"]) == 0
    check_row("run", out)
    out2 = tmp_path / "run_log"
    assert main(["run", FUNNEL, "--agents", "1000", "--weeks", "2", "--log-agents", "50", "--out", str(out2),
                 "--quiet"]) == 0
    check_row("run", out2)
    assert (out2 / "events.parquet").exists()


@pytest.mark.parametrize("verb, row", [("forecast", "forecast"), ("compare", "forecast"), ("plan", "plan")])
def test_forecast_compare_and_plan(shop_fit, tmp_path, verb, row):
    # (forecast and compare are one command, documented in one row)
    _, fit, _, _ = shop_fit
    out = tmp_path / verb
    assert main([verb, SHOP, "--posterior", str(fit), "--draws", "40", "--horizon", "8", "--tail", "2",
                 "--allow-unconverged", "--out", str(out), "--quiet"]) == 0
    check_row(row, out)


def test_optimize(shop_fit, tmp_path):
    _, fit, _, _ = shop_fit
    out = tmp_path / "optimize"
    assert main(["optimize", SHOP, "--posterior", str(fit), "--budget", "50000", "--horizon", "8", "--tail", "2",
                 "--draws", "30", "--search-draws", "20", "--allow-unconverged", "--out", str(out), "--quiet"]) == 0
    check_row("optimize", out)


def test_report(shop_fit, tmp_path):
    _, fit, _, _ = shop_fit
    plan = tmp_path / "plan"
    assert main(["plan", SHOP, "--posterior", str(fit), "--draws", "30", "--horizon", "8", "--tail", "1",
                 "--allow-unconverged", "--no-report", "--out", str(plan), "--quiet"]) == 0
    assert not (plan / "report.html").exists()
    out = tmp_path / "report"
    assert main(["report", str(plan), "--fit", str(fit), "--out", str(out / "report.html"), "--quiet"]) == 0
    check_row("report", out)


def test_backtest(shop_backtest):
    check_row("backtest", shop_backtest)


def test_attribute(tmp_path):
    out = tmp_path / "truth"
    assert main(["attribute", "--scenario", FUNNEL, "--agents", "2000", "--weeks", "6", "--replications", "1",
                 "--out", str(out), "--quiet"]) == 0
    check_row("attribute --scenario", out)
    out2 = tmp_path / "paths"
    assert main(["attribute", str(out / "paths.csv"), "--out", str(out2), "--quiet"]) == 0
    check_row("attribute", out2)


def test_sweep(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("engine: twin\nweeks: 4\nspend.display: [0.5, 1.0]\n")
    out = tmp_path / "sweep"
    assert main(["sweep", FUNNEL, "--grid", str(grid), "--out", str(out), "--quiet"]) == 0
    check_row("sweep", out)


def test_check(tmp_path):
    out = tmp_path / "check"
    assert main(["check", SHOP, "--draws", "20", "--out", str(out), "--quiet"]) == 0
    check_row("check", out)

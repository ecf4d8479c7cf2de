"""End-to-end tests of ``journeysim run`` through :func:`journeysim.cli.main.main`."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import xarray as xr
from conftest import SCENARIOS

from journeysim.cli.main import main

FUNNEL = str(SCENARIOS / "funnel3.yaml")
OUTPUTS = {"simulation.nc", "stages.png", "flows.png", "channels.png", "summary.json"}
PNG = b"\x89PNG\r\n\x1a\n"


def no_partial_files(directory) -> bool:
    """No temporary file (``.name.XXXX.tmp``, hidden or not) is left in the directory."""
    return not [f for f in os.listdir(directory) if f.endswith(".tmp")]


def check_outputs(out, *, engine: str, weeks: int, population: float = 200_000):
    assert set(os.listdir(out)) == OUTPUTS
    with xr.open_dataset(out / "simulation.nc", engine="h5netcdf") as ds:
        ds = ds.load()
    assert ds.attrs["engine"] == engine
    assert ds.sizes["time"] == weeks
    for png in ("stages.png", "flows.png", "channels.png"):
        data = (out / png).read_bytes()
        assert data.startswith(PNG) and len(data) > 1000
    s = json.loads((out / "summary.json").read_text())
    # the summary's totals are those of the saved dataset (float64 sums, rtol 1e-9)
    rel = dict(rtol=1e-9)
    np.testing.assert_allclose(s["purchases"], float(ds.purchases.sum()), **rel)
    np.testing.assert_allclose(s["new_customers"] + s["repeat_purchases"], s["purchases"], **rel)
    np.testing.assert_allclose(s["revenue"], float(ds.revenue.sum()), **rel)
    np.testing.assert_allclose(s["spend"], float(ds.spend.sum()), **rel)
    np.testing.assert_allclose(s["spend"], sum(c["spend"] for c in s["by_channel"].values()), **rel)
    np.testing.assert_allclose(s["revenue_per_spend"], s["revenue"] / s["spend"], **rel)
    assert "roas" not in s  # (ROAS means incremental revenue / incremental spend: a forecast's, not a run's)
    np.testing.assert_allclose(sum(s["stage_size_last_week"].values()), population, **rel)
    np.testing.assert_allclose(sum(s["stage_size_first_week"].values()), population, **rel)
    assert s["weeks"] == weeks and s["engine"] == engine
    # funnel3's plan: display 2000 a week in weeks 1-4, 6000 from week 5
    expected_spend = 2000 * min(weeks, 4) + 6000 * max(0, min(weeks, 8) - 4)
    np.testing.assert_allclose(s["by_channel"]["display"]["spend"], expected_spend, **rel)
    assert s["purchases"] > 0 and s["by_channel"]["display"]["impressions"] > 0
    assert no_partial_files(out)
    return ds, s


def test_run_agents_writes_consistent_outputs(out_dir, capsys):
    code = main(["run", FUNNEL, "--agents", "2000", "--weeks", "6", "--seed", "9", "--out", str(out_dir), "--quiet"])
    assert code == 0
    out, err = capsys.readouterr()
    assert out == ""  # --quiet: no table, no progress bar
    ds, s = check_outputs(out_dir, engine="agents", weeks=6)
    assert s["agents"] == 2000 and s["seed"] == 9
    assert ds.attrs["seed"] == 9


def test_run_twin_engine(out_dir):
    assert main(["run", FUNNEL, "--engine", "twin", "--weeks", "6", "--out", str(out_dir), "--quiet"]) == 0
    check_outputs(out_dir, engine="twin", weeks=6)


def test_run_prints_a_table_unless_quiet(out_dir, capsys):
    assert main(["run", FUNNEL, "--engine", "twin", "--weeks", "3", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "purchases" in out and "summary.json" in out


@pytest.mark.parametrize("value, message", [("abc", "'abc' is not a whole number"), ("0", "0 must be > 0"),
                                            ("-3", "-3 must be > 0")])
def test_bad_agents_value_exits_2_with_message(out_dir, capsys, value, message):
    with pytest.raises(SystemExit) as info:
        main(["run", FUNNEL, "--agents", value, "--out", str(out_dir)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --agents" in err and message in err
    assert "Traceback" not in err
    assert not out_dir.exists()


def test_more_agents_than_people_exits_2(out_dir, capsys):
    assert main(["run", FUNNEL, "--agents", "300000", "--out", str(out_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "journeysim run: error:" in err
    assert "agents (300000) cannot exceed population (200000)" in err
    assert not out_dir.exists()


def test_failure_while_writing_leaves_no_partial_file(out_dir, monkeypatch):
    """A plot that fails half-way through writing leaves no output at all: neither its file, nor the
    files written before it, nor a temporary file or staging directory (issue 19)."""
    import journeysim.plots.simulation

    class Broken:
        def savefig(self, path, **kw):
            with open(path, "wb") as f:
                f.write(PNG + b"half a picture")
            raise RuntimeError("disk full")

    monkeypatch.setattr(journeysim.plots.simulation, "plot_flows", lambda ds: Broken())
    with pytest.raises(RuntimeError, match="disk full"):
        main(["run", FUNNEL, "--engine", "twin", "--weeks", "2", "--out", str(out_dir), "--quiet"])
    assert not out_dir.exists()
    assert os.listdir(out_dir.parent) == []  # (no staging directory left beside it)


def test_rerun_replaces_outputs_whole(out_dir):
    args = ["run", FUNNEL, "--engine", "twin", "--out", str(out_dir), "--quiet"]
    assert main(args + ["--weeks", "3"]) == 0
    assert main(args + ["--weeks", "5"]) == 0
    check_outputs(out_dir, engine="twin", weeks=5)


def test_output_into_a_closed_pipe_ends_quietly():
    """``journeysim validate x.yaml | head -1``: the reader stops early; no traceback, status 141."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "journeysim.cli.main", "validate", str(SCENARIOS / "retail.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # (before the command has imported anything: its first write finds the pipe closed)
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 141 and b"Traceback" not in err, err.decode()

"""A quiet terminal: library notices kept out, journeysim's warnings on one line, progress into logs."""

from __future__ import annotations

import io
import logging
import time
import warnings

import numpy as np

from journeysim.cli._terminal import Heartbeat, quiet_terminal
from journeysim.errors import JourneysimWarning


def test_library_warnings_and_notices_do_not_reach_the_terminal(capsys):
    before, level = list(warnings.filters), logging.getLogger("pytensor").level
    with quiet_terminal():
        warnings.warn("\nArviZ is undergoing a major refactor ...", FutureWarning)
        with np.errstate(all="warn"):
            np.array([1.0]) / np.array([0.0])  # (RuntimeWarning: divide by zero)
        logging.getLogger("pytensor.tensor.blas").warning("Using NumPy C-API based implementation for BLAS functions.")
        warnings.warn("a journeysim\nwarning   over lines", JourneysimWarning)
    err = capsys.readouterr().err
    assert err == "warning: a journeysim warning over lines\n"  # (one line, no file name, no source line)
    assert warnings.filters == before and logging.getLogger("pytensor").level == level  # (restored)


def test_library_warnings_come_back_on_request(monkeypatch, capsys):
    monkeypatch.setenv("JOURNEYSIM_LIBRARY_WARNINGS", "1")
    with warnings.catch_warnings(record=True) as caught, quiet_terminal():
        warnings.simplefilter("always")
        warnings.warn("shown", FutureWarning)
    assert [str(w.message) for w in caught] == ["shown"]


def test_heartbeat_writes_plain_lines_when_not_a_terminal():
    log = io.StringIO()  # (not a tty: a log file)
    with Heartbeat("compiling", stream=log, every=0.05) as hb:
        time.sleep(0.18)
        hb.phase("sampling")
        time.sleep(0.12)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert any(line.startswith("   compiling ... ") for line in lines)
    assert "   compiling: done in 0 s" in lines and "   sampling ..." in lines
    assert lines[-1] == "   sampling: done in 0 s"

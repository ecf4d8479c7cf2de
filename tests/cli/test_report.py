"""``journeysim report``: one self-contained HTML page, checked in a real headless Chromium.

The page is built from the outputs of ``plan`` (with a fit), ``optimize`` and ``backtest`` on the
shop example at tiny sizes, loaded in headless Chromium (``--dump-dom`` after the load event: the
page's own check counts the figures and tables that rendered, with a size), and screenshotted to
``experiments/results/report/report.png``. Every number in its tables names the ``summary.json``
and key it shows; each must equal the file's value and read as that value to the shown precision.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REPO, SCENARIOS

from journeysim.cli.main import main
from journeysim.cli.report import build_report

SHOP = str(SCENARIOS / "shop.yaml")
SCREENSHOT = REPO / "experiments" / "results" / "report" / "report.png"
SECTIONS = ["convergence and fit", "funnel over time", "contributions by stage and channel", "plan comparison",
            "response curves", "optimiser allocation", "backtest scores", "warnings"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def run_chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium on this machine (.ci/run installs it: apt-get install -y chromium)")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def planned(shop_fit, shop_backtest, tmp_path_factory):
    """``plan`` (reusing the fit) writes report.html; ``optimize`` into its folder; then ``report`` with all four."""
    _, fit, proc, log = shop_fit
    assert proc.returncode == 0, log
    out = tmp_path_factory.mktemp("report") / "plan"
    assert main(["plan", SHOP, "--posterior", str(fit), "--draws", "40", "--horizon", "8", "--tail", "2",
                 "--allow-unconverged", "--out", str(out), "--quiet"]) == 0
    first = (out / "report.html").read_text()
    assert main(["optimize", SHOP, "--posterior", str(fit), "--budget", "60000", "--horizon", "8", "--tail", "2",
                 "--draws", "30", "--search-draws", "20", "--allow-unconverged", "--out", str(out / "optimize"),
                 "--quiet"]) == 0
    assert main(["report", str(out), "--fit", str(fit), "--backtest", str(shop_backtest), "--quiet"]) == 0
    return out, first, fit, shop_backtest


def test_plan_writes_a_report_that_names_what_is_absent(planned):
    _, first, _, _ = planned
    absent = json.loads(_attr(first, "body", "data-absent"))
    assert absent == ["backtest scores", "optimiser allocation", "response curves"]
    assert "journeysim backtest SCENARIO --out DIR/backtest" in first  # (the command that would add it)
    assert json.loads(_attr(first, "body", "data-sections"))[0] == "convergence and fit"


def test_report_holds_every_section_and_is_self_contained(planned):
    out, _, _, _ = planned
    page = (out / "report.html").read_text()
    assert json.loads(_attr(page, "body", "data-sections")) == SECTIONS
    assert json.loads(_attr(page, "body", "data-absent")) == []
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # (nothing loaded from anywhere)
    assert "<link" not in page and "@import" not in page
    srcs = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(srcs) >= 8 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "did NOT converge" in page and "What to do" in page  # (the tiny fit did not converge; says what to do)


def test_report_renders_in_chromium_and_its_numbers_are_the_summaries(planned, tmp_path):
    out, _, fit, backtest = planned
    url = (out / "report.html").resolve().as_uri()
    dom = run_chromium("--virtual-time-budget=10000", "--dump-dom", url, profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = json.loads(_attr(dom.stdout, "body", "data-rendered"))
    assert rendered["figures"] >= 8 and rendered["figures_ok"] == rendered["figures"], rendered
    assert rendered["tables"] >= 8 and rendered["tables_ok"] == rendered["tables"], rendered
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shot = run_chromium("--window-size=1200,9000", f"--screenshot={SCREENSHOT}", url, profile=tmp_path / "profile")
    assert shot.returncode == 0 and SCREENSHOT.read_bytes().startswith(b"\x89PNG"), shot.stderr[-2000:]

    sources = json.loads(_attr(dom.stdout, "body", "data-sources"))
    assert sorted(sources) == ["backtest", "fit", "forecast", "optimize"]
    summaries = {k: json.loads(_resolve(out, v).read_text()) for k, v in sources.items()}
    assert _resolve(out, sources["fit"]) == (fit / "summary.json").resolve()
    assert _resolve(out, sources["backtest"]) == (backtest / "summary.json").resolve()
    cells = _numbered(dom.stdout)
    assert len(cells) > 60
    seen = set()
    for refs, values, text in cells:
        for (src, path), v in zip(refs, values):
            truth = summaries[src]
            for k in path:
                truth = truth[k]
            assert v == truth, (src, path)  # (the number the page carries is the file's)
            assert _reads_as(text, v), (text, v, src, path)  # (and the page shows it)
            seen.add(src)
    assert seen == {"fit", "forecast", "optimize", "backtest"}
    # the headline: the comparison table shows each plan's P(better) of the summary
    fc = summaries["forecast"]
    for plan, row in fc["comparison"].items():
        assert any(r == [["forecast", ["comparison", plan, "purchases", "prob_better"]]] for r, _, _ in cells)
        assert 0 <= row["purchases"]["prob_better"] <= 1


def test_report_of_a_folder_with_nothing_in_it_is_refused(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "found no output" in capsys.readouterr().err


def test_report_of_a_fit_alone_lists_the_rest_as_absent(shop_fit):
    _, fit, _, _ = shop_fit
    page, info = build_report(fit)
    assert info["sections"] == ["convergence and fit", "warnings"]
    assert set(info["absent"]) == set(SECTIONS) - {"convergence and fit", "warnings"}


# ---------------------------------------------------------------------------------------------
# helpers


def _resolve(out: Path, p: str) -> Path:
    q = Path(p)
    return (q if q.is_absolute() else out / q).resolve()


def _attr(page: str, tag: str, name: str) -> str:
    class P(HTMLParser):
        found = None

        def handle_starttag(self, t, attrs):
            if t == tag and self.found is None:
                self.found = dict(attrs).get(name)

    p = P()
    p.feed(page)
    assert p.found is not None, f"no {name} on <{tag}>"
    return p.found


def _numbered(page: str) -> list[tuple[list, list, str]]:
    """Every element with ``data-src``: (references, values, its text)."""

    class P(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.cells = [], []

        def handle_starttag(self, t, attrs):
            a = dict(attrs)
            self.stack.append([t, a, []] if "data-src" in a else [t, None, None])

        def handle_endtag(self, t):
            while self.stack:
                tag, a, text = self.stack.pop()
                if a is not None:
                    self.cells.append((json.loads(a["data-src"]), json.loads(a["data-values"]), "".join(text)))
                if tag == t:
                    break

        def handle_data(self, data):
            for _, a, text in self.stack:
                if a is not None:
                    text.append(data)

    p = P()
    p.feed(page)
    return p.cells


NUMBER = re.compile(r"[+-]?[€$£¥]?(\d[\d,]*(?:\.\d+)?)(%?)")


def _reads_as(text: str, v) -> bool:
    """Some number in ``text`` is ``v`` to the precision shown (4 significant digits, or the decimals shown)."""
    if v is None:
        return "-" in text
    for m in NUMBER.finditer(text):
        digits = m.group(1).rstrip(",")
        n = float(digits.replace(",", ""))
        if m.group(0).lstrip("€$£¥").startswith("-") or m.group(0).startswith("-"):
            n = -n
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        scale = 100.0 if m.group(2) else 1.0
        if abs(n / scale - float(v)) <= max(0.5 * 10 ** -decimals / scale, 5e-4 * abs(float(v))) + 1e-12:
            return True
    return False

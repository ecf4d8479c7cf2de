"""Regenerate the README's figures in ``docs/figures/`` from the quick-start job.

    python experiments/make_figures.py [--posterior out/shop/fit]

Runs ``journeysim run scenarios/shop.yaml`` (stage sizes) and ``journeysim plan scenarios/shop.yaml``
(fit, posterior predictive check, forecast, plan comparison), then copies the PNGs.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from journeysim.cli.main import main as cli

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--posterior", help="reuse a fit of scenarios/shop.yaml instead of calibrating")
    a = ap.parse_args()
    dest = ROOT / "docs" / "figures"
    dest.mkdir(parents=True, exist_ok=True)
    scenario = str(ROOT / "scenarios" / "shop.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        assert cli(["run", scenario, "--out", str(tmp / "run"), "--quiet"]) == 0
        args = ["plan", scenario, "--out", str(tmp / "plan"), "--quiet"]
        if a.posterior:
            args += ["--posterior", a.posterior]
        assert cli(args) == 0
        shutil.copy(tmp / "run" / "stages.png", dest / "stages.png")
        shutil.copy(tmp / "plan" / "forecast.png", dest / "forecast.png")
        shutil.copy(tmp / "plan" / "comparison.png", dest / "comparison.png")
        ppc = Path(a.posterior) / "ppc.png" if a.posterior else tmp / "plan" / "fit" / "ppc.png"
        shutil.copy(ppc, dest / "ppc.png")
    print(f"wrote {dest}/stages.png, forecast.png, comparison.png, ppc.png")


if __name__ == "__main__":
    main()

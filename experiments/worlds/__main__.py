"""``python -m experiments.worlds OUTDIR --seeds 0 1 2`` writes OUTDIR/<world>/seed<k>/."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import WORLDS, make


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m experiments.worlds", description=__doc__)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=list(WORLDS))
    a = ap.parse_args(argv)
    for name in a.worlds:
        for seed in a.seeds:
            t = time.perf_counter()
            d = make(name, seed).write(a.outdir / name / f"seed{seed}")
            print(f"{name} seed {seed}: {d} ({time.perf_counter() - t:.2f} s)")


if __name__ == "__main__":
    main()

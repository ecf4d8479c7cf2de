"""Benchmark of the path-level attribution methods (a script, not a test).

Builds a synthetic path table of distinct paths over a set of channels with a fixed seed, then
times every method of :mod:`journeysim.paths.attribution` as a user would call it (table in, credits
out, validation and parsing included), plus :func:`journeysim.paths.attribution.attribute` with all of
them at once. Each timing is the best of ``--repeat`` runs.

Usage::

    python experiments/bench_attribution.py                      # 10,000 paths, 12 channels
    python experiments/bench_attribution.py --n-paths 2000 --n-channels 15 --repeat 1
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from journeysim.paths.attribution import DEFAULT_METHODS, attribute, first_touch, last_touch, linear_touch
from journeysim.paths.markov import markov_removal_effects
from journeysim.paths.shapley import shapley_values

CHANNEL_NAMES = (
    "tv", "radio", "search", "social", "display", "email",
    "video", "affiliate", "print", "ooh", "podcast", "influencer",
)


def synthetic_paths(n_paths: int, n_channels: int, seed: int) -> pd.DataFrame:
    """A path table of ``n_paths`` distinct paths over ``n_channels`` channels.

    Path lengths are 1 + geometric (mean about 3.5, at most 12); channels are drawn with unequal
    popularity; each path gets 1 + Poisson(30) journeys, converting with a probability that
    grows with the channels' (random) effects.
    """
    rng = np.random.default_rng(seed)
    names = [CHANNEL_NAMES[i] if i < len(CHANNEL_NAMES) else f"ch{i:02d}" for i in range(n_channels)]
    popularity = rng.dirichlet(np.full(n_channels, 2.0))
    effect = rng.normal(0.0, 0.6, n_channels)
    seen: dict[tuple[int, ...], None] = {}
    while len(seen) < n_paths:
        lengths = np.minimum(1 + rng.geometric(0.4, size=4 * n_paths), 12)
        draws = rng.choice(n_channels, size=int(lengths.sum()), p=popularity)
        for seq in np.split(draws, np.cumsum(lengths)[:-1]):
            seen.setdefault(tuple(seq.tolist()), None)
            if len(seen) == n_paths:
                break
    paths = list(seen)
    logit = np.array([-3.0 + effect[list(set(p))].sum() + 0.1 * len(p) for p in paths])
    rate = 1.0 / (1.0 + np.exp(-logit))
    journeys = 1 + rng.poisson(30, size=n_paths)
    conversions = rng.binomial(journeys, rate)
    value = conversions * rng.gamma(4.0, 25.0, size=n_paths)
    return pd.DataFrame(
        {
            "path": [" > ".join(names[c] for c in p) for p in paths],
            "total_conversions": conversions.astype(float),
            "total_conversion_value": value,
            "total_null": (journeys - conversions).astype(float),
        }
    )


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-paths", type=int, default=10_000)
    parser.add_argument("--n-channels", type=int, default=12)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n-permutations", type=int, default=2000)
    args = parser.parse_args()

    table = synthetic_paths(args.n_paths, args.n_channels, args.seed)
    n_touches = int(table["path"].str.count(" > ").sum() + len(table))
    print(
        f"path table: {len(table):,} distinct paths, {args.n_channels} channels, "
        f"{n_touches:,} touches, {table['total_conversions'].sum():,.0f} conversions, "
        f"{table['total_null'].sum():,.0f} nulls  (seed {args.seed})"
    )
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")

    cases: list[tuple[str, Callable[[], object], str]] = [
        ("first", lambda: first_touch(table), ""),
        ("last", lambda: last_touch(table), ""),
        ("linear", lambda: linear_touch(table), ""),
    ]
    for k in (1, 2, 3):
        res = markov_removal_effects(table, k)
        cases.append(
            (f"markov{k}", lambda k=k: markov_removal_effects(table, k), f"{res.n_states:,} states")
        )
    sh = shapley_values(table, n_permutations=args.n_permutations, seed=args.seed)
    how = "exact" if sh.exact else f"sampled, {sh.n_permutations} permutations"
    cases.append(
        ("shapley", lambda: shapley_values(table, n_permutations=args.n_permutations, seed=args.seed), how)
    )
    cases.append(
        (
            "attribute(all 7)",
            lambda: attribute(table, DEFAULT_METHODS, n_permutations=args.n_permutations, seed=args.seed),
            "one parse, all methods",
        )
    )

    print(f"\n{'method':<18}{'seconds (best of ' + str(args.repeat) + ')':>24}  note")
    print("-" * 60)
    for name, fn, note in cases:
        print(f"{name:<18}{best_of(fn, args.repeat):>24.4f}  {note}")

    credits = attribute(table, DEFAULT_METHODS, n_permutations=args.n_permutations, seed=args.seed)
    total = table["total_conversions"].sum()
    worst = float(np.max(np.abs(credits.sum(axis=0) - total)) / total)
    print(f"\nlargest relative deviation of a method's credit sum from total conversions: {worst:.1e}")
    print("\ncredits (conversions):")
    print(credits.round(1).to_string())


if __name__ == "__main__":
    main()

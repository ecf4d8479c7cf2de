"""Backtests: refit on the first weeks, forecast the held-back weeks with the spend actually run.

The check a user can run on real data, where no true effect is known. Fold ``k`` of ``K`` keeps
the last ``(K - k) * horizon`` weeks back, calibrates on the weeks before them, and predicts the
next ``horizon`` weeks of every observed KPI from the posterior (the twin run over the whole
history with each posterior draw, the KPI's noise included), given the spend actually run then.
Each held-back week is scored against what was observed:

* **CRPS** (continuous ranked probability score, in the KPI's units; lower is better), from the
  predictive draws: ``mean|X - y| - mean|X - X'| / 2``; also relative to the observed mean;
* **coverage**: the share of held-back weeks inside the central 90% predictive interval (a
  well-calibrated forecast has about 90%);
* **error**: the posterior mean against the observed value, as a mean absolute percentage.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from journeysim._util.stats import interval
from journeysim.errors import InputError
from journeysim.io.observed import ObservedData

__all__ = ["head", "crps", "backtest", "score_fold", "MIN_TRAIN_WEEKS"]

#: Fewer training weeks than this leave too little to fit.
MIN_TRAIN_WEEKS = 8


def head(data: ObservedData, weeks: int) -> ObservedData:
    """The first ``weeks`` weeks of observed data (:meth:`ObservedData.head`)."""
    return data.head(weeks)


def crps(draws: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of predictive draws ``(n, W)`` against observations ``(W,)``, per week (sorted-draws formula)."""
    x = np.sort(np.asarray(draws, float), axis=0)
    n = x.shape[0]
    term1 = np.mean(np.abs(x - y[None]), axis=0)
    # E|X - X'| = 2 / n^2 * sum_i (2 i - n - 1) x_(i)  (i = 1..n, sorted)
    w = (2.0 * np.arange(1, n + 1) - n - 1)[:, None]
    term2 = 2.0 * np.sum(w * x, axis=0) / n**2
    return term1 - 0.5 * term2


def score_fold(ppc: xr.Dataset, data: ObservedData, start: int, stop: int) -> dict:
    """Scores of weeks ``start:stop`` per KPI from a posterior predictive over the whole data."""
    out = {}
    for o in data.observations:
        y = o.values[start:stop]
        ok = np.isfinite(y)
        if not ok.any():
            continue
        rep = np.asarray(ppc[f"{o.column}_replicate"].values, float)[:, start:stop][:, ok]
        mu = np.asarray(ppc[f"{o.column}_expected"].values, float)[:, start:stop][:, ok]
        yo = y[ok]
        lo, hi = interval(rep, 0.9, axis=0)
        c = crps(rep, yo)
        scale = float(np.mean(np.abs(yo))) or 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            ape = np.abs(mu.mean(axis=0) - yo) / np.abs(yo)
        out[o.column] = {"weeks": int(ok.sum()), "crps": float(c.mean()), "crps_relative": float(c.mean() / scale),
                         "coverage_90": float(np.mean((yo >= lo) & (yo <= hi))),
                         "mape": float(np.nanmean(ape)) if np.isfinite(ape).any() else float("nan"),
                         "observed": yo.tolist(), "mean": mu.mean(axis=0).tolist(),
                         "lower": lo.tolist(), "upper": hi.tolist(),
                         "dates": [str(d.date()) for d in data.dates[start:stop][ok]]}
    return out


def backtest(scenario, data: ObservedData, *, folds: int = 3, horizon: int = 8, draws: int | None = None,
             tune: int | None = None, chains: int | None = None, seed: int = 0, max_draws: int = 200, progress=None, **fit_kw) -> dict:
    """Rolling-origin backtest: ``folds`` refits, each forecasting the next ``horizon`` weeks.

    Returns ``{"folds": [...], "kpis": {kpi: pooled scores}}``; each fold holds its training
    weeks, the fit's diagnostics and the per-KPI scores of :func:`score_fold`. Sampler settings not
    given come from the scenario's ``fit:`` section, else the defaults (as ``journeysim fit``).
    """
    from journeysim.inference.checks import posterior_predictive
    from journeysim.inference.sampling import calibrate

    if folds < 1 or horizon < 1:
        raise InputError("folds and horizon must be at least 1", "backtest")
    first = data.weeks - folds * horizon
    if first < MIN_TRAIN_WEEKS:
        raise InputError(f"{folds} folds of {horizon} weeks hold back {folds * horizon:,} of the {data.weeks:,} "
                         f"observed weeks; at least {MIN_TRAIN_WEEKS} must remain to fit on (fewer folds or a "
                         f"shorter horizon)", "--folds")
    results = []
    for k in range(folds):
        start = first + k * horizon
        stop = start + horizon
        if progress:
            progress(k, folds, start, stop)
        train = head(data, start)
        fit = calibrate(scenario, train, draws=draws, tune=tune, chains=chains, seed=seed + k, progress=False,
                        **fit_kw)
        ppc = posterior_predictive(scenario, fit, head(data, stop), max_draws=max_draws, seed=seed + k)
        results.append({"fold": k + 1, "train_weeks": start, "test_weeks": [start + 1, stop],
                        "converged": bool(fit.converged), "max_rhat": float(fit.info["max_rhat"]),
                        "divergences": int(fit.info["divergences"]), "seconds": float(fit.info["seconds"]),
                        "kpis": score_fold(ppc, data, start, stop)})
    pooled = {}
    for kpi in {c for r in results for c in r["kpis"]}:
        rows = [r["kpis"][kpi] for r in results if kpi in r["kpis"]]
        n = sum(x["weeks"] for x in rows)
        pooled[kpi] = {"weeks": n,
                       **{m: float(sum(x[m] * x["weeks"] for x in rows) / n)
                          for m in ("crps", "crps_relative", "coverage_90", "mape")}}
    return {"folds": results, "kpis": pooled, "horizon": horizon, "n_folds": folds}

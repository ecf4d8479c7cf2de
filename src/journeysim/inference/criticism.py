"""Model criticism after a fit: what the coverage of the predictive band cannot see.

A wide enough noise term puts any series inside a 90% band, so coverage alone does not show misfit.
:func:`criticize` asks, per observed KPI, how much of the week-to-week variation the fit explains
(R² of the posterior mean against the series), what structure is left in the residuals (lag-1
autocorrelation; the share of the residual variance a yearly seasonal pattern explains), and
whether the fitted noise is far above what measuring that KPI can have. :func:`identification`
asks, per paid channel, whether the data pin its effect down: how much the posterior narrowed the
prior, and whether its spend moved with the season or with another channel's spend (then the data
cannot tell their effects apart, and a forecast that moves that channel rests on the prior).

Both return plain tables (lists of dicts) and a list of warnings in words, for the fit summary and
the comparison table. Thresholds are module constants, stated next to what they guard against.
"""

from __future__ import annotations

import numpy as np

__all__ = ["criticize", "identification", "keyed", "NOISE_CV_MAX", "R2_MIN", "SEASONAL_SHARE_MAX", "PRIOR_SHARE_MAX",
           "SPEND_CORRELATION_MAX"]

#: A count KPI's measurement error (a coefficient of variation) is rarely above 2-5%; a fitted noise
#: far above it is the model absorbing what it cannot explain.
NOISE_CV_MAX = 0.10
#: Below this share of the observed variance explained, the fit is close to a flat line.
R2_MIN = 0.5
#: Above this share of the residual variance explained by a yearly pattern, seasonality is missing.
SEASONAL_SHARE_MAX = 0.25
#: Posterior sd above this share of the prior sd: the data barely moved the prior.
PRIOR_SHARE_MAX = 0.7
#: Above this correlation of a channel's weekly spend with the season or with another channel's.
SPEND_CORRELATION_MAX = 0.8

_YEAR = 365.25 / 7.0  # weeks


def _fourier(weeks: int, order: int = 2) -> np.ndarray:
    t = np.arange(weeks, dtype=float)
    cols = [np.ones(weeks)]
    for k in range(1, order + 1):
        cols += [np.sin(2 * np.pi * k * t / _YEAR), np.cos(2 * np.pi * k * t / _YEAR)]
    return np.column_stack(cols)


def _explained(y: np.ndarray, X: np.ndarray) -> float:
    """Share of the variance of ``y`` explained by a least-squares fit on ``X`` (which holds a constant)."""
    if y.size <= X.shape[1] + 2 or np.var(y) == 0:
        return float("nan")
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return float(1.0 - np.var(y - X @ coef) / np.var(y))


def _lag1(x: np.ndarray) -> float:
    x = x - x.mean()
    d = float(np.dot(x, x))
    return float(np.dot(x[1:], x[:-1]) / d) if d > 0 and x.size > 3 else float("nan")


def keyed(rows: list[dict], key: str) -> dict:
    """The rows of :func:`criticize` or :func:`identification` as a mapping by ``key`` (for ``summary.json``)."""
    return {r[key]: {k: v for k, v in r.items() if k != key} for r in rows}


def criticize(ppc, fit, data) -> tuple[list[dict], list[str]]:
    """Per observed KPI: R², residual lag-1 autocorrelation, seasonal share of the residuals, fitted noise.

    ``ppc`` is :func:`journeysim.inference.checks.posterior_predictive`'s Dataset. Returns the rows
    (``kpi``, ``weeks``, ``r2``, ``residual_autocorrelation``, ``residual_seasonal_share``,
    ``noise_cv``) and the warnings.
    """
    rows, warnings = [], []
    post = fit.idata.posterior
    for obs in data.observations:
        c = obs.column
        y = np.asarray(ppc[f"{c}_observed"].values, float)
        mu = np.asarray(ppc[f"{c}_expected"].mean("draw").values, float)
        ok = np.isfinite(y) & np.isfinite(mu)
        n = int(ok.sum())
        if n < 8:
            continue
        res = y[ok] - mu[ok]
        ss_tot = float(np.sum((y[ok] - y[ok].mean()) ** 2))
        r2 = float(1.0 - np.sum(res**2) / ss_tot) if ss_tot > 0 else float("nan")
        ac = _lag1(res)  # (with gaps: between adjacent observed weeks, an approximation)
        season = _explained(res, _fourier(len(y))[ok]) if n >= 52 else float("nan")
        noise = f"noise_{c}"
        cv = float(post[noise].mean()) if noise in post and obs.likelihood in ("negbin", "normal", "ar1") else float("nan")
        rows.append({"kpi": c, "weeks": n, "r2": r2, "residual_autocorrelation": ac,
                     "residual_seasonal_share": season, "noise_cv": cv})
        if np.isfinite(r2) and r2 < R2_MIN:
            warnings.append(f"{c}: the fit explains {max(r2, 0):.0%} of the week-to-week variation (R²); "
                            f"the band covers the weeks because the noise is wide, not because the model fits")
        if np.isfinite(ac) and abs(ac) > max(0.3, 2.0 / np.sqrt(n)):
            warnings.append(f"{c}: residuals are autocorrelated (lag 1: {ac:+.2f}); something that persists "
                            f"from week to week (demand, seasonality, a trend) is missing from the model")
        if np.isfinite(season) and season > SEASONAL_SHARE_MAX:
            warnings.append(f"{c}: a yearly pattern explains {season:.0%} of the residual variance; the model "
                            f"lacks seasonality, and a channel whose spend follows the season may be "
                            f"credited with it")
        if np.isfinite(cv) and cv > NOISE_CV_MAX:
            warnings.append(f"{c}: fitted noise {cv:.1%} (coefficient of variation), far above the few per cent "
                            f"a measured count has; the model is absorbing misfit as noise")
    return rows, warnings


def identification(scenario, fit, data) -> tuple[list[dict], list[str]]:
    """Per paid channel: prior-to-posterior narrowing of its effect, and how its spend co-moves.

    Returns rows (``channel``, ``posterior_to_prior_sd``, ``season_correlation``,
    ``max_channel_correlation``, ``with``, ``weak``) and warnings naming the weakly identified
    channels.
    """
    st = scenario.structure
    spend = np.asarray(data.plan.aligned(st.channels), float)
    post = fit.idata.posterior
    space = fit.space
    F = _fourier(spend.shape[0])
    rows, warnings = [], []
    paid = [j for j, c in enumerate(st.channels) if st.cost_per_touch[j] > 0]
    for j in paid:
        ch = st.channels[j]
        ratios = []
        for name, prior, kind in zip(space.names, space.priors, space.kinds):
            if kind == "effect" and name.split(".")[1:2] == [ch] and name in post and prior.form != "fixed":
                sd_prior = float(prior.scipy().std())
                if sd_prior > 0 and np.isfinite(sd_prior):
                    ratios.append(float(post[name].std()) / sd_prior)
        ratio = max(ratios) if ratios else float("nan")
        x = spend[:, j]
        season = float(np.sqrt(max(_explained(x, F), 0.0))) if x.std() > 0 and x.size >= 52 else float("nan")
        best, partner = float("nan"), ""
        for k in paid:
            if k != j and x.std() > 0 and spend[:, k].std() > 0:
                r = float(np.corrcoef(x, spend[:, k])[0, 1])
                if not np.isfinite(best) or abs(r) > abs(best):
                    best, partner = r, st.channels[k]
        reasons = []
        if np.isfinite(ratio) and ratio > PRIOR_SHARE_MAX:
            reasons.append(f"the data narrowed its prior only to {ratio:.0%} of its width")
        if np.isfinite(season) and season > SPEND_CORRELATION_MAX:
            reasons.append(f"its spend follows the season (correlation {season:.2f})")
        if np.isfinite(best) and abs(best) > SPEND_CORRELATION_MAX:
            reasons.append(f"its spend moved with {partner}'s (correlation {best:+.2f})")
        rows.append({"channel": ch, "posterior_to_prior_sd": ratio, "season_correlation": season,
                     "max_channel_correlation": best, "with": partner, "weak": bool(reasons)})
        if reasons:
            warnings.append(f"{ch}: effect barely identified: " + "; ".join(reasons)
                            + f". A forecast that moves {ch}'s spend rests on assumptions more than on data")
    return rows, warnings

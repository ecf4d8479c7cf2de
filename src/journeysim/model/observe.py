"""From simulated weekly outputs to what a brand observes, and back (noise models).

:func:`expected_kpi` maps the weekly outputs of any engine (a Dataset, or the twin's arrays inside
the PyMC model) to the expected value of an observed KPI; :func:`sample_kpi` draws observed values
around it with the observation's likelihood. Both calibration and the example-data generators use
them, so simulated data and the likelihood agree by construction.
"""

from __future__ import annotations

import numpy as np

__all__ = ['expected_kpi', 'sample_kpi', 'weekly_arrays', 'NOISE_DEFAULT']


#: Extra noise (coefficient of variation) used when generating example data.
NOISE_DEFAULT = 0.03


def weekly_arrays(ds) -> dict:
    """The Dataset variables :func:`expected_kpi` reads, as numpy arrays (``time`` axis in place)."""
    return {k: ds[k].values for k in ("entries", "stage_size", "purchases", "purchases_new", "referrals", "revenue")}


def expected_kpi(xp, arrays: dict, measures: str, stage_mask, population: float, scale: float = 1.0):
    """Expected weekly value ``(..., W)`` of one KPI.

    Parameters
    ----------
    arrays
        ``entries``/``stage_size`` ``(..., W, P, S)``, ``purchases``/``purchases_new``/``revenue``
        ``(..., W, P)``, ``referrals`` ``(..., W)``.
    measures
        ``entries``, ``share``, ``purchases``, ``new_customers``, ``referrals`` or ``revenue``.
    stage_mask
        ``(S,)`` 0/1 weights of the stages counted (entries, share).
    """
    mask = np.asarray(stage_mask, float)
    if measures == "entries":
        v = xp.sum(arrays["entries"] @ mask, axis=-1)
    elif measures == "share":
        return xp.sum(arrays["stage_size"] @ mask, axis=-1) / population
    elif measures == "purchases":
        v = xp.sum(arrays["purchases"], axis=-1)
    elif measures == "new_customers":
        v = xp.sum(arrays["purchases_new"], axis=-1)
    elif measures == "referrals":
        v = arrays["referrals"]
    elif measures == "revenue":
        v = xp.sum(arrays["revenue"], axis=-1)
    else:
        raise ValueError(measures)
    return v * scale


def sample_kpi(rng: np.random.Generator, mu: np.ndarray, likelihood: str, *, noise: float = NOISE_DEFAULT,
               sample_size=None, persistence: float = 0.5) -> np.ndarray:
    """Draw observed values around expected ``mu`` with a likelihood's noise.

    ``negbin`` and ``normal`` use a coefficient of variation ``noise`` on top of Poisson noise.
    ``ar1``: ``mu * exp(u_t)`` with ``u`` a stationary AR(1) over the last axis (weeks): innovations
    of standard deviation ``noise``, lag-one correlation ``persistence``.
    """
    mu = np.asarray(mu, float)
    if likelihood == "ar1":
        from scipy.signal import lfilter

        rho = float(persistence)
        x = noise * rng.normal(0.0, 1.0, mu.shape)
        x[..., 0] /= np.sqrt(max(1.0 - rho * rho, 1e-12))  # (a stationary start)
        u = lfilter([1.0], [1.0, -rho], x, axis=-1)  # u_t = rho u_{t-1} + x_t
        return np.maximum(mu, 0.0) * np.exp(u)
    if likelihood == "poisson":
        return rng.poisson(np.maximum(mu, 0)).astype(float)
    if likelihood == "negbin":
        # gamma-Poisson mixture: var = mu + noise^2 mu^2
        lam = rng.gamma(1.0 / noise**2, np.maximum(mu, 1e-12) * noise**2)
        return rng.poisson(lam).astype(float)
    if likelihood == "normal":
        return mu + rng.normal(0.0, 1.0, mu.shape) * noise * np.abs(mu)
    if likelihood == "binomial":
        n = np.asarray(sample_size, float)
        k = rng.binomial(n.astype(np.int64), np.clip(mu, 0.0, 1.0))
        return k / n
    raise ValueError(likelihood)

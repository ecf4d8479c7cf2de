"""Delivery curves learned from observed impressions: what a week's spend on a channel buys.

A scenario states a channel's cost per thousand impressions (``cpm``) or per click (``cpc``), but a
brand whose weekly CSV has ``impressions_<channel>`` beside ``spend_<channel>`` knows more: what the
spend actually bought, week by week. For every paid channel with such a column (and no demand cap,
whose delivery curve the likelihood learns with the journey: ``channels.<name>.cap``), the curve

    log impressions_w = a + (1 - g) (log spend_w - log s_ref) + e_w,     e_w ~ Normal(0, sigma)

is fitted to the weeks with both spend and impressions, ``s_ref`` being their geometric mean
spend: the cost per impression at ``s_ref`` is ``s_ref / exp(a + sigma^2 / 2)`` (the mean, not the
median, of what it buys) and ``g`` the elasticity of that cost to spend (0: a constant CPM; 0.2: the
cost per impression rises 15% when spend doubles, as reach gets dearer). ``g`` has a
``Normal(0, PRIOR_SD)`` prior (a conjugate update; ``a`` is flat), so a flat history keeps the CPM
constant and only a clear trend in cost moves it. Forecasts, plans and the optimiser then turn
spend into touches with the learned curve (:meth:`journeysim.model.dynamics.Structure.touches`),
in every engine, instead of the scenario's number; the history itself is replayed with the
impressions observed. ``channels.<name>.delivery: fixed`` keeps the scenario's cost.

The curve's own uncertainty is left out of forecasts: over a year or two of weeks it is a few
percent (:attr:`DeliveryCurve.cost_sd`), small beside the channel's effect's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ['DeliveryCurve', 'learn_delivery', 'with_delivery', 'PRIOR_SD', 'MIN_WEEKS']

#: Prior sd of the elasticity of the cost per impression to spend.
PRIOR_SD = 0.1
#: Weeks with spend and impressions below which a channel keeps the scenario's cost.
MIN_WEEKS = 8
#: The elasticity is kept within these bounds (beyond them a power curve no longer describes buying).
ELASTICITY_BOUNDS = (-0.5, 0.8)


@dataclass(frozen=True)
class DeliveryCurve:
    """A channel's learned delivery curve (see the module's docstring)."""

    channel: str
    cost: float  # cost per touch at the reference spend
    reference: float  # weekly spend of the reference (geometric mean over the weeks fitted)
    elasticity: float  # d log(cost per touch) / d log(spend)
    sigma: float  # weekly residual sd on the log scale
    weeks: int  # weeks fitted
    stated_cost: float  # the scenario's cost per touch
    cost_sd: float  # posterior sd of log cost at the reference

    def cost_at(self, spend: float) -> float:
        """Cost per touch at a weekly spend."""
        return self.cost * (spend / self.reference) ** self.elasticity

    def describe(self, unit: float = 1000.0, label: str = "CPM") -> str:
        """One line for a person: the learned cost, how it moves with spend, against the scenario's."""
        per_doubling = 100.0 * (2.0 ** self.elasticity - 1.0)
        move = ("constant in spend" if abs(per_doubling) < 0.5 else
                f"{per_doubling:+.0f}% per doubling of spend")
        return (f"{label} {self.cost * unit:,.2f} at {self.reference:,.0f} a week, {move} "
                f"(scenario {self.stated_cost * unit:,.2f}; {self.weeks} weeks of impressions, "
                f"weekly scatter {100 * self.sigma:.0f}%)")


def _fit(spend: np.ndarray, imp: np.ndarray) -> tuple[float, float, float, float, float] | None:
    """``(cost at reference, reference, elasticity, sigma, sd of log cost)`` or None (too few weeks)."""
    ok = np.isfinite(spend) & np.isfinite(imp) & (spend > 0) & (imp > 0)
    n = int(ok.sum())
    if n < MIN_WEEKS:
        return None
    x = np.log(spend[ok])
    y = np.log(imp[ok])
    ref = float(np.exp(x.mean()))
    x = x - x.mean()
    a = float(y.mean())
    sxx = float(x @ x)
    if sxx <= 1e-12:  # spend never changed: the slope cannot be learned; a constant CPM
        resid = y - a - x
        sigma = float(np.sqrt(resid @ resid / max(n - 1, 1)))
        g = 0.0
    else:
        b_ols = float(x @ (y - a)) / sxx
        resid = y - a - b_ols * x
        sigma = float(np.sqrt(resid @ resid / max(n - 2, 1)))
        s2 = max(sigma, 1e-6) ** 2
        prec = sxx / s2 + 1.0 / PRIOR_SD ** 2  # slope b = 1 - g, prior b ~ Normal(1, PRIOR_SD)
        b = (sxx * b_ols / s2 + 1.0 / PRIOR_SD ** 2) / prec
        g = float(np.clip(1.0 - b, *ELASTICITY_BOUNDS))
    cost = ref / float(np.exp(a + 0.5 * sigma ** 2))
    return cost, ref, g, sigma, sigma / np.sqrt(n)


def learn_delivery(scenario, data) -> dict[str, DeliveryCurve]:
    """The delivery curves of the scenario's paid, uncapped channels whose data has impressions
    (``channels.<name>.delivery: learned``, the default), by channel."""
    st = scenario.structure
    if data.impressions is None:
        return {}
    spend = data.plan.aligned(st.channels)
    priors = set(scenario.spec.priors)
    out = {}
    for k, c in enumerate(st.channels):
        spec = scenario.spec.channels[c]
        if (st.cost_per_touch[k] <= 0 or spec.cap is not None or f"cap.{c}" in priors
                or spec.delivery != "learned"):
            continue
        fit = _fit(np.asarray(spend[:, k], float), np.asarray(data.impressions[:, k], float))
        if fit is None:
            continue
        cost, ref, g, sigma, sd = fit
        out[c] = DeliveryCurve(c, cost, ref, g, sigma, int(np.isfinite(data.impressions[:, k]).sum()),
                               float(spec.cost_per_touch), sd)
    return out


def with_delivery(structure, curves: dict[str, DeliveryCurve]):
    """The structure buying touches along ``curves`` (the other channels keep their cost)."""
    if not curves:
        return structure
    C = len(structure.channels)
    cost = np.array(structure.cost_per_touch, float)
    g = np.zeros(C) if structure.cost_elasticity is None else np.array(structure.cost_elasticity, float)
    ref = np.ones(C) if structure.spend_reference is None else np.array(structure.spend_reference, float)
    for k, c in enumerate(structure.channels):
        if c in curves:
            cost[k], g[k], ref[k] = curves[c].cost, curves[c].elasticity, curves[c].reference
    return replace(structure, cost_per_touch=cost, cost_elasticity=g, spend_reference=ref,
                   delivery=dict(curves))

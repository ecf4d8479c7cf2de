"""World ``brand_equity``: reach and memory; search harvests demand it does not create.

People compartments (people): ``U0`` no brand memory & never bought, ``M0`` brand memory &
never bought, ``U1`` no memory & bought before, ``M1`` memory & bought before.  Spend in
currency per week; KPIs in people (events) per week; awareness as a share.
"""

from __future__ import annotations

import numpy as np

from .base import SEARCH, World

# per-state parameters, order U0, M0, U1, M1
CHOICE = np.array([0.05, 0.16, 0.18, 0.36])  # P(buy the brand | in market, no search ad)
SEARCHES = np.array([0.22, 0.38, 0.32, 0.48])  # P(search the category/brand | in market)
VISIT = np.array([0.08, 0.25, 0.22, 0.45])  # direct site visits per in-market person


class BrandEquity(World):
    name = "brand_equity"
    code = 101
    effective_channels = ("tv", "social", "search", "display")
    compartments = ("U0", "M0", "U1", "M1")
    # memory decay (per week): half-life ln2/0.035 ~ 20 weeks
    delta = 0.035
    lapse = 0.01  # U1 -> U0 per week (forgotten former buyers)
    beta = np.array([0.25, 0.015, 0.0, 0.008])  # memory encoding per unit effective reach
    act_w = np.array([0.35, 0.15, 0.0, 0.03])  # short activation per unit effective reach
    act_decay = 0.3
    gamma = 0.10  # category intent lift per unit activation
    alpha = 0.15  # brand-choice lift per unit activation
    lift = 0.05  # share of the competitors' buyers a clicked search ad converts
    readme = """
Reach-and-memory world (no journey stages).

* **Media act through reach and frequency.** Weekly impressions give each person a Poisson
  number of exposures with mean `impressions / population`.  TV needs an *effective frequency*
  of 2 (effective reach = P(N >= 2), S-shaped in GRPs); social and display need 1 (concave
  `1 - exp(-k GRP)`).  TV creative wears out with its age on air (refreshed every 13 weeks;
  effectiveness falls from 1 to 0.6).
* **Brand memory is a people stock with a slow decay** (half-life ~20 weeks): effective reach
  encodes memory in people who lack it; memory raises brand choice when the person is in
  market.  On top, a short *activation* stock (decay 0.3/week) lifts category intent and choice.
  TV's effect is large but mostly lagged (months) through memory; a geometric carryover of a few
  weeks on a funnel stage hazard misses most of it.
* **Category demand is exogenous**: the share of the population in market each week follows a
  two-harmonic yearly season, a slow trend and an AR(1) shock.  Purchases happen only among
  in-market people (everyone has the same chance to be in market every week).
* **Search is demand-capped.** Queries = in-market people x search propensity (higher with
  memory); spend buys clicks `Q (1 - exp(-spend / (cpc Q)))`, so spend beyond the query volume
  buys nothing.  A clicked ad converts a share of people who would otherwise have bought a
  competitor; it creates no demand.
* **Confounding trap:** the brand's historical search spend follows its *forecast* of seasonal
  demand, so search spend and purchases move together even where search's marginal effect is
  small.  A model that reads the correlation as causation overrates search.
* Buyers always end in `M1` (purchase creates memory); `U1 -> U0` lapse 1%/week.
  `new_customers` are purchases by never-buyers; `referrals` are the share
  `0.5 * M1/population` of new customers; `site_visits` are search clicks + direct visits of
  in-market people + activation-driven traffic.
"""

    def _build_latent(self, rng):
        T, ph, s = self.T, self.phase, self.s
        self.season = 1 + 0.22 * np.cos(ph - 2 * np.pi * 47 / 52) + 0.07 * np.cos(2 * ph - 2 * np.pi * 20 / 52)
        self.trend = np.exp(0.04 * s / 52)
        eps = np.zeros(T)
        z = rng.normal(0, 0.03, T)
        for t in range(1, T):
            eps[t] = 0.8 * eps[t - 1] + z[t]
        self.in_market = 0.034 * self.season * self.trend * np.exp(eps)  # share of people in market
        cpm = np.empty((T, 4))
        cpm[:, 0] = 0.025 * (1 + 0.12 * (self.season - 1)) * np.exp(rng.normal(0, 0.05, T))
        cpm[:, 1] = 0.007 * np.exp(rng.normal(0, 0.06, T))
        cpm[:, 2] = 0.35 * (1 + 0.6 * (self.season - 1)) * np.exp(rng.normal(0, 0.05, T))  # cost per CLICK
        cpm[:, 3] = 0.003 * np.exp(rng.normal(0, 0.08, T))
        self.cpm = cpm
        age = np.mod(s, 13)
        self.wear = 0.6 + 0.4 * np.exp(-age / 6.0)

    def _historical_spend(self, rng):
        H = self.n_history
        tv1 = np.zeros(52)
        w = int(rng.integers(0, 4))
        while w < 52:
            on = int(rng.integers(4, 9))
            tv1[w:w + on] = rng.uniform(150e3, 230e3)
            w += on + int(rng.integers(3, 8))
        yr = np.arange(H) % 52
        tv = tv1[yr] * np.where(np.arange(H) >= 52, 1.05, 1.0) * np.exp(rng.normal(0, 0.05, H))
        tv[tv1[yr] == 0] = 0.0
        social = 45e3 * (1 + 0.2 * np.sin(self.phase[self.t_hist:self.t_fc])) * np.exp(rng.normal(0, 0.15, H))
        # planner: search budget proportional to the demand forecast (season x trend)
        forecast = (self.season * self.trend)[self.t_hist:self.t_fc]
        search = 34e3 * forecast * np.exp(rng.normal(0, 0.06, H))
        display = 25e3 * np.exp(rng.normal(0, 0.2, H))
        return np.column_stack([tv, social, search, display])

    def _initial_state(self):
        N = self.N
        return {"X": np.array([[0.5 * N, 0.15 * N, 0.15 * N, 0.2 * N]]), "A": np.zeros(1)}

    def search_cap(self) -> np.ndarray:
        """Search spend (currency/week, 34 forecast weeks) buying ~95% of the baseline plan's queries."""
        kp, _, _ = self._run(self._baseline[None], self._broadcast_state(self._state_end, 1), self.t_fc)
        return 3.0 * self.cpm[self.t_fc:, SEARCH] * kp["_queries"][0]

    def _run(self, spend, state, t0):
        P, W, _ = spend.shape
        N = self.N
        X = state["X"].copy()
        A = state["A"].copy()
        out = {k: np.empty((P, W)) for k in ("awareness_survey", "site_visits", "purchases",
                                              "new_customers", "referrals", "_clicks", "_queries")}
        states = np.empty((P, W, 4))
        d, lp = self.delta, self.lapse
        for w in range(W):
            t = t0 + w
            lam = spend[:, w] / self.cpm[t] / N  # exposures per person (search: clicks per person, unused)
            eff = np.empty((P, 4))
            eff[:, 0] = 1 - np.exp(-lam[:, 0]) * (1 + lam[:, 0])  # effective frequency 2
            eff[:, 1] = 1 - np.exp(-0.6 * lam[:, 1])
            eff[:, 2] = 0.0
            eff[:, 3] = 1 - np.exp(-0.4 * lam[:, 3])
            eff[:, 0] *= self.wear[t]
            e = 1 - np.exp(-(eff @ self.beta))  # P(encode memory | no memory), (P,)
            A = self.act_decay * A + eff @ self.act_w
            i = self.in_market[t] * (1 + self.gamma * A)  # (P,)
            inm = X * i[:, None]  # in-market people by state
            Q = inm @ SEARCHES  # queries
            cov = 1 - np.exp(-spend[:, w, SEARCH] / (self.cpm[t, SEARCH] * np.maximum(Q, 1.0)))
            p = np.minimum(CHOICE[None] * (1 + self.alpha * A[:, None]), 0.95)
            pi = p + SEARCHES[None] * cov[:, None] * self.lift * (1 - p)
            buys = inm * pi
            nb = X - buys
            U0 = nb[:, 0] * (1 - e) + nb[:, 1] * d + nb[:, 2] * (1 - e) * lp
            M0 = nb[:, 0] * e + nb[:, 1] * (1 - d)
            U1 = nb[:, 2] * (1 - e) * (1 - lp) + nb[:, 3] * d
            M1 = nb[:, 2] * e + nb[:, 3] * (1 - d) + buys.sum(axis=1)
            X = np.column_stack([U0, M0, U1, M1])
            states[:, w] = X
            purch = buys.sum(axis=1)
            new = buys[:, 0] + buys[:, 1]
            clicks = Q * cov
            out["purchases"][:, w] = purch
            out["new_customers"][:, w] = new
            out["referrals"][:, w] = new * 0.5 * M1 / N
            out["site_visits"][:, w] = clicks + inm @ VISIT + 0.004 * N * A
            out["awareness_survey"][:, w] = (M0 + M1) / N
            out["_clicks"][:, w] = clicks
            out["_queries"][:, w] = Q
        return out, states, {"X": X, "A": A}

    def _reported_impressions(self, rng):
        imp = self.impressions(self.hist_spend[None], self.t_hist)[0]
        clicks = self._past_kpis["_clicks"][self.t_hist:self.t_fc]
        imp[:, SEARCH] = clicks / 0.06  # ads shown (CTR 6%)
        return imp * np.exp(rng.normal(0, 0.01, size=imp.shape))

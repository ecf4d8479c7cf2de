"""World ``latent_demand``: demand the brand cannot see, price and promotions, a useless channel.

Compartments (people): ``U`` unaware, ``A`` aware non-customer, ``C`` active customer, ``D``
dormant former customer.  Spend in currency per week; KPIs in people (events) per week;
awareness as a share; ``price_index`` relative to 1.0 (the brand's regular price); ``promo`` 0/1.
"""

from __future__ import annotations

import numpy as np

from .base import World, hill

CHOICE = np.array([0.04, 0.13, 0.40, 0.18])  # P(choose the brand | in market), U, A, C, D
ELASTICITY = 2.2  # brand choice ~ price_index ** -ELASTICITY
_lags = np.arange(8, dtype=float)
TV_KERNEL = _lags**2 * np.exp(-_lags)  # gamma(3, 1) delay kernel: no same-week effect, peak at lag 2
TV_KERNEL /= TV_KERNEL.sum()
SOC_DECAY = 0.4
FORGET, DORMANT, DRIFT = 0.05, 0.06, 0.04
REFER = 0.6  # referral hazard per (customer share x in-market share)


class LatentDemand(World):
    name = "latent_demand"
    code = 303
    effective_channels = ("tv", "social", "search")
    controls = ("promo", "price_index")
    compartments = ("U", "A", "C", "D")
    obs_sd = 0.03
    readme = """
Latent-demand world (what the brand cannot observe).

* **Category demand is a latent Gaussian random walk** (sd 1.2%/week on the log scale) times a
  two-harmonic yearly season and fixed holiday spikes (Black Friday week, the two weeks before
  Christmas, a spring peak).  The brand never observes it; it drives the share of people in
  market every week and so all KPIs.
* **Promotions and price are observed controls** (`promo` 0/1, `price_index`): promo weeks cut
  the price to ~0.85 and bring 25% more category shoppers in market; the brand's choice share
  scales as `price_index ** -2.2` (price elasticity).  Plans keep the promo calendar of the same
  weeks last year; the control columns are part of every plan file and identical across plans.
* **Display has exactly zero effect**, but the planner raised display spend with the season, for the
  holiday weeks and in promo weeks, so it correlates with sales (r ~ 0.6-0.8 in the history).  Any non-zero display effect a model finds is confounding.
* **TV acts through a delayed (gamma) kernel**: no same-week effect, peak at lag 2, gone after
  7 weeks; geometric carryover (peak at lag 0) has the wrong shape.  TV and social raise
  awareness (U -> A) and brand choice (Hill responses); search lifts choice concavely.
* Buyers from U, A or D become customers C; customers fall dormant (6%/week), dormant drift back
  to aware (4%/week).  Customers refer in-market prospects (referral hazard 0.6 x C/N x
  in-market share); referred people buy and become customers.
* **Measurement error**: the reported impressions carry 12% weekly log-normal error and a
  persistent per-channel over-reporting bias (social +15%, display +30%); counts carry ~3%
  extra noise; awareness is a binomial survey of 1,000 people.
"""

    def _build_latent(self, rng):
        T, ph = self.T, self.phase
        grw = np.cumsum(rng.normal(0, 0.012, T))
        grw -= grw[self.t_hist]
        woy = self.week_of_year
        holiday = 0.30 * (woy == 47) + 0.20 * ((woy == 50) | (woy == 51)) + 0.10 * (woy == 14)
        self.log_demand = grw + 0.15 * np.cos(ph - 2 * np.pi * 49 / 52) + 0.05 * np.cos(2 * ph - 2 * np.pi * 14 / 52) + holiday
        # promo calendar: 6 promo weeks a year, the same weeks every year (the brand's habit)
        weeks = rng.choice(np.arange(2, 51), size=6, replace=False)
        self.promo = np.isin(np.mod(self.s, 52), weeks).astype(int)
        z = np.zeros(T)
        e = rng.normal(0, 0.006, T)
        for k in range(1, T):
            z[k] = 0.85 * z[k - 1] + e[k]
        self.price_index = np.round(np.where(self.promo == 1, 0.85, 1.0) * (1 + z), 4)
        self.in_market = 0.035 * np.exp(self.log_demand) * (1 + 0.25 * self.promo)
        cpm = np.empty((T, 4))
        cpm[:, 0] = 0.022 * np.exp(rng.normal(0, 0.05, T))
        cpm[:, 1] = 0.0075 * np.exp(rng.normal(0, 0.06, T))
        cpm[:, 2] = 0.030 * np.exp(rng.normal(0, 0.05, T))
        cpm[:, 3] = 0.0030 * np.exp(rng.normal(0, 0.08, T))
        self.cpm = cpm
        self.imp_bias = np.array([1.0, 1.15, 1.0, 1.30])

    def _control_frame(self, t_index):
        return {"promo": self.promo[t_index], "price_index": self.price_index[t_index]}

    def _historical_spend(self, rng):
        H = self.n_history
        yr = np.arange(H) % 52
        tv1 = np.zeros(52)
        w = int(rng.integers(0, 5))
        while w < 52:
            on = int(rng.integers(5, 10))
            tv1[w:w + on] = rng.uniform(120e3, 200e3)
            w += on + int(rng.integers(2, 6))
        tv = np.where(tv1[yr] > 0, tv1[yr] * np.exp(rng.normal(0, 0.05, H)), 0.0)
        season = np.exp(0.15 * np.cos(self.phase - 2 * np.pi * 49 / 52))[self.t_hist:self.t_fc]
        social = 40e3 * np.exp(rng.normal(0, 0.12, H))
        search = 35e3 * np.exp(rng.normal(0, 0.1, H))
        woy = self.week_of_year[self.t_hist:self.t_fc]
        ramp = np.where(np.isin(woy, (47, 50, 51)), 1.6, 1.0)  # planner ramps display for the holidays
        ramp = ramp * np.where(self.promo[self.t_hist:self.t_fc] == 1, 1.8, 1.0)  # and to push promotions
        display = 28e3 * season**3 * ramp * np.exp(rng.normal(0, 0.1, H))  # ... and follows the season
        return np.column_stack([tv, social, search, display])

    def _initial_state(self):
        N = self.N
        return {"X": np.array([[0.35, 0.35, 0.15, 0.15]]) * N, "tvbuf": np.zeros((1, 8)), "soc": np.zeros(1)}

    def _run(self, spend, state, t0):
        P, W, _ = spend.shape
        N = self.N
        X, buf, soc = (state[k].copy() for k in ("X", "tvbuf", "soc"))
        out = {k: np.empty((P, W)) for k in ("awareness_survey", "site_visits", "purchases",
                                              "new_customers", "referrals")}
        states = np.empty((P, W, 4))
        for w in range(W):
            t = t0 + w
            x = spend[:, w] / self.cpm[t] / N  # exposures per person (display computed, never used)
            buf = np.column_stack([x[:, 0], buf[:, :-1]])  # buf[:, l] = tv exposures l weeks ago
            tvd = buf @ TV_KERNEL
            soc = SOC_DECAY * soc + x[:, 1]
            h_tv, h_soc = hill(tvd, 1.0, 1.0), hill(soc, 1.5, 1.2)
            h_srch = 1 - np.exp(-spend[:, w, 2] / 60e3)
            aw = 1 - np.exp(-(0.003 + 0.06 * h_tv + 0.02 * h_soc))
            i = self.in_market[t]
            lift = (1 + 0.30 * h_tv + 0.15 * h_soc + 0.12 * h_srch) * self.price_index[t] ** -ELASTICITY
            pi = np.minimum(CHOICE[None] * lift[:, None], 0.95)
            buys = X * i * pi  # (P, 4)
            nb = X - buys
            U, A, C, D = (nb[:, j] for j in range(4))
            r = 1 - np.exp(-REFER * (X[:, 2] / N) * i)
            refU, refA = U * r, A * r
            U, A = U - refU, A - refA
            nU = U * (1 - aw) + A * FORGET
            nA = A * (1 - FORGET) + U * aw + D * DRIFT
            nC = C * (1 - DORMANT) + buys.sum(axis=1) + refU + refA
            nD = D * (1 - DRIFT) + C * DORMANT
            X = np.column_stack([nU, nA, nC, nD])
            states[:, w] = X
            ref = refU + refA
            purch = buys.sum(axis=1) + ref
            out["purchases"][:, w] = purch
            out["new_customers"][:, w] = buys[:, 0] + buys[:, 1] + ref
            out["referrals"][:, w] = ref
            out["site_visits"][:, w] = 1.8 * purch + 0.25 * i * (X[:, 1] + X[:, 2]) + spend[:, w, 2] / 0.9
            out["awareness_survey"][:, w] = (nA + nC + nD) / N
        return out, states, {"X": X, "tvbuf": buf, "soc": soc}

    def _reported_impressions(self, rng):
        imp = self.impressions(self.hist_spend[None], self.t_hist)[0]
        return imp * self.imp_bias * np.exp(rng.normal(0, 0.12, size=imp.shape))

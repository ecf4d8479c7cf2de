"""World ``segments``: customers differ; repeat timing is gamma; a hidden competitor steals share.

Compartments (people), per buying segment ``heavy`` / ``light``: ``P0`` unaware prospect, ``P1``
aware prospect, ``C1..C3`` customer in Erlang stage 1..3 since the last purchase, ``L`` lapsed to
the competitor; plus the ``rejecter`` segment's ``R0`` unaware / ``R1`` aware (they never buy).
Spend in currency per week; KPIs in people (events) per week; awareness as a share.
"""

from __future__ import annotations

import numpy as np

from .base import World, hill

SEG_FRAC = np.array([0.10, 0.45, 0.45])  # heavy, light, rejecters
ADSTOCK = np.array([0.5, 0.3, 0.0, 0.2])  # geometric decay of exposures per person, per channel
HILL_K = np.array([2.5, 1.6, 0.30, 3.0])
HILL_S = np.array([1.3, 2.6, 0.8, 0.7])  # social S-shaped, search/display concave
AWARE_W = np.array([0.05, 0.02, 0.0, 0.02])  # awareness hazard per unit Hill response
AWARE_SEG = np.array([1.0, 0.8, 0.9])
BASE_CONV = np.array([0.010, 0.003])  # weekly conversion hazard of aware prospects
BETA = np.array([[1.2, 0.3, 1.0, 0.15],  # heavy: tv, social, search, display multipliers
                 [0.6, 1.2, 0.4, 0.30]])  # light
WOM = np.array([2.0, 1.0])  # referral hazard per (lagged new customers / population)
ADVANCE = np.array([0.5, 0.2])  # Erlang(3) stage advance: mean inter-purchase 6 and 15 weeks
CHURN = np.array([0.025, 0.035])
WINBACK = 0.012
FORGET = 0.04
DRIFT = 0.04  # lapsed -> aware prospect
COMP_CONV, COMP_CHURN = 0.6, 1.0
WOM_LAG = (2, 3, 4)  # indices into the new-customer buffer: 3, 4 and 5 weeks ago


class Segments(World):
    name = "segments"
    code = 202
    effective_channels = ("tv", "social", "search", "display")
    compartments = tuple(f"{g}_{s}" for g in ("heavy", "light") for s in ("P0", "P1", "C1", "C2", "C3", "L")) + (
        "rejecter_R0", "rejecter_R1")
    readme = """
Heterogeneous-customer world (latent segments, renewal purchasing, hidden competitor).

* **Three latent segments**: heavy category buyers (10% of people), light buyers (45%) and
  rejecters (45%) who see ads and become aware but never buy.  Heavy buyers respond to tv and
  search, light buyers mainly to social.  Media responses are Hill curves of geometrically
  adstocked exposures per person: **social is S-shaped** (shape 2.6: little effect below a
  threshold), display concave (shape 0.7), tv mildly S-shaped (1.3).
* **Repeat purchases follow gamma (Erlang-3) inter-purchase times** (means 6 and 15 weeks): a
  buyer passes through three post-purchase stages and buys on leaving the last.  Repeat buying
  is NOT driven by media; it is a renewal process with a refractory period right after each
  purchase.  A Markov stage model with memoryless (exponential) stays reads the resulting
  echoes of past acquisition as media response.
* **Churn to a competitor and win-back**: customers lapse to the competitor (2.5% / 3.5% per
  week), lapsed people are won back by tv, social and search, or drift back to being prospects.
* **An unobserved competitor** runs bursts of spend (a latent process fixed by the seed and
  shared by all plans) that raise churn (x(1 + comp)) and lower conversion and win-back
  (/(1 + 0.6 comp)).  The brand's data never show it.
* **Word of mouth depends on recent NEW customers with a delay** of 3-5 weeks (not on the
  stock of advocates): referrals hazard = w_g x mean(new customers 3..5 weeks ago) / population.
  It converts aware prospects and, at 40%, unaware ones.  `referrals` counts those conversions.
* `purchases` = first purchases + repeat purchases + win-backs; `new_customers` = first
  purchases; `awareness_survey` = share of people not unaware; `site_visits` from new, repeat
  and browsing prospects.
"""

    def _build_latent(self, rng):
        T = self.T
        comp = np.zeros(T)
        t = int(rng.integers(0, 10))
        while t < T:
            dur = int(rng.integers(4, 11))
            comp[t:t + dur] += rng.uniform(0.4, 1.4)
            t += dur + int(rng.integers(4, 20))
        z = np.zeros(T)
        e = rng.normal(0, 0.05, T)
        for k in range(1, T):
            z[k] = 0.9 * z[k - 1] + e[k]
        self.competitor = np.maximum(comp + 0.2 + z, 0.0)  # latent, never observed
        cpm = np.empty((T, 4))
        cpm[:, 0] = 0.028 * np.exp(rng.normal(0, 0.05, T))
        cpm[:, 1] = 0.008 * np.exp(rng.normal(0, 0.08, T))
        cpm[:, 2] = 0.030 * np.exp(rng.normal(0, 0.05, T))
        cpm[:, 3] = 0.0035 * np.exp(rng.normal(0, 0.08, T))
        self.cpm = cpm

    def _historical_spend(self, rng):
        H = self.n_history
        tv1 = np.zeros(52)
        w = int(rng.integers(0, 6))
        while w < 52:
            on = int(rng.integers(3, 7))
            tv1[w:w + on] = rng.uniform(200e3, 300e3)
            w += on + int(rng.integers(5, 10))
        yr = np.arange(H) % 52
        tv = np.where(tv1[yr] > 0, tv1[yr] * np.exp(rng.normal(0, 0.05, H)), 0.0)
        soc1 = 55e3 * np.exp(rng.normal(0, 0.1, 52))
        soc1[rng.random(52) < 0.15] *= 1.8  # social bursts
        social = soc1[yr] * np.exp(rng.normal(0, 0.08, H))
        ph = self.phase[self.t_hist:self.t_fc]
        search = 30e3 * (1 + 0.1 * np.cos(ph)) * np.exp(rng.normal(0, 0.08, H))
        display = 30e3 * np.exp(rng.normal(0, 0.15, H))
        return np.column_stack([tv, social, search, display])

    def _initial_state(self):
        N = self.N
        heavy = np.array([0.10, 0.35, 0.12, 0.12, 0.11, 0.20]) * SEG_FRAC[0] * N
        light = np.array([0.35, 0.40, 0.04, 0.04, 0.04, 0.13]) * SEG_FRAC[1] * N
        return {"X": np.stack([heavy, light])[None], "R": np.array([[0.4, 0.6]]) * SEG_FRAC[2] * N,
                "ad": np.zeros((1, 4)), "nc": np.full((1, 6), 8e3)}

    def _run(self, spend, state, t0):
        P, W, _ = spend.shape
        N = self.N
        X, R, ad, nc = (state[k].copy() for k in ("X", "R", "ad", "nc"))
        out = {k: np.empty((P, W)) for k in ("awareness_survey", "site_visits", "purchases",
                                              "new_customers", "referrals")}
        states = np.empty((P, W, 14))
        for w in range(W):
            t = t0 + w
            comp = self.competitor[t]
            x = spend[:, w] / self.cpm[t] / N  # exposures per person
            ad = ADSTOCK * ad + x
            H = hill(ad, HILL_K, HILL_S)  # (P, 4)
            aw_h = 0.01 + H @ AWARE_W  # (P,)
            lam_w = WOM[None] * nc[:, list(WOM_LAG)].mean(axis=1)[:, None] / N  # (P, 2)
            lam_m = BASE_CONV[None] * (1 + H @ BETA.T) / (1 + COMP_CONV * comp)  # (P, 2)
            c1 = 1 - np.exp(-(lam_m + lam_w))  # P1 conversion
            c0 = 1 - np.exp(-0.4 * lam_w)  # P0 conversion (referral only)
            aw = (1 - np.exp(-aw_h))[:, None] * AWARE_SEG[None, :2]
            churn = CHURN * (1 + COMP_CHURN * comp)
            wb = 1 - np.exp(-WINBACK * (1 + 0.8 * (H[:, 0] + H[:, 1] + H[:, 2])) / (1 + COMP_CONV * comp))
            P0, P1, C1, C2, C3, L = (X[:, :, j] for j in range(6))
            conv0, conv1 = P0 * c0, P1 * c1
            stay = 1 - churn[None]
            a = ADVANCE[None]
            repeat = C3 * stay * a
            won = L * wb[:, None]
            nP0 = P0 - conv0 - (P0 - conv0) * aw + (P1 - conv1) * FORGET
            nP1 = P1 - conv1 - (P1 - conv1) * FORGET + (P0 - conv0) * aw + (L - won) * DRIFT
            nC1 = C1 * stay * (1 - a) + conv0 + conv1 + won + repeat
            nC2 = C2 * stay * (1 - a) + C1 * stay * a
            nC3 = C3 * stay * (1 - a) + C2 * stay * a
            nL = (L - won) * (1 - DRIFT) + (C1 + C2 + C3) * churn[None]
            X = np.stack([nP0, nP1, nC1, nC2, nC3, nL], axis=2)
            awr = (1 - np.exp(-aw_h)) * AWARE_SEG[2]
            R = np.column_stack([R[:, 0] * (1 - awr) + R[:, 1] * FORGET, R[:, 1] * (1 - FORGET) + R[:, 0] * awr])
            new = (conv0 + conv1).sum(axis=1)
            ref = (conv0 + conv1 * lam_w / (lam_m + lam_w)).sum(axis=1)
            nc = np.column_stack([new, nc[:, :-1]])  # nc[:, k] = new customers k weeks before next week
            purch = new + repeat.sum(axis=1) + won.sum(axis=1)
            states[:, w, :12] = X.reshape(P, 12)
            states[:, w, 12:] = R
            out["purchases"][:, w] = purch
            out["new_customers"][:, w] = new
            out["referrals"][:, w] = ref
            out["site_visits"][:, w] = (2.0 * new + 1.2 * purch
                                        + 0.015 * X[:, :, 1].sum(axis=1) * (1 + H[:, 1] + H[:, 2]))
            out["awareness_survey"][:, w] = 1 - (X[:, :, 0].sum(axis=1) + R[:, 0]) / N
        return out, states, {"X": X, "R": R, "ad": ad, "nc": nc}

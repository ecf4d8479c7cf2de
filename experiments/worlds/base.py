"""Shared machinery for the ground-truth market worlds (plain numpy; no journeysim).

Every world is a deterministic expected-value recursion over people compartments, driven by
latent processes (demand shocks, competitor activity, cost per impression) drawn once from the
seed.  Because nothing inside the recursion is random, the expected KPI values of any plan are
exact, and every plan sees the same latent draws (common random numbers).

Conventions (all worlds)
------------------------
* Time unit: one week (Monday dates).  ``n_burn`` un-observed weeks precede the history so the
  compartments start from the world's own quasi-steady state; the forecast continues the same
  recursion from the state reached at the end of the history, so it is seamless.
* Spend is in currency per week (think EUR), ``>= 0``.  Impressions are counts per week.
* KPI units: ``awareness_survey`` is a share in [0, 1] (the expected value is the true share of
  the population that is aware; the observed value is a binomial survey of
  ``awareness_survey_n`` = 1000 people); ``site_visits``, ``purchases``, ``new_customers`` and
  ``referrals`` are people (or events) per week.
* Batches: the internal ``_run`` advances ``P`` plans at once (leading axis), which is how the
  optimiser evaluates finite-difference gradients in one pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

CHANNELS = ("tv", "social", "search", "display")
KPIS = ("awareness_survey", "site_visits", "purchases", "new_customers", "referrals")
COUNT_KPIS = ("site_visits", "purchases", "new_customers", "referrals")
TV, SOCIAL, SEARCH, DISPLAY = range(4)
WEEKS_PER_YEAR = 52.1775


def hill(x, k, s):
    """Hill saturation ``x^s / (x^s + k^s)`` (``s > 1`` is S-shaped, ``s <= 1`` concave)."""
    xs = np.power(np.maximum(x, 0.0), s)
    return xs / (xs + k**s)


class World:
    """Base class.  Subclasses define the latent processes, historical spend and ``_run``.

    Parameters
    ----------
    seed : int
        Seed of every random draw in the world (latent processes, historical spend and the
        observation noise of :meth:`history`).  Same seed -> bit-identical outputs.
    n_history : int
        Observed weeks (default 104, starting ``start``).
    n_plan, n_tail : int
        Forecast weeks of plan (default 26) followed by weeks of baseline spend (default 8).
    population : int
        People in the market (default 5 million).
    """

    name = "base"
    code = 0
    #: channels whose true effect on purchases is positive
    effective_channels: tuple[str, ...] = CHANNELS
    #: observed control columns (known in advance, identical in every plan)
    controls: tuple[str, ...] = ()
    #: names of the people compartments returned by ``_run``
    compartments: tuple[str, ...] = ()
    readme = ""

    def __init__(self, seed: int = 0, *, n_history: int = 104, n_plan: int = 26, n_tail: int = 8,
                 start: str = "2023-01-02", population: int = 5_000_000, n_burn: int = 208):
        self.seed = int(seed)
        self.n_history, self.n_plan, self.n_tail, self.n_burn = n_history, n_plan, n_tail, n_burn
        self.n_forecast = n_plan + n_tail
        self.N = float(population)
        self.T = n_burn + n_history + self.n_forecast
        self.t_hist = n_burn  # absolute index of the first observed week
        self.t_fc = n_burn + n_history  # absolute index of the first forecast week
        self.dates = pd.date_range(start, periods=n_history, freq="7D")
        self.fc_dates = pd.date_range(self.dates[-1] + pd.Timedelta(days=7), periods=self.n_forecast, freq="7D")
        ss = np.random.SeedSequence([self.seed, self.code])
        s_lat, s_spend, self._ss_obs = ss.spawn(3)
        # s: weeks since the first observed week (negative in the burn-in)
        self.s = np.arange(self.T, dtype=float) - n_burn
        self.phase = 2 * np.pi * self.s / WEEKS_PER_YEAR
        all_dates = pd.date_range(pd.Timestamp(start) - pd.Timedelta(days=7 * n_burn), periods=self.T, freq="7D")
        self.week_of_year = np.asarray(all_dates.isocalendar().week, dtype=int)
        self._build_latent(np.random.default_rng(s_lat))
        self.hist_spend = np.round(self._historical_spend(np.random.default_rng(s_spend)), 2)
        assert self.hist_spend.shape == (n_history, 4) and (self.hist_spend >= 0).all()
        # burn-in spend: the first observed year repeated (the brand's habitual pattern)
        reps = int(np.ceil(n_burn / 52)) + 1
        burn = np.vstack([self.hist_spend[:52]] * reps)[-n_burn:] if n_burn else np.zeros((0, 4))
        spend = np.vstack([burn, self.hist_spend])[None]
        kp, st, self._state_end = self._run(spend, self._initial_state(), 0)
        self._past_kpis = {k: v[0] for k, v in kp.items()}
        self._past_states = st[0]
        idx = [n_history - 52 + (j % 52) for j in range(self.n_forecast)]
        self._baseline = self.hist_spend[idx].copy()
        self._history_df = None

    # ---- to be provided by subclasses -------------------------------------------------------
    def _build_latent(self, rng):
        """Latent processes over all ``T`` weeks; must set ``self.cpm`` (T, 4): currency per impression."""
        raise NotImplementedError

    def _historical_spend(self, rng) -> np.ndarray:
        raise NotImplementedError

    def _initial_state(self) -> dict:
        raise NotImplementedError

    def _run(self, spend, state, t0):
        """Advance the state over ``spend.shape[1]`` weeks from absolute week ``t0``.

        ``spend``: (P, W, 4) currency per week.  Returns (kpis: dict name -> (P, W) expected
        values, states: (P, W, n_compartments) people at the END of each week, final state).
        """
        raise NotImplementedError

    def _control_frame(self, t_index) -> dict:
        return {}

    # ---- helpers ----------------------------------------------------------------------------
    def impressions(self, spend, t0):
        """Expected impressions (P, W, 4) bought by ``spend`` from absolute week ``t0``."""
        W = spend.shape[1]
        return spend / self.cpm[t0:t0 + W][None]

    @staticmethod
    def _broadcast_state(state, P):
        return {k: np.broadcast_to(v, (P,) + v.shape[1:]).copy() for k, v in state.items()}

    def _plan_array(self, plan) -> np.ndarray:
        if isinstance(plan, pd.DataFrame):
            arr = plan[[f"spend_{c}" for c in CHANNELS]].to_numpy(dtype=float)
        else:
            arr = np.asarray(plan, dtype=float)
        if arr.shape == (self.n_plan, 4):
            arr = np.vstack([arr, self._baseline[self.n_plan:]])
        if arr.shape != (self.n_forecast, 4):
            raise ValueError(f"plan must be ({self.n_forecast}, 4) or ({self.n_plan}, 4), got {arr.shape}")
        if (arr < 0).any():
            raise ValueError("negative spend")
        return arr

    # ---- public API -------------------------------------------------------------------------
    def baseline_plan(self) -> pd.DataFrame:
        """The brand's continuing spend (same weeks of last year), 34 forecast weeks."""
        return self._frame(self._baseline)

    def _frame(self, arr) -> pd.DataFrame:
        df = pd.DataFrame({"date": self.fc_dates.strftime("%Y-%m-%d")})
        for i, c in enumerate(CHANNELS):
            df[f"spend_{c}"] = np.round(arr[:, i], 2)
        for k, v in self._control_frame(np.arange(self.t_fc, self.T)).items():
            df[k] = v
        return df

    def plans(self) -> dict[str, pd.DataFrame]:
        """Named what-if plans; each changes only the first ``n_plan`` weeks of the baseline."""
        b, n = self._baseline, self.n_plan
        out = {"baseline": b.copy()}

        def move(src, dst, frac=0.3):
            p = b.copy()
            amount = frac * p[:n, src]
            p[:n, src] -= amount
            p[:n, dst] += amount
            return p

        out["tv_to_search"] = move(TV, SEARCH)
        out["search_to_social"] = move(SEARCH, SOCIAL)
        out["social_to_tv"] = move(SOCIAL, TV)
        for name, f in (("total_plus_20", 1.2), ("total_minus_20", 0.8)):
            p = b.copy()
            p[:n] *= f
            out[name] = p
        for i, c in enumerate(CHANNELS):
            p = b.copy()
            p[:n, i] = 0.0
            out[f"cut_{c}"] = p
        return {k: self._frame(v) for k, v in out.items()}

    def history_lift(self, channel: str, first: int, last: int, *, window: int = 0, spend: float = 0.0,
                     share: float = 1.0, kpi: str = "purchases") -> float:
        """The exact expected lift of an experiment in the observed history: ``kpi`` summed over
        history weeks ``first..last + window`` (0-based) with ``channel``'s spend times ``spend`` in
        weeks ``first..last``, minus as it was, times ``share`` (a geo holdout of that share of a
        market whose people are alike)."""
        reps = int(np.ceil(self.n_burn / 52)) + 1
        burn = np.vstack([self.hist_spend[:52]] * reps)[-self.n_burn:] if self.n_burn else np.zeros((0, 4))
        base = np.vstack([burn, self.hist_spend])
        mod = base.copy()
        mod[self.n_burn + first:self.n_burn + last + 1, CHANNELS.index(channel)] *= spend
        kp, _, _ = self._run(np.stack([base, mod]), self._broadcast_state(self._initial_state(), 2), 0)
        sl = slice(self.n_burn + first, self.n_burn + last + window + 1)
        return float(share * (kp[kpi][1, sl].sum() - kp[kpi][0, sl].sum()))

    def expected_batch(self, plans: np.ndarray) -> dict[str, np.ndarray]:
        """Exact expected KPIs (P, 34) for a stack of forecast spend arrays (P, 34, 4)."""
        plans = np.asarray(plans, dtype=float)
        st = self._broadcast_state(self._state_end, plans.shape[0])
        kp, _, _ = self._run(plans, st, self.t_fc)
        return {k: kp[k] for k in KPIS}

    def expected(self, plan) -> dict[str, np.ndarray]:
        """Exact expected weekly KPIs over the 34 forecast weeks given ``plan`` (no noise)."""
        kp = self.expected_batch(self._plan_array(plan)[None])
        return {k: v[0] for k, v in kp.items()}

    def trajectory(self, plan=None):
        """(dates, states (weeks, n_compartments) people, kpis) over burn-in + history + forecast."""
        arr = self._baseline if plan is None else self._plan_array(plan)
        st = self._broadcast_state(self._state_end, 1)
        kp, states, _ = self._run(arr[None], st, self.t_fc)
        states = np.vstack([self._past_states, states[0]])
        kpis = {k: np.concatenate([self._past_kpis[k], kp[k][0]]) for k in KPIS}
        return states, kpis

    def truth(self, plan) -> dict:
        """Total expected KPI over the 34 forecast weeks minus the baseline's (and as % of it).

        For ``awareness_survey`` (a share) the figures use the mean over the 34 weeks.
        """
        both = self.expected_batch(np.stack([self._plan_array(plan), self._baseline]))
        out = {}
        for k in KPIS:
            agg = np.mean if k == "awareness_survey" else np.sum
            p, b = float(agg(both[k][0])), float(agg(both[k][1]))
            out[k] = {"plan": p, "baseline": b, "delta": p - b, "pct": 100.0 * (p - b) / b}
        out["delta_purchases"] = out["purchases"]["delta"]
        out["pct_purchases"] = out["purchases"]["pct"]
        return out

    def response(self, spend) -> np.ndarray | float:
        """Total expected purchases over the 34 forecast weeks.

        ``spend``: (26, 4) plan weeks (currency per week; the 8 tail weeks are the baseline) or a
        stack (P, 26, 4); returns a float or (P,) array.
        """
        spend = np.asarray(spend, dtype=float)
        single = spend.ndim == 2
        spend = spend[None] if single else spend
        tail = np.broadcast_to(self._baseline[self.n_plan:], (spend.shape[0], self.n_tail, 4))
        tot = self.expected_batch(np.concatenate([spend, tail], axis=1))["purchases"].sum(axis=1)
        return float(tot[0]) if single else tot

    def _pattern(self):
        base = self._baseline[:self.n_plan]
        tot = base.sum(axis=0)
        pat = np.where(tot > 0, base / np.where(tot > 0, tot, 1.0), 1.0 / self.n_plan)
        return pat  # (26, 4), each column sums to 1

    def true_optimum(self, total_budget: float | None = None, n_starts: int = 6, seed: int = 0,
                     max_change: float | None = None) -> dict:
        """Best split of ``total_budget`` (currency over the 26 plan weeks) across channels.

        Each channel keeps the baseline's weekly pattern, scaled; variables are channel shares.
        Multi-start SLSQP on the simplex with a batched forward-difference gradient. ``max_change``:
        each share within ``1 -/+ max_change`` times the baseline's (the best an optimiser kept
        near the current mix can do).
        """
        pat = self._pattern()
        base = self._baseline[:self.n_plan]
        budget = float(base.sum()) if total_budget is None else float(total_budget)
        scale = self.response(base)

        def spends(x):  # x (P, 4) shares -> (P, 26, 4)
            return pat[None] * (np.asarray(x)[:, None, :] * budget)

        h = 1e-6

        def f(x):
            return -self.response(spends(x[None]))[0] / scale

        def jac(x):
            X = np.vstack([x, x + h * np.eye(4)])
            v = -self.response(spends(X)) / scale
            return (v[1:] - v[0]) / h

        rng = np.random.default_rng(seed)
        b_share = base.sum(axis=0) / base.sum()
        starts = [b_share, np.full(4, 0.25)] + list(rng.dirichlet(np.ones(4), size=max(0, n_starts - 2)))
        lo, hi = np.zeros(4), np.ones(4)
        if max_change is not None:
            lo, hi = np.clip((1 - max_change) * b_share, 0, 1), np.clip((1 + max_change) * b_share, 0, 1)
            starts = [b_share] + [lo + (hi - lo) * s for s in starts[2:]]  # (inside the box; SLSQP restores the sum)
        best = None
        cons = ({"type": "eq", "fun": lambda x: x.sum() - 1.0, "jac": lambda x: np.ones(4)},)
        for x0 in starts[:max(1, n_starts)]:
            r = optimize.minimize(f, x0, jac=jac, method="SLSQP", bounds=list(zip(lo, hi)),
                                  constraints=cons, options={"maxiter": 200, "ftol": 1e-10})
            x = np.clip(r.x, lo, hi)
            x = x / x.sum()
            val = -f(x)
            if best is None or val > best[1]:
                best = (x, val)
        x = best[0]
        opt_p = self.response(spends(x[None]))[0]
        same_budget_baseline = self.response(spends(b_share[None]))[0]
        return {
            "budget": budget,
            "shares": {c: float(v) for c, v in zip(CHANNELS, x)},
            "baseline_shares": {c: float(v) for c, v in zip(CHANNELS, b_share)},
            "spend": {c: float(v * budget) for c, v in zip(CHANNELS, x)},
            "purchases": float(opt_p),
            "baseline_purchases": float(same_budget_baseline),
            "gain": float(opt_p - same_budget_baseline),
            "gain_pct": float(100 * (opt_p - same_budget_baseline) / same_budget_baseline),
        }

    def score_allocation(self, plan: pd.DataFrame, promised: dict, true_opt: dict) -> dict:
        """An optimiser's recommended ``plan`` scored by the truth: its true gain, its regret against
        ``true_opt`` (:meth:`true_optimum`; in % of baseline purchases), and whether the promised
        gain's 90% interval (``promised``: ``lo90``, ``hi90``) holds the true gain."""
        t = self.truth(plan)
        regret = true_opt["purchases"] - t["purchases"]["plan"]
        return {"true_gain_of_allocation": t["delta_purchases"], "true_gain_of_allocation_pct": t["pct_purchases"],
                "true_optimum_shares": true_opt["shares"], "true_optimum_gain": true_opt["gain"],
                "true_optimum_gain_pct": true_opt["gain_pct"],
                "regret": regret, "regret_pct": 100 * regret / t["purchases"]["baseline"],
                "promised_covers_true": bool(promised["lo90"] <= t["delta_purchases"] <= promised["hi90"])}

    def history(self) -> pd.DataFrame:
        """The observed weekly data as the brand has it (noisy KPIs, reported impressions)."""
        if self._history_df is not None:
            return self._history_df.copy()
        rng = np.random.default_rng(self._ss_obs)
        h0, h1 = self.t_hist, self.t_fc
        df = pd.DataFrame({"date": self.dates.strftime("%Y-%m-%d")})
        imp = self._reported_impressions(rng)
        for i, c in enumerate(CHANNELS):
            df[f"spend_{c}"] = np.round(self.hist_spend[:, i], 2)
        for i, c in enumerate(CHANNELS):
            df[f"impressions_{c}"] = np.round(imp[:, i]).astype(np.int64)
        for k, v in self._control_frame(np.arange(h0, h1)).items():
            df[k] = v
        n = 1000
        aw = self._past_kpis["awareness_survey"][h0:h1]
        df["awareness_survey"] = rng.binomial(n, np.clip(aw, 0, 1)) / n
        df["awareness_survey_n"] = n
        for k in COUNT_KPIS:
            mu = self._past_kpis[k][h0:h1]
            noisy = mu * np.exp(rng.normal(0.0, self.obs_sd, size=mu.shape) - 0.5 * self.obs_sd**2)
            df[k] = rng.poisson(np.maximum(noisy, 0)).astype(np.int64)
        self._history_df = df
        return df.copy()

    obs_sd = 0.02  # multiplicative (log) sd of count KPIs on top of Poisson noise

    def _reported_impressions(self, rng):
        """Impressions the platforms report for the history (P=1 expected + small noise)."""
        imp = self.impressions(self.hist_spend[None], self.t_hist)[0]
        return imp * np.exp(rng.normal(0, 0.01, size=imp.shape))

    def history_expected(self) -> dict[str, np.ndarray]:
        """Noise-free KPIs over the observed weeks."""
        return {k: self._past_kpis[k][self.t_hist:self.t_fc].copy() for k in KPIS}

    def write(self, directory) -> Path:
        """Write history.csv, plans/*.csv, truth.json and README.md into ``directory``."""
        d = Path(directory)
        (d / "plans").mkdir(parents=True, exist_ok=True)
        self.history().to_csv(d / "history.csv", index=False)
        truth = {"world": self.name, "seed": self.seed, "population": self.N,
                 "effective_channels": list(self.effective_channels), "plans": {}}
        for name, plan in self.plans().items():
            plan.to_csv(d / "plans" / f"{name}.csv", index=False)
            t = self.truth(plan)
            exp = self.expected(plan)
            truth["plans"][name] = {
                "delta_purchases": t["delta_purchases"], "pct_purchases": t["pct_purchases"],
                "kpis": {k: t[k] for k in KPIS},
                "expected_weekly": {k: [float(x) for x in exp[k]] for k in KPIS},
            }
        truth["true_optimum_same_budget"] = self.true_optimum(n_starts=4)
        (d / "truth.json").write_text(json.dumps(truth, indent=1))
        (d / "README.md").write_text(f"# World `{self.name}` (seed {self.seed})\n\n{self.readme.strip()}\n")
        return d

"""A weekly step with the daily model's memory: a design study for issue 16 (calibrate in a minute).

The likelihood runs the twin with daily steps on daily scenarios (retail: 728 steps), because a
step of ``dt = 7`` days with the same equations is a different model: memory
``A' = d^7 A + q mu N`` takes in a whole week's touches at full strength and holds them for the
whole week, where the daily model decays them day by day. At steady state it holds
``7 (1 - d) / (1 - d^7)`` times the daily model's memory (3.5x at a daily carry-over of 0.5,
1.5x at 0.85), so a channel's effect and its memory no longer mean the same thing.

This prototype (numpy, beside :func:`journeysim.twin.step.twin_step`, not used by the package)
keeps the people's flows weekly but follows memory day by day inside the week, with the week's
people held fixed: the hazards of the week use the week's *average* memory moments, the state
carries the *end-of-week* moments, and the memory that leaves with the people who move is the
end-of-week memory in the shares the average gave. The memory sub-steps cost ``R x K`` each;
the expensive part of a step (edge rows, exits, the Jensen correction) runs once a week.

It compares, on every shipped daily scenario, the weekly purchases, new customers and flows of

* the daily twin (the reference: it agrees with the agents within 3%, tests/twin/test_twin.py),
* the naive weekly twin (``twin_step`` with ``dt = 7``),
* this weekly step.

    python experiments/weekly_step.py                # every shipped daily scenario, 3 agent runs each
    python experiments/weekly_step.py --scenarios retail --agents 0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from journeysim.model.dynamics import TINY, competing_exit, edge_multipliers, effectiveness, hazard_terms  # noqa: E402
from journeysim.model.scenario import load_scenario  # noqa: E402
from journeysim.twin.state import TwinMatrices, TwinState, initial_twin_state  # noqa: E402
from journeysim.twin.step import _lmul, _rows, twin_step  # noqa: E402

SCENARIOS = ("retail", "shop", "subscription", "funnel3")
#: Days of each flow step within a week, by variant (``days1``: daily flows; the same numbers as the daily twin).
SPLITS = {"weekly": (7,), "half": (3, 4), "third": (2, 2, 3), "days1": (1,) * 7}
OUT = ROOT / "experiments" / "results" / "weekly_step.json"
#: ``package``: the package's twin as it is (``twin_step`` over ``Structure.substeps``: the design below,
#: half-gamma, adopted); ``naive``: twin_step with dt = 7; else ``<split>-<exit>``: flows in the split's steps, memory daily,
#: the exit's Jensen correction by Taylor (the daily twin's), none, or a gamma closure.
VARIANTS = ("package", "naive", "weekly-taylor", "weekly-none", "weekly-gamma", "half-taylor", "half-gamma", "third-gamma",
            "days1-taylor", "days1-gamma")


def week_step(state: TwinState, touches_c, params, st, em, cm, mats, days: int = 7, exit: str = "taylor"):
    """One week: memory day by day at the week's people, flows once with the week's mean memory."""
    xp = np
    m = mats
    K = m.K
    X = state.X
    N = X[..., 0]
    A = X[..., 1:1 + K]
    Q = X[..., 1 + K:]
    wom = params.wom_rate * (N @ m.wom_from)
    touches = np.concatenate([touches_c, np.atleast_1d(wom)], axis=-1)
    targeted = N @ m.targeting
    per_weight, q = effectiveness(xp, touches, targeted, params.fhalf, params.cap)
    mu = m.targeting * per_weight[None, :]  # one day's touches per person, (R, K)
    d = params.carryover[None, :]
    qq = q[None, :]
    N_ = N[:, None]
    A_sum = np.zeros_like(A)
    Q_sum = np.zeros_like(Q)
    for _ in range(days):
        Q = d * d * Q + 2.0 * d * qq * mu * A + qq * qq * N_ * (mu + mu * mu)
        A = d * A + qq * mu * N_
        A_sum += A
        Q_sum += Q
    A_end, Q_end = A, Q
    A = A_sum / days
    Q = Q_sum / days
    dt = float(days)
    abar = A / np.maximum(N_, TINY)
    V = np.maximum(Q - A * abar, 0.0)
    Ns = N @ m.src.T
    As, Qs, Vs, abars = (_lmul(xp, m.src, Z) for Z in (A, Q, V, abar))
    base_eff, B = hazard_terms(xp, params, st, em, cm)
    b_rows, B_rows = _rows(xp, base_eff, B, m.P, m.E, K)
    h = b_rows + np.sum(B_rows * abars, axis=-1)
    H = np.maximum(h @ m.same_src.T, TINY)
    frac, L = competing_exit(xp, h, H, dt)
    r = h / H
    Bstage = _lmul(xp, m.same_src, B_rows)
    slope = dt * (1.0 - L) - L / H
    G = (r * slope)[..., None] * Bstage + (L / H)[..., None] * B_rows
    dr = (B_rows - r[..., None] * Bstage) / H[..., None]
    curv = (r * (-dt * dt * (1.0 - L)))[..., None] * Bstage * Bstage + 2.0 * Bstage * dr * slope[..., None]
    var = Vs / np.maximum(Ns, TINY)[..., None]
    if exit == "taylor":  # the daily twin's second-order (Jensen) correction of the mean exit
        frac = np.clip(frac + 0.5 * np.sum(curv * var, axis=-1), 0.0, L)
    elif exit == "gamma":
        # each source's memory across the group's people as a gamma with the group's mean and
        # variance: the share still in the stage after dt days is the gamma's Laplace transform,
        # exact at any step, where the Taylor correction (-dt^2 (1 - L) H'^2 var / 2) overshoots at
        # dt = 7 (retail: -35% purchases); the edges keep their first-order split of the exits
        theta = np.where(abars > TINY, var / np.maximum(abars, TINY), 0.0)
        alpha = np.where(var > TINY, abars * abars / np.maximum(var, TINY), 0.0)
        b_stage = H - np.sum(Bstage * abars, axis=-1)
        stay = np.exp(-dt * b_stage - np.sum(alpha * np.log1p(dt * Bstage * theta), axis=-1))
        frac = np.clip(frac * (1.0 - stay) / np.maximum(L, TINY), 0.0, 1.0)
    flow = Ns * frac
    T = 2.0 * abars * Vs + Vs * Vs / np.maximum(As, TINY)
    # the shares of the week's mean memory that leave, applied to the end-of-week memory
    share_a = np.maximum(frac[..., None] * As + G * Vs, 0.0) / np.maximum(As, TINY)
    share_q = np.maximum(frac[..., None] * Qs + G * T, 0.0) / np.maximum(Qs, TINY)
    a_out = share_a * _lmul(xp, m.src, A_end)
    q_out = share_q * _lmul(xp, m.src, Q_end)
    src_T = m.src.T
    a_out = a_out * _lmul(xp, m.src, np.minimum(1.0, A_end / np.maximum(_lmul(xp, src_T, a_out), TINY)))
    q_out = q_out * _lmul(xp, m.src, np.minimum(1.0, Q_end / np.maximum(_lmul(xp, src_T, q_out), TINY)))
    F = np.concatenate([flow[..., None], a_out, q_out], axis=-1)
    X_new = np.concatenate([N_, A_end, Q_end], axis=-1) + _lmul(xp, m.move, F)
    return TwinState(X_new), {"flow": flow @ m.edge_out.T, "new": flow @ m.new_sel.T,
                              "repeat": flow @ m.repeat_sel.T}


def run(sc, how: str):
    """Weekly purchases (W,), new customers (W,) and flows (W, P*E) of a twin run, and seconds."""
    st = sc.structure
    params = sc.params
    mats = TwinMatrices.build(st)
    state = initial_twin_state(params, st)
    spend = sc.plan.aligned(st.channels)
    W = spend.shape[0]
    purch, new, flows = np.zeros(W), np.zeros(W), np.zeros((W, len(st.personas) * len(st.edges)))
    t0 = time.perf_counter()
    for w in range(W):
        tc = st.touches(spend[w])
        cm = st.event_multipliers(w)[1]
        em = edge_multipliers(np, st, params.demand, [w])[0]
        if how == "daily":  # (the daily step, with the package's gamma closure since issue 16's kernel)
            for _ in range(7):
                state, out = twin_step(np, state, tc, params, st, em, cm, 1, mats)
                purch[w] += out["new"].sum() + out["repeat"].sum()
                new[w] += out["new"].sum()
                flows[w] += out["flow"]
        elif how == "package":
            for sub in st.substeps:
                state, out = twin_step(np, state, tc, params, st, em, cm, st.dt, mats, sub)
                purch[w] += out["new"].sum() + out["repeat"].sum()
                new[w] += out["new"].sum()
                flows[w] += out["flow"]
        elif how == "naive":
            state, out = twin_step(np, state, tc, params, st, em, cm, 7, mats)
            purch[w], new[w], flows[w] = out["new"].sum() + out["repeat"].sum(), out["new"].sum(), out["flow"]
        else:
            split, exit = how.split("-")
            for days in SPLITS[split]:
                state, out = week_step(state, tc, params, st, em, cm, mats, days, exit)
                purch[w] += out["new"].sum() + out["repeat"].sum()
                new[w] += out["new"].sum()
                flows[w] += out["flow"]
    return purch, new, flows, time.perf_counter() - t0


def compare(name: str, agents: int = 0) -> dict:
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    if sc.structure.dt != 1:
        return {"scenario": name, "skipped": "weekly steps already"}
    ref = run(sc, "daily")
    res = {"scenario": name, "weeks": int(len(ref[0]))}
    if agents:  # the agents' means over replications: the truth the twin must stay within 3% of
        from journeysim.engine.simulation import simulate

        runs = [simulate(sc, replication=r) for r in range(agents)]
        pa = np.mean([r.purchases.sum("persona").values for r in runs], axis=0)
        na = np.mean([r.purchases_new.sum("persona").values for r in runs], axis=0)
        res["agents"] = {"replications": agents}
    for how in ("daily",) + VARIANTS if agents else VARIANTS:
        p, n, f, sec = run(sc, how)
        if agents:
            res["agents"][how] = {"purchases_total_pct": float(100 * (p.sum() / pa.sum() - 1)),
                                  "new_total_pct": float(100 * (n.sum() / na.sum() - 1)),
                                  "purchases_weekly_mean_abs_pct": float(100 * np.mean(np.abs(p / pa - 1)))}
        if how == "daily":
            continue
        big = ref[2].mean(axis=0) > 0.01 * ref[2].mean(axis=0).max()  # flows of at least 1% of the largest
        res[how] = {"purchases_total_pct": float(100 * (p.sum() / ref[0].sum() - 1)),
                    "purchases_weekly_max_pct": float(100 * np.max(np.abs(p / ref[0] - 1))),
                    "new_total_pct": float(100 * (n.sum() / ref[1].sum() - 1)),
                    "new_weekly_max_pct": float(100 * np.max(np.abs(n / ref[1] - 1))),
                    "flows_total_max_pct": float(100 * np.max(np.abs(f[:, big].sum(0) / ref[2][:, big].sum(0) - 1))),
                    "seconds_numpy": sec}
    res["daily_seconds_numpy"] = ref[3]
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--agents", type=int, default=3, help="agent replications to compare with (0: none)")
    args = ap.parse_args(argv)
    rows = [compare(n, args.agents) for n in args.scenarios]
    for r in rows:
        if "skipped" in r:
            print(f"{r['scenario']}: {r['skipped']}")
            continue
        for how in VARIANTS:
            x = r[how]
            print(f"{r['scenario']:13s} {how:13s} purchases total {x['purchases_total_pct']:+6.2f}% "
                  f"(worst week {x['purchases_weekly_max_pct']:5.2f}%), new customers {x['new_total_pct']:+6.2f}% "
                  f"(worst week {x['new_weekly_max_pct']:5.2f}%), largest flow total off {x['flows_total_max_pct']:5.2f}%")
        for how, x in r.get("agents", {}).items():
            if how != "replications":
                print(f"{r['scenario']:13s} {how:13s} against the agents: purchases {x['purchases_total_pct']:+6.2f}%, "
                      f"new customers {x['new_total_pct']:+6.2f}%, weekly purchases off by "
                      f"{x['purchases_weekly_mean_abs_pct']:.1f}% on average")
    args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

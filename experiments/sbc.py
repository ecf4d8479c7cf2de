"""Simulation-based calibration (SBC) of the calibration model (a script, not a test).

Checks that :func:`journeysim.inference.likelihood.build_model` + NUTS give calibrated posteriors: if data are
simulated from parameters drawn from the prior, the rank of the true value among the posterior
draws must be uniform (Talts et al. 2018). Per dataset ``i = 1..N``:

1. draw ``theta_i`` from the prior: the scenario's uncertain parameters *and* the observation
   noise levels (``noise_<column> ~ HalfNormal(0.1)``, as in the model);
2. simulate the expected weekly KPIs with the numpy twin at ``theta_i`` and draw the observed
   values with :func:`journeysim.model.observe.sample_kpi` (negative binomial);
3. fit with nutpie, **compiled once**: the model is built with ``observed_as_data=True`` and each
   dataset is swapped in with ``compiled.with_data(...)``;
4. thin the pooled draws to ``L = 99`` (evenly spaced, ~independent at the measured ESS) and take
   the rank of ``theta_i`` among them (0..99).

Uniformity is tested per parameter with a chi-square test over 10 equal rank bins (9 d.f.) and a
Kolmogorov-Smirnov test of the normalised ranks ``(rank + 0.5) / 100`` against U(0, 1); the family
of ``2 x parameters`` tests is held at alpha = 0.05 with Bonferroni. Writes
``experiments/results/sbc.json`` and ``sbc_ranks.png`` (rank histograms with the 99% band of a
uniform bin count).

The model is small on purpose (a three-stage funnel, 16 weekly steps, 3 journey parameters + 2
noise levels), so that 100 fits take minutes on two shared cores. ``--scenario FILE`` runs the same
check on a scenario file instead (its priors, plan and negative-binomial observations; the demand
controls of its observed CSV are written into every dataset's CSV unchanged), e.g.
``scenarios/funnel3_demand.yaml`` for seasonality, trend and a promotion control
(``--name sbc_demand`` writes ``sbc_demand.json`` and ``sbc_demand_ranks.png``).

Usage::

    python experiments/sbc.py                    # 100 datasets
    python experiments/sbc.py --datasets 10      # a quick look
    python experiments/sbc.py --scenario scenarios/funnel3_demand.yaml --datasets 40 --name sbc_demand
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from journeysim._util.files import save_figure, write_json
from journeysim.inference.likelihood import NOISE_PRIOR_SIGMA, build_model
from journeysim.inference.priors import build_space
from journeysim.inference.sampling import compile_nutpie
from journeysim.io.observed import read_observed
from journeysim.model.observe import expected_kpi, sample_kpi, weekly_arrays
from journeysim.model.scenario import load_scenario
from journeysim.twin.run import Twin

RESULTS = Path(__file__).resolve().parent / "results"
WEEKS = 16
L = 99  # thinned posterior draws per fit: ranks 0..L
BINS = 10
ALPHA = 0.05

#: A small three-stage funnel with weekly steps: display ads make people interested (spend varies
#: week to week), some interested people buy, some customers fall back to interested.
SCENARIO = {
    "name": "sbc-funnel",
    "market": {"population": 100_000, "agents": 10_000, "start": "2025-01-06", "weeks": WEEKS, "seed": 11,
               "step": "week"},
    "journey": {"template": "funnel3", "initial": {"unaware": 0.85, "interested": 0.10, "customer": 0.05}},
    "personas": {"everyone": {"share": 1.0, "value": 100.0}},
    "channels": {"display": {"cpm": 4.0, "effects": {"unaware->interested": 0.004}, "carryover": 0.6,
                             "saturation": 3.0}},
    "plan": {"spend": {"display": [2000, 6000, 2000, 2000, 8000, 8000, 2000, 0,
                                   0, 4000, 4000, 2000, 6000, 2000, 2000, 1000]}},
    "observations": [
        {"column": "enquiries", "measures": "entries", "stages": ["interested"], "likelihood": "negbin"},
        {"column": "new_customers", "measures": "new_customers", "likelihood": "negbin"},
    ],
    "priors": {
        "effect.display.unaware->interested": "lognormal(0.004, 0.5)",
        "rate.interested->customer": "lognormal(1, 0.4)",
        "rate.customer->interested": "lognormal(1, 0.4)",
    },
}


def simulate_kpis(sc, space, theta: np.ndarray, noise: dict, rng) -> dict:
    """Observed KPI series at ``theta``: the twin's expectation plus negative-binomial noise."""
    params = space.to_params(np, list(theta), sc.params)
    arrays = weekly_arrays(Twin(sc, params=params).run())
    st = sc.structure
    out = {}
    for obs in sc.spec.observations:
        mask = np.array([s in obs.stages for s in st.stages], float)
        mu = expected_kpi(np, arrays, obs.measures, mask, st.population, obs.scale)
        out[obs.column] = sample_kpi(rng, mu, "negbin", noise=noise[obs.column])
    return out


def template_data(sc, kpis: dict, directory: Path):
    """An :class:`ObservedData` with the scenario's plan, its demand controls (raw values) and the
    given KPI values (via a CSV)."""
    st = sc.structure
    dates = pd.date_range(sc.start, periods=sc.weeks, freq="7D")
    cols = {"date": dates.strftime("%Y-%m-%d")}
    cols.update({f"spend_{ch}": sc.plan.spend[:, c] for c, ch in enumerate(st.channels) if st.cost_per_touch[c] > 0})
    d = st.demand
    for j, c in enumerate(d.controls if d is not None else ()):
        cols[c] = d.table[:sc.weeks, j] * d.sd[j] + d.mean[j]
    df = pd.DataFrame({**cols, **kpis})
    path = directory / "observed.csv"
    df.to_csv(path, index=False)
    return read_observed(path, sc)


def run(n: int, draws: int, tune: int, chains: int, seed: int, scenario: Path | None = None) -> dict:
    import nutpie

    sc = load_scenario(SCENARIO if scenario is None else scenario)
    if any((o.likelihood or "negbin") != "negbin" for o in sc.spec.observations):
        raise SystemExit("sbc.py simulates negative-binomial observations only")
    d = sc.structure.demand
    if d is not None and d.controls and d.table.shape[0] < sc.weeks:
        raise SystemExit(f"{scenario}: no observed CSV with its demand controls {', '.join(d.controls)}")
    space = build_space(sc)
    columns = [o.column for o in sc.spec.observations]
    names = list(space.names) + [f"noise_{c}" for c in columns]
    rng = np.random.default_rng(seed)
    theta = space.sample_prior(n, rng)  # (n, p)
    noise = np.abs(rng.normal(0.0, NOISE_PRIOR_SIGMA, (n, len(columns))))  # HalfNormal(0.1)
    truth = np.column_stack([theta, noise])

    with tempfile.TemporaryDirectory() as tmp:
        first = simulate_kpis(sc, space, theta[0], dict(zip(columns, noise[0])), np.random.default_rng(seed + 1))
        data = template_data(sc, first, Path(tmp))
    t0 = time.perf_counter()
    model = build_model(sc, data, space, observed_as_data=True)
    compiled = compile_nutpie(model)
    compile_s = time.perf_counter() - t0

    ranks = np.zeros((n, len(names)), int)
    fits = []
    t_fit = time.perf_counter()
    for i in range(n):
        kpis = simulate_kpis(sc, space, theta[i], dict(zip(columns, noise[i])), np.random.default_rng([seed, i]))
        cm = compiled.with_data(**{f"observed_{c}": kpis[c] for c in columns})
        t = time.perf_counter()
        idata = nutpie.sample(cm, draws=draws, tune=tune, chains=chains, cores=min(chains, 2), seed=seed * 100_003 + i,
                              progress_bar=False, target_accept=0.9)
        secs = time.perf_counter() - t
        post = idata.posterior
        total = chains * draws
        keep = np.linspace(0, total - 1, L).round().astype(int)
        for j, name in enumerate(names):
            d = post[name].values.reshape(-1)[keep]
            ranks[i, j] = int(np.sum(d < truth[i, j]))
        import arviz as az

        summ = az.summary(idata, var_names=names, kind="diagnostics")
        div = int(idata.sample_stats["diverging"].sum())
        fits.append({"seconds": round(secs, 2), "max_rhat": float(summ["r_hat"].max()),
                     "min_ess_bulk": float(summ["ess_bulk"].min()), "divergences": div})
        if (i + 1) % 10 == 0 or i == 0:
            print(f"  {i + 1}/{n} fits, last {secs:.1f} s, max r-hat {fits[-1]['max_rhat']:.3f}, "
                  f"divergences {div}", flush=True)
    fit_s = time.perf_counter() - t_fit

    n_tests = 2 * len(names)
    per_test_alpha = ALPHA / n_tests
    per_param = {}
    for j, name in enumerate(names):
        counts = np.bincount(ranks[:, j] * BINS // (L + 1), minlength=BINS)
        chi2, p_chi2 = stats.chisquare(counts)
        p_ks = float(stats.kstest((ranks[:, j] + 0.5) / (L + 1), "uniform").pvalue)
        per_param[name] = {"bin_counts": counts.tolist(), "chi2": float(chi2), "p_chi2": float(p_chi2),
                           "p_ks": p_ks, "mean_normalised_rank": float(np.mean((ranks[:, j] + 0.5) / (L + 1))),
                           "uniform": bool(p_chi2 > per_test_alpha and p_ks > per_test_alpha)}
    ess = np.array([f["min_ess_bulk"] for f in fits])
    return {
        "scenario": SCENARIO if scenario is None else str(scenario), "datasets": n, "draws": draws, "tune": tune, "chains": chains, "seed": seed,
        "thinned_draws": L, "bins": BINS, "alpha_family": ALPHA, "alpha_per_test": per_test_alpha,
        "tests": "chi-square over 10 equal rank bins (9 d.f.) and KS of (rank+0.5)/(L+1) vs U(0,1), per parameter; "
                 "Bonferroni over 2 x parameters",
        "parameters": names, "all_uniform": all(v["uniform"] for v in per_param.values()),
        "per_parameter": per_param, "compile_seconds": compile_s, "fit_seconds_total": fit_s,
        "fit_seconds_median": float(np.median([f["seconds"] for f in fits])),
        "fits_with_divergences": int(sum(f["divergences"] > 0 for f in fits)),
        "fits_rhat_over_1.01": int(sum(f["max_rhat"] > 1.01 for f in fits)),
        "min_ess_bulk_median": float(np.median(ess)), "min_ess_bulk_min": float(ess.min()),
        "ranks": ranks.tolist(), "truth": truth.tolist(), "fits": fits,
    }


def plot(res: dict):
    from matplotlib.figure import Figure

    names = res["parameters"]
    ranks = np.array(res["ranks"])
    n = ranks.shape[0]
    lo, hi = stats.binom(n, 1 / BINS).ppf([0.005, 0.995])
    fig = Figure(figsize=(3.2 * len(names), 3.0))
    axes = fig.subplots(1, len(names))
    for ax, name in zip(np.atleast_1d(axes), names):
        info = res["per_parameter"][name]
        ax.axhspan(lo, hi, color="0.85", lw=0, label="99% band (uniform)")
        ax.axhline(n / BINS, color="0.5", lw=0.8)
        ax.bar(np.arange(BINS), info["bin_counts"], width=0.9, color="C0")
        ax.set_title(f"{name}\nchi2 p={info['p_chi2']:.2f}, KS p={info['p_ks']:.2f}", fontsize=8)
        ax.set_xticks([0, BINS - 1], ["low", "high"])
        ax.set_xlabel("rank of the true value (10 bins)", fontsize=8)
    np.atleast_1d(axes)[0].set_ylabel(f"datasets (of {n})")
    np.atleast_1d(axes)[0].legend(fontsize=7, frameon=False, loc="lower left")
    fig.suptitle(f"SBC: {n} datasets, ranks among {L} thinned posterior draws")
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--tune", type=int, default=300)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--scenario", type=Path, default=None,
                    help="a scenario file (default: the built-in three-stage funnel)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--name", default="sbc", help="writes OUT/NAME.json and OUT/NAME_ranks.png")
    a = ap.parse_args(argv)
    res = run(a.datasets, a.draws, a.tune, a.chains, a.seed, a.scenario)
    write_json(res, a.out / f"{a.name}.json")
    save_figure(plot(res), a.out / f"{a.name}_ranks.png")
    print(f"compile {res['compile_seconds']:.0f} s; {a.datasets} fits in {res['fit_seconds_total']:.0f} s "
          f"(median {res['fit_seconds_median']:.1f} s); divergent fits {res['fits_with_divergences']}, "
          f"r-hat > 1.01 in {res['fits_rhat_over_1.01']}")
    for name, v in res["per_parameter"].items():
        print(f"  {name:40s} chi2 p={v['p_chi2']:.3f}  KS p={v['p_ks']:.3f}  {'ok' if v['uniform'] else 'NOT UNIFORM'}")
    print(f"all uniform at family alpha {ALPHA} (Bonferroni): {res['all_uniform']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A scenario from a brand's weekly CSV (``journeysim init``): channels, observations, priors, and
base rates solved so that the twin reproduces the observed levels before any fitting.

What it reads: ``date``, ``spend_<channel>`` (and ``impressions_<channel>``: the cost per thousand
impressions is spend over impressions; without them a CPM of :data:`ASSUMED_CPM` is assumed and
said so), KPI columns it recognises by name (:data:`KPI_NAMES`), and demand controls
(:data:`CONTROL_NAMES`). Every other column is listed with how to map it.

How the levels are solved (what a user would otherwise do by hand with the twin): from the
journey's own base rates, repeat: run the twin over the observed spend, then multiply
``unaware->aware`` by the ratio of observed to simulated awareness odds; ``aware->considering`` and
``considering->purchased`` by the square root of the ratio of new customers; the repeat-purchase
rates by the ratio of repeat purchases (each step damped and bounded); restart from the run's end
state so that the initial shares settle; finally set the tracking scales of entry and referral
KPIs to observed over simulated means. Each channel's effect starts where, at its average spend,
it adds :data:`MEDIA_SHARE` to the hazard of the transition it moves.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from journeysim.errors import InputError

__all__ = ['scenario_from_csv', 'write_scenario', 'lean_priors', 'LEVER_RATES', 'SURVEYED_LEVER_RATES', 'KPI_NAMES', 'CONTROL_NAMES', 'ASSUMED_CPM', 'MEDIA_SHARE']

#: KPI columns recognised by name (regular expressions, lower case) and what they measure.
KPI_NAMES = (
    (r"(aware|awareness).*(share|survey|pct|rate)?$", "share"),
    (r"(new_customers?|new_subscribers?|first_orders?|acquisitions?|new_buyers?)$", "new_customers"),
    (r"(purchases?|orders?|transactions?|conversions?|sales_units|units)$", "purchases"),
    (r"(revenue|sales|sales_value|turnover)$", "revenue"),
    (r"(site_visits?|visits?|sessions?|traffic|trials?|leads?|enquiries|branded_queries|queries|searches)$", "entries"),
    (r"(referrals?|recommendations?)$", "referrals"),
)
#: Demand controls recognised by name, with the direction of their effect.
CONTROL_NAMES = ((r"(promo|promotion)", "positive"), (r"(holiday|event)", "free"), (r"(price)", "negative"),
                 (r"(competitor|competition)", "free"), (r"(category|market)_?(index|demand|sales)", "positive"),
                 (r"generic", "positive"))
#: Cost per thousand impressions assumed for a channel without ``impressions_<channel>``.
ASSUMED_CPM = 10.0
#: Share of its target transition's hazard a channel adds at its average spend, to start from.
MEDIA_SHARE = 0.15
#: Survey sample size assumed for a share KPI without a ``<column>_n`` column.
ASSUMED_SAMPLE = 500

# channel roles by name: the transitions of the default journey each moves
_UPPER = ("unaware->aware", "aware->considering")
_ROLES = ((r"search|sem|ppc|shopping|affiliate", ("considering->purchased",)),
          (r"email|crm|newsletter|retarget|loyalty", ("loyal->purchased",)),
          (r"social|facebook|meta|instagram|tiktok|native|influencer", ("aware->considering",)),
          (r"", _UPPER))
_AWARE = ["aware", "considering", "purchased", "loyal", "advocate"]


def _measure(col: str) -> str | None:
    c = col.lower()
    for pat, m in KPI_NAMES:
        if re.search(pat, c) and not c.endswith("_n"):
            return m
    return None


def _role(ch: str) -> tuple[str, ...]:
    for pat, edges in _ROLES:
        if re.search(pat, ch.lower()):
            return edges
    return _UPPER


def _read(csv: Path):
    import pandas as pd

    if not csv.exists():
        raise InputError("file not found", str(csv))
    try:
        df = pd.read_csv(csv, encoding="utf-8-sig")
    except Exception as exc:  # pandas raises many types for malformed CSV
        raise InputError(f"cannot read CSV: {exc}", str(csv)) from None
    df.columns = [str(c).strip() for c in df.columns]
    if "date" not in df.columns:
        raise InputError("no 'date' column (init needs weekly rows with a date)", str(csv))
    if not [c for c in df.columns if c.startswith("spend_")]:
        raise InputError("no spend_<channel> columns: init needs the media spend", str(csv))
    if len(df) < 8:
        raise InputError(f"{len(df)} weeks; init needs at least 8 weekly rows", str(csv))
    return df


def _layout(df, csv: Path) -> tuple[dict, list[str], list[str]]:
    """Channels, observations and controls from the columns; notes; unmapped columns."""
    notes, unmapped, channels, observations, controls = [], [], {}, [], {}
    spend_cols = [c for c in df.columns if c.startswith("spend_")]
    used = {"date", *spend_cols}
    for col in spend_cols:
        ch = col[len("spend_"):]
        imp = f"impressions_{ch}"
        spend = df[col].to_numpy(float)
        if imp in df.columns and df[imp].sum() > 0:
            cpm = 1000.0 * spend.sum() / df[imp].to_numpy(float).sum()
            used.add(imp)
        else:
            cpm = ASSUMED_CPM
            notes.append(f"channels.{ch}.cpm: no {imp} column, so a CPM of {ASSUMED_CPM:g} is assumed; "
                         f"put the channel's real cost per thousand impressions here")
        edges = _role(ch)
        spec = {"cpm": round(float(cpm), 4), "effects": {e: 0.0 for e in edges},
                "carryover": 0.85 if edges == _UPPER else 0.5}
        if "considering->purchased" in edges:
            spec["targeting"] = {"stages": {"considering": 1.0, "aware": 0.1}}
        channels[ch] = spec
    for col in df.columns:
        if col in used:
            continue
        c = col.lower()
        ctrl = next((sign for pat, sign in CONTROL_NAMES if re.search(pat, c)), None)
        m = None if ctrl is not None else _measure(col)  # (competitor_sales is a control, not the brand's sales)
        if ctrl is not None:
            controls[col] = {"sign": ctrl}
            used.add(col)
            continue
        if m is None:
            continue
        obs = {"column": col, "measures": m}
        if m == "share":
            obs["stages"] = list(_AWARE)
            n = f"{col}_n" if f"{col}_n" in df.columns else None
            obs["sample_size"] = n or ASSUMED_SAMPLE
            if n is None:
                notes.append(f"observations ({col}): no {col}_n column, so a survey sample of {ASSUMED_SAMPLE} "
                             f"people a week is assumed")
            used.update({col, n} - {None})
            obs["likelihood"] = "binomial"
        else:
            if m == "entries":
                obs["stages"] = ["considering"]
            obs["likelihood"] = "normal" if m == "revenue" else "negbin"
            used.add(col)
        observations.append(obs)
    for col in df.columns:
        if col not in used:
            unmapped.append(col)
    if not observations:
        raise InputError("no KPI column recognised (purchases, orders, new_customers, revenue, site_visits, "
                         "awareness, referrals, ...); name one so, or write the scenario by hand", str(csv))
    return {"channels": channels, "observations": observations, "controls": controls}, notes, unmapped


def scenario_from_csv(csv: str | Path, population: float, *, journey: str = "default", agents: int | None = None,
                      iterations: int = 25, out_dir: Path | None = None) -> tuple[dict, list[str], list[str], dict]:
    """``(scenario mapping, notes, unmapped columns, levels)`` for the CSV, with the levels solved.

    ``levels`` maps each KPI to its observed and simulated mean weekly value after solving.
    ``out_dir`` is where the scenario will be written (its ``data:`` and ``plan:`` are relative to it).
    """
    import pandas as pd

    from journeysim.model.scenario import DEFAULT_RATES

    csv = Path(csv)
    if journey != "default":
        raise InputError(f"init writes the default journey; '{journey}' scenarios are written by hand "
                         f"(start from scenarios/*.yaml)", "--journey")
    if not population > 0 or not np.isfinite(population):
        raise InputError(f"the population must be a positive number, not {population}", "--population")
    df = _read(csv)
    lay, notes, unmapped = _layout(df, csv)
    out_dir = Path(out_dir) if out_dir is not None else csv.parent
    try:
        rel = str(Path(csv).resolve().relative_to(out_dir.resolve()))
    except ValueError:
        rel = str(Path(csv).resolve())
    kinds = {o["measures"]: o for o in lay["observations"]}
    obs_mean = {o["column"]: float(pd.to_numeric(df[o["column"]], errors="coerce").mean()) for o in lay["observations"]}
    rates = dict(DEFAULT_RATES["default"])
    initial = {"unaware": 0.4, "aware": 0.3, "considering": 0.05, "purchased": 0.05, "loyal": 0.17, "advocate": 0.03}
    value = 1.0
    if "revenue" in kinds and "purchases" in kinds:
        value = obs_mean[kinds["revenue"]["column"]] / max(obs_mean[kinds["purchases"]["column"]], 1e-9)
    elif "revenue" in kinds:
        notes.append("personas.everyone.value: revenue is the only sales KPI, so the value of a purchase was solved "
                     "to match its level; put the average order value here if you know it (and a purchases KPI)")
    raw = {
        "name": csv.stem,
        "description": f"Written by journeysim init from {csv.name}: the default journey, one persona, "
                       f"{len(lay['channels'])} channels, {len(lay['observations'])} KPIs.",
        "market": {"population": float(population), "agents": int(agents or min(100_000, population)),
                   "start": str(pd.to_datetime(df["date"]).iloc[0].date()), "weeks": len(df), "step": "week",
                   "seed": 0},
        "journey": {"template": "default", "rates": rates, "initial": initial},
        "personas": {"everyone": {"share": 1.0, "value": round(float(value), 6)}},
        "channels": lay["channels"],
        "word_of_mouth": {"rate": 0.02, "from": {"advocate": 1.0},
                          "effects": {"unaware->aware": 0.02, "aware->considering": 0.01}, "carryover": 0.5},
        "plan": {"csv": rel},
        "data": rel,
        "observations": lay["observations"],
        "demand": {"seasonality": {"order": 2}, "trend": {},
                   **({"controls": lay["controls"]} if lay["controls"] else {})} if len(df) >= 52 else None,
    }
    if raw["demand"] is None:
        del raw["demand"]
        notes.append(f"demand: {len(df)} weeks are less than a year, so no yearly seasonality is fitted")
    levels, solve_notes = _solve(raw, df, kinds, obs_mean, iterations)
    return raw, notes + solve_notes, unmapped, levels


def _solve(raw, df, kinds, obs_mean, iterations) -> tuple[dict, list[str]]:
    """Tune base rates, initial shares, channel effects and tracking scales to the observed levels (in
    place); return the levels reached and notes on what could not be reached."""
    from journeysim.model.scenario import load_scenario
    from journeysim.twin.run import run_twin

    plan_spend = {c: df[f"spend_{c}"].to_numpy(float) for c in raw["channels"]}
    notes: list[str] = []

    def run(r):
        """The twin over the observed spend (no data file, no demand terms: they start at zero anyway)."""
        r = {**r, "plan": {"spend": {c: v.tolist() for c, v in plan_spend.items()}}, "data": None}
        r.pop("demand", None)
        return run_twin(load_scenario(r))

    def levels(tw):
        size = tw.stage_size.sum("persona")
        N = float(size.isel(time=0).sum())
        new = float(tw.purchases_new.sum("persona").mean())
        allp = float(tw.purchases.sum("persona").mean()) if "purchases" in tw else new
        return {"share": float((size.sel(stage=_AWARE).sum("stage") / N).mean()), "new_customers": new,
                "purchases": allp, "repeat": allp - new,
                "revenue": float(tw.revenue.sum("persona").mean()),
                "entries": float(tw.entries.sum("persona").sel(stage="considering").mean()),
                "referrals": float(tw.referrals.mean()),
                "end": {str(s): float(v) for s, v in zip(size.stage.values, (size.isel(time=-1) / N).values)}}

    def target(m):
        return obs_mean[kinds[m]["column"]] if m in kinds else None

    def step(f, e):
        return float(np.clip(f ** e, 0.7, 1.4)) if np.isfinite(f) and f > 0 else 1.0

    rates = raw["journey"]["rates"]
    tw = run(raw)
    _set_effects(raw, tw, plan_spend)
    for _ in range(iterations):
        tw = run(raw)
        lv = levels(tw)
        if target("share") is not None:
            odds = lambda p: p / (1 - p)  # noqa: E731
            rates["unaware->aware"] *= step(odds(np.clip(target("share"), 1e-6, 1 - 1e-6)) / odds(lv["share"]), 0.8)
        new_t = target("new_customers")
        buy_t = target("purchases")  # (revenue alone sets the value of a purchase instead, below)
        if new_t is not None:
            f_new = new_t / lv["new_customers"]
            lever = ["aware->considering", "considering->purchased"]
            if target("share") is None:  # nothing pins awareness: it takes its part of the new customers
                lever.append("unaware->aware")
            for k in lever:
                rates[k] *= step(f_new, 1.0 / len(lever))
            f_rep = max(buy_t - new_t, 1e-9) / max(lv["repeat"], 1e-9) if buy_t is not None else 1.0
            if buy_t is not None:
                for k in ("loyal->purchased", "advocate->purchased"):
                    rates[k] *= step(f_rep, 0.8)
            # new customers come back from churn: customers lapsing to the aware and unaware stages
            for k in ("purchased->aware", "purchased->unaware", "loyal->aware"):
                if k in rates:
                    rates[k] *= step(f_new / f_rep, 0.5)
        elif buy_t is not None:
            f = buy_t / lv["purchases"]
            for k in ("considering->purchased", "loyal->purchased", "advocate->purchased"):
                rates[k] *= step(f, 0.6)
        ends = {k: max(v, 1e-4) for k, v in lv["end"].items()}
        s = sum(ends.values())
        raw["journey"]["initial"] = {k: v / s for k, v in ends.items()}
        _set_effects(raw, tw, plan_spend)
    tw = run(raw)
    lv = levels(tw)
    if target("revenue") is not None and target("purchases") is None:
        raw["personas"]["everyone"]["value"] = float(f"{target('revenue') / max(lv['purchases'], 1e-12):.4g}")
        tw = run(raw)
        lv = levels(tw)
    for o in raw["observations"]:
        m = o["measures"]
        ratio = obs_mean[o["column"]] / max(lv[m], 1e-12)
        if m in ("entries", "referrals"):
            o["scale"] = float(f"{ratio:.4g}")
        elif m != "share" and not 0.9 <= ratio <= 1.1:  # the journey's rates could not reach it
            o["scale"] = float(f"{ratio:.4g}")
            notes.append(
                f"observations ({o['column']}): the journey's rates reach {1 / ratio:.2f}x the observed level, so "
                f"the KPI is read with scale {ratio:.4g} (observed = scale x simulated); check the population and "
                f"what the column counts")
    # rounding for people, then the final levels as written
    raw["journey"]["rates"] = {k: float(f"{v:.4g}") for k, v in rates.items()}
    init = {k: round(v, 4) for k, v in raw["journey"]["initial"].items()}
    init["unaware"] = round(1.0 - sum(v for k, v in init.items() if k != "unaware"), 4)
    raw["journey"]["initial"] = init
    tw = run(raw)
    lv = levels(tw)
    out = {}
    for o in raw["observations"]:
        m = o["measures"]
        sim = lv[m] * o.get("scale", 1.0) if m != "share" else lv["share"]
        out[o["column"]] = {"observed": obs_mean[o["column"]], "scenario": sim,
                            "ratio": sim / obs_mean[o["column"]] if obs_mean[o["column"]] else np.inf}
    return out, notes


def _set_effects(raw, tw, plan_spend) -> None:
    """Each channel's effect: at its average spend it adds :data:`MEDIA_SHARE` of its transitions' base hazard."""
    rates = raw["journey"]["rates"]
    N = float(raw["market"]["population"])
    size = tw.stage_size.sum("persona")
    for ch, spec in raw["channels"].items():
        weekly = float(np.mean(plan_spend[ch])) / spec["cpm"] * 1000.0  # impressions a week
        stages = spec.get("targeting", {}).get("stages")
        if stages:
            targeted = sum(float(size.sel(stage=s).mean()) * w for s, w in stages.items())
        else:
            targeted = N
        per_day = weekly / 7.0 / max(targeted, 1.0)
        memory = per_day / max(1.0 - spec["carryover"], 1e-3)  # steady-state exposure memory per person
        for e in spec["effects"]:
            base = rates.get(e, 0.01)
            spec["effects"][e] = float(f"{MEDIA_SHARE * base / max(memory, 1e-9):.4g}") if memory > 0 else 0.0


#: Base rates the fit learns (multipliers): the levers of conversion and repeat purchase.
LEVER_RATES = ("rate.considering->purchased", "rate.loyal->purchased")
#: Also learned when a KPI measures awareness (a survey share): the base of awareness. Without an
#: awareness measure nothing in the data tells it from the channels that raise awareness, and the fit
#: mixes slowly (the shop CSV, 2 x 1000 draws: min bulk ESS 175 and a divergence with it, 326 and none
#: without). Learning the base of consideration too was measured and not adopted: on the test markets
#: (15 fits, experiments/RESULTS.md), error 3.52% of baseline purchases against 3.30%, coverage 42%
#: against 50%.
SURVEYED_LEVER_RATES = ("rate.unaware->aware",)


def lean_priors(defaults: dict[str, str], scenario) -> dict[str, str]:
    """The default priors a CSV can inform: every paid channel's effects and saturation, the carry-over
    of the upper-funnel channels (those that remember for weeks), the word-of-mouth rate (not its
    effects: their product with the rate is what the data see), and only the lever base rates
    (:data:`LEVER_RATES`, and :data:`SURVEYED_LEVER_RATES` when a KPI measures awareness); the rest stay
    at the values solved to the observed levels. (With every base rate and carry-over uncertain, the
    posterior has ridges a default-length fit does not cross.)"""
    st = scenario.structure
    surveyed = any(o.measures == "share" for o in scenario.spec.observations)
    levers = LEVER_RATES + (SURVEYED_LEVER_RATES if surveyed else ())
    keep = {}
    for k, v in defaults.items():
        kind, _, rest = k.partition(".")
        if kind == "rate" and k not in levers:
            continue
        if rest.startswith("word_of_mouth"):
            continue
        if kind == "carryover":
            if rest not in st.channels or scenario.params.carryover[st.channels.index(rest)] < 0.8:
                continue
        keep[k] = v
    return keep


def write_scenario(raw: dict, path: Path, notes: list[str], unmapped: list[str], levels: dict) -> None:
    """The scenario as commented YAML (written atomically)."""
    import yaml

    from journeysim._util.files import write_text
    from journeysim.inference.priors import default_priors
    from journeysim.model.scenario import load_scenario

    body = dict(raw)
    lines = [f"# {raw['description']}",
             "# Base rates, initial shares, channel effects and tracking scales were solved so that the twin",
             "# reproduces the observed mean levels (journeysim check shows the prior against the data):"]
    from journeysim._util.format import number

    for col, lv in levels.items():
        lines.append(f"#   {col}: observed {number(lv['observed'])} a week, scenario {number(lv['scenario'])} "
                     f"({lv['ratio']:.2f}x)")
    for n in notes:
        lines.append(f"# NOTE {n}")
    if unmapped:
        lines.append("# Columns not used: " + ", ".join(unmapped) + ". Map a KPI under observations: (column, measures:"
                     " entries|share|purchases|new_customers|referrals|revenue), a control under demand.controls,"
                     " or leave it out.")
    text = "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
    tmp = path.with_name(path.name + ".check.yaml")
    write_text(text, tmp)
    try:
        sc = load_scenario(tmp)
        pri = lean_priors(default_priors(sc), sc)
    finally:
        tmp.unlink(missing_ok=True)
    body["priors"] = pri  # written out, so that the user sees and edits them
    text = "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
    write_text(text, path)

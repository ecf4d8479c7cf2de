"""``journeysim report DIR``: one self-contained HTML page for a planner, from the commands' output folders.

The page is a single file (styles inline, figures embedded as base64 PNG, no script from outside,
no server): open it in any browser, mail it, archive it. It reads what ``fit``, ``forecast`` /
``compare`` / ``plan``, ``optimize`` and ``backtest`` wrote (whichever are found in ``DIR`` or its
direct subfolders, or are named with ``--fit``, ``--forecast``, ``--optimize``, ``--backtest``),
and has one section per question a planner asks; a section whose inputs are missing is listed as
absent, with the command that would add it.

Every number in a table carries where it came from (``data-src``: the folder's ``summary.json``
and the key path; ``data-values``: the values), so a test can check the page against the files.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from journeysim._util.format import interval, money, number, percent, value
from journeysim.errors import InputError

__all__ = ['register', 'find_inputs', 'build_report', 'write_report', 'KINDS']

#: The folders a report reads, and the file that marks each (besides its summary.json).
KINDS = {"fit": "fit.json", "forecast": "forecast.nc", "optimize": "optimum.nc", "backtest": "backtest.png"}

#: The command that produces each kind of folder, for the "absent" notes.
MAKES = {"fit": "journeysim fit SCENARIO --out DIR/fit (or journeysim plan)",
         "forecast": "journeysim plan SCENARIO --out DIR (or journeysim compare ... --out DIR)",
         "optimize": "journeysim optimize SCENARIO --posterior DIR/fit --budget TOTAL --out DIR/optimize",
         "backtest": "journeysim backtest SCENARIO --out DIR/backtest"}


# ---------------------------------------------------------------------------------------------
# inputs


def _kind(folder: Path) -> str | None:
    if not (folder / "summary.json").is_file():
        return None
    for kind, marker in KINDS.items():
        if (folder / marker).exists():
            return kind
    return None


def find_inputs(directory: str | Path, **given: str | Path | None) -> dict[str, Path]:
    """The output folders of each kind: those ``given``, else ``directory`` itself, else its subfolders."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("no such directory (give the --out folder of journeysim plan, fit, compare, ...)",
                         str(directory))
    found: dict[str, Path] = {}
    for folder in [directory, *sorted(p for p in directory.iterdir() if p.is_dir())]:
        k = _kind(folder)
        if k and k not in found:
            found[k] = folder
    for k, v in given.items():
        if v is not None:
            if _kind(Path(v)) != k:
                raise InputError(f"not the output folder of journeysim {k} (no summary.json and {KINDS[k]})", str(v))
            found[k] = Path(v)
    return found


def _read(folder: Path) -> dict:
    try:
        return json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read summary.json: {exc}", str(folder)) from exc


# ---------------------------------------------------------------------------------------------
# HTML pieces

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
p.lede{color:#555;margin-top:0} .ok{color:#1a7f37} .bad{color:#b42318;font-weight:600}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.92em}
th,td{padding:.25em .7em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f6f6f6;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
img{max-width:100%;height:auto;display:block;margin:.5em 0} .note{color:#555;font-size:.9em}
ul.absent li{color:#555} code{background:#f3f3f3;padding:0 .25em;border-radius:3px} div.wide{overflow-x:auto}
"""

#: Marks on the page, after loading, how many figures and tables rendered (``data-rendered`` on ``body``).
CHECK = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var tabs = Array.prototype.slice.call(document.querySelectorAll("table"));
  var ok = function (el) { var r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  document.body.setAttribute("data-rendered", JSON.stringify({
    figures: imgs.length, figures_ok: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0 && ok(i); }).length,
    tables: tabs.length, tables_ok: tabs.filter(function (t) { return t.rows.length > 1 && ok(t); }).length}));
});
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _get(tree: dict, path: Sequence[str]) -> Any:
    for k in path:
        tree = tree[k]
    return tree


class Cells:
    """Table cells whose numbers name their source: ``summary.json`` of folder ``src``, at key ``path``."""

    def __init__(self, src: str, summary: dict, currency: str | None = None):
        self.src, self.summary, self.currency = src, summary, currency

    def _td(self, paths: list[list[str]], text: str) -> str:
        values = [_get(self.summary, p) for p in paths]
        refs = [[self.src, list(p)] for p in paths]
        return (f"<td class='num' data-src='{esc(json.dumps(refs))}' data-values='{esc(json.dumps(values))}'>"
                f"{esc(text)}</td>")

    def one(self, path: list[str], kind: str = "number", *, signed: bool = False, digits: int | None = None) -> str:
        v = _get(self.summary, path)
        if v is None:
            return "<td class='num'>-</td>"
        text = percent(v, digits or 0) if kind == "percent" else (
            f"{v:.{digits}f}" if digits is not None else value(v, kind, self.currency, signed=signed))
        return self._td([path], text)

    def interval(self, path: list[str], kind: str = "number", *, keys=("mean", "lower", "upper"),
                 signed: bool = False) -> str:
        paths = [[*path, k] for k in keys]
        m, lo, hi = (_get(self.summary, p) for p in paths)
        if lo == hi:
            return self._td([paths[0]], value(m, kind, self.currency, signed=signed))
        return self._td(paths, interval(m, lo, hi, kind, self.currency, signed=signed))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    """``rows`` hold ready cells (``<td>...``) or plain text (escaped, left-aligned)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(c if str(c).startswith("<td") else f"<td>{esc(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    cap = f"<caption class='note'>{esc(caption)}</caption>" if caption else ""
    return f"<div class='wide'><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def figure_png(fig_or_path, alt: str) -> str:
    """An ``<img>`` with the PNG inline (a matplotlib Figure, or a PNG file the commands wrote)."""
    if isinstance(fig_or_path, (str, Path)):
        data = Path(fig_or_path).read_bytes()
    else:
        buf = io.BytesIO()
        fig_or_path.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        data = buf.getvalue()
    return f"<img alt='{esc(alt)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"


# ---------------------------------------------------------------------------------------------
# sections


def _convergence(fit: dict) -> str:
    chains = int(fit.get("chains") or 1)
    rhat, ess, div = fit.get("max_rhat"), fit.get("min_ess_bulk"), fit.get("divergences")
    if rhat is None or ess is None:
        nums = "no diagnostics recorded"
    else:
        nums = (f"max r-hat {rhat:.3f} (needs ≤ 1.01), min bulk ESS {number(round(ess))} (needs ≥ "
                f"{number(100 * chains)}: 100 per chain), {number(div)} divergences (needs 0)")
    refs = esc(json.dumps([["fit", ["max_rhat"]], ["fit", ["min_ess_bulk"]], ["fit", ["divergences"]]]))
    vals = esc(json.dumps([rhat, ess, div]))
    line = f"<span data-src='{refs}' data-values='{vals}'>{esc(nums)}</span>"
    if fit.get("converged"):
        return (f"<p id='convergence-line'><span class='ok'>The calibration converged</span>: {line}. "
                f"Its {number(fit.get('draws', 0) * chains)} posterior draws describe what the data say.</p>")
    if fit.get("advice"):  # (what calibrate found went wrong: inference.posterior.convergence_advice)
        what = [esc(a) for a in fit["advice"]]
    else:  # (a fit saved before the advice existed)
        what = ["refit with more draws and tuning steps (e.g. <code>--draws 2000 --tune 2000</code>)"]
        if div:
            what.append("raise the target acceptance (<code>--target-accept 0.95</code>) or try "
                        "<code>--coords softplus</code>")
        what.append("check the data and the priors if it still fails")
    return (f"<p id='convergence-line'><span class='bad'>The calibration did NOT converge</span>: {line}. "
            f"What to do: {'; '.join(what)}. Until then, treat every number below as provisional.</p>")


def section_fit(d: Path, fit: dict) -> str:
    out = ["<h2 id='fit'>How well the model fits the data</h2>", _convergence(fit)]
    c = Cells("fit", fit)
    crit = fit.get("criticism") or {}
    cover = fit.get("ppc_coverage_90") or {}
    kpis = list(dict.fromkeys([*cover, *crit]))
    if kpis:
        rows = []
        for k in kpis:
            r = crit.get(k, {})
            rows.append([k.replace("_", " "),
                         c.one(["ppc_coverage_90", k], "percent") if k in cover else "-",
                         c.one(["criticism", k, "r2"], "percent") if r.get("r2") is not None else "-",
                         c.one(["criticism", k, "residual_autocorrelation"], signed=True)
                         if r.get("residual_autocorrelation") is not None else "-",
                         c.one(["criticism", k, "noise_cv"], "percent", digits=1)
                         if r.get("noise_cv") is not None else "-"])
        out.append(table(["KPI", "observed weeks inside the 90% band", "variation explained (R²)",
                          "residual autocorrelation (lag 1)", "fitted noise (CV)"], rows,
                         "posterior predictive check per KPI: about 90% of weeks should fall inside the band; "
                         "R² below 50% or residual autocorrelation above 0.3 point to misfit"))
    if (d / "ppc.png").exists():
        out.append(figure_png(d / "ppc.png", "posterior predictive check per KPI"))
    return "\n".join(out)


def section_funnel(d: Path) -> str:
    import xarray as xr

    from journeysim.plots.report import plot_funnel

    with xr.open_dataset(d / "forecast.nc", engine="h5netcdf") as fc:
        fig = plot_funnel(fc.load())
    return ("<h2 id='funnel'>The funnel over the forecast</h2><p>People in each journey stage, week by week, "
            "for every plan (posterior median; the band is the baseline's 90% interval).</p>"
            + figure_png(fig, "people in each stage over the forecast weeks"))


def section_contributions(fc: dict, currency) -> str:
    from journeysim.plots.report import plot_contributions

    contrib = fc["contributions"]
    c = Cells("forecast", fc, currency)
    stages = list(next(iter(contrib.values()))["people_by_stage"])
    rows = [[ch, c.one(["contributions", ch, "spend"], "money"),  # (the channel's baseline spend over the horizon)
             c.interval(["contributions", ch, "purchases"], signed=True),
             c.interval(["contributions", ch, "new_customers"], signed=True),
             c.interval(["contributions", ch, "revenue"], "money", signed=True)]
            + [c.one(["contributions", ch, "people_by_stage", s, "mean"], signed=True) for s in stages]
            for ch in contrib]
    return ("<h2 id='contributions'>What each channel adds</h2>"
            "<p>The baseline forecast minus the same forecast with the channel switched off (same posterior "
            "draws): what the channel's current spend buys, by outcome and by journey stage.</p>"
            + table(["channel", "its baseline spend over the horizon", "purchases it adds", "new customers it adds", "revenue it adds",
                     *(f"people in '{s}' (mean)" for s in stages)], rows,
                    "posterior mean [90% interval]; purchases and revenue over horizon + tail")
            + figure_png(plot_contributions(contrib, currency), "what each channel adds"))


def section_plans(d: Path, fc: dict, currency) -> str:
    c = Cells("forecast", fc, currency)
    keys = ("mean", "lower_5%", "upper_95%")
    rows = [[p, c.interval(["plans", p, "purchases"], keys=keys), c.interval(["plans", p, "revenue"], "money", keys=keys),
             c.interval(["plans", p, "spend"], "money", keys=keys), c.interval(["plans", p, "roas"], "ratio", keys=keys)]
            for p in fc["plans"]]
    out = ["<h2 id='plans'>The plans compared</h2>",
           f"<p>Forecast over {number(fc['horizon_weeks'])} weeks plus a {number(fc['tail_weeks'])}-week carry-over "
           f"tail, {number(fc['draws'])} posterior draws. The baseline continues the average spend of the last 13 "
           "observed weeks.</p>",
           table(["plan", "purchases", "revenue", "media spend", "ROAS"], rows,
                 "posterior mean [90% interval]; media spend is fixed by the plan. " + fc.get(
                     "roas_definition", "ROAS = incremental revenue / incremental spend."))]
    cmp = fc.get("comparison") or {}
    metric = fc.get("comparison_metric", "purchases")
    if cmp:
        rows = [[p, c.interval(["comparison", p, "purchases"], signed=True),
                 c.interval(["comparison", p, "revenue"], "money", signed=True),
                 c.interval(["comparison", p, "media_new_customers"], signed=True),
                 c.one(["comparison", p, metric, "prob_better"], "percent")] for p in cmp]
        out.append(table(["plan", "change in purchases", "change in revenue", "change in new customers won by media",
                          f"P(beats the baseline on {metric.replace('_', ' ')})"], rows,
                         "against the baseline, per posterior draw: mean [90% interval]"))
    for f, alt in (("comparison.png", "each plan against the baseline"), ("forecast.png", "weekly forecast per plan")):
        if (d / f).exists():
            out.append(figure_png(d / f, alt))
    return "\n".join(out)


def section_response(d: Path, fc: dict | None) -> str:
    out = ["<h2 id='response'>Response curves</h2>",
           "<p>What each channel's total spend over the horizon buys, the other channels held at the baseline "
           "(| marks the baseline).</p>", figure_png(d / "response.png", "response curves")]
    base = (fc or {}).get("plans", {}).get("baseline", {})
    if base.get("mroas_mean"):
        c = Cells("forecast", fc, fc.get("currency"))
        rows = [[ch, c.one(["plans", "baseline", "spend_by_channel", ch], "money"),
                 c.one(["plans", "baseline", "mroas_mean", ch], "ratio")] for ch in base["mroas_mean"]]
        out.append(table(["channel", "baseline spend over the horizon", "revenue from one more unit of spend"], rows,
                         "marginal return at the baseline (posterior mean): where the next unit of budget earns most"))
    return "\n".join(out)


def section_optimize(d: Path, opt: dict, currency) -> str:
    c = Cells("optimize", opt, currency)
    horizon = int(opt.get("horizon_weeks", 0) or 0)
    weekly = opt.get("allocation_weekly") or {}
    periods = len(next(iter(weekly.values()))) if weekly else 0
    rows = [[ch, c.one(["baseline_weekly", ch], "money")]
            + [c.one(["allocation_weekly", ch, k], "money") for k in range(periods)]
            + [c.one(["allocation_total", ch], "money")] for ch in opt["allocation_total"]]
    heads = ["channel", "baseline spend / week"] + [
        "optimum spend / week" if periods == 1 else f"optimum spend / week, period {k + 1}" for k in range(periods)]
    out = ["<h2 id='optimize'>The best split of the budget</h2>",
           f"<p>Budget {esc(money(opt.get('budget'), currency))} over "
           f"{number(horizon) + ' weeks' if horizon else 'the horizon'}, maximising {esc(opt.get('objective', ''))}."
           "</p>",
           table([*heads, "optimum: total over the horizon"], rows)]
    g = opt.get("gain_vs_baseline") or {}
    if g:
        rows = [[p.replace("_", " "), c.interval(["gain_vs_baseline", p, "purchases"], signed=True),
                 c.interval(["gain_vs_baseline", p, "revenue"], "money", signed=True),
                 c.one(["gain_vs_baseline", p, "purchases", "prob_better"], "percent")] for p in g]
        out.append(table(["plan", "change in purchases", "change in revenue", "P(more purchases)"], rows,
                         "against the baseline (current spend); baseline mix: the current mix scaled to this budget"))
    if (d / "allocation.png").exists():
        out.append(figure_png(d / "allocation.png", "optimised allocation"))
    return "\n".join(out)


def section_backtest(d: Path, bt: dict) -> str:
    c = Cells("backtest", bt)
    rows = [[k.replace("_", " "), c.one(["kpis", k, "weeks"]), c.one(["kpis", k, "coverage_90"], "percent"),
             c.one(["kpis", k, "crps"]), c.one(["kpis", k, "crps_relative"], "percent", digits=1),
             c.one(["kpis", k, "mape"], "percent", digits=1)] for k in sorted(bt.get("kpis", {}))]
    return ("<h2 id='backtest'>Backtest: forecasts of weeks the fit did not see</h2>"
            f"<p>{number(len(bt.get('folds', [])))} refits, each forecasting the following weeks with the spend "
            "actually run. About 90% of held-back weeks should fall inside the 90% interval.</p>"
            + table(["KPI", "held-back weeks", "inside the 90% interval", "CRPS", "CRPS / observed mean",
                     "mean abs. error"], rows)
            + figure_png(d / "backtest.png", "backtest per KPI"))


def section_warnings(summaries: dict[str, dict]) -> str:
    items = []
    for kind, s in summaries.items():
        for w in s.get("warnings") or []:
            items.append(f"<li><b>{esc(kind)}</b>: {esc(w)}</li>")
        for f in s.get("folds") or []:
            if not f.get("converged", True):
                items.append(f"<li><b>backtest</b>: the fit of fold {esc(f.get('fold'))} did not converge; its "
                             "forecasts are less reliable</li>")
    body = f"<ul id='warnings-list'>{''.join(items)}</ul>" if items else "<p>None.</p>"
    return "<h2 id='warnings'>Warnings</h2>" + body


# ---------------------------------------------------------------------------------------------
# the page


def build_report(directory: str | Path, *, out: str | Path | None = None, **given) -> tuple[str, dict]:
    """The report's HTML, and what it holds: ``{"sections": [...], "absent": {...}, "sources": {...}}``."""
    inputs = find_inputs(directory, **given)
    if not inputs:
        raise InputError("found no output of journeysim fit, plan, compare, optimize or backtest here or in its "
                         "subfolders", str(directory))
    summaries = {k: _read(v) for k, v in inputs.items()}
    fc, opt, fit, bt = (summaries.get(k) for k in ("forecast", "optimize", "fit", "backtest"))
    currency = (fc or {}).get("currency") or (opt or {}).get("currency")
    scenario = next((s.get("scenario") for s in summaries.values() if s.get("scenario")), "scenario")
    sections, absent = [], {}

    def need(name: str, kinds: Sequence[str], build, why: str = ""):
        missing = [k for k in kinds if k not in inputs]
        if missing:
            absent[name] = why or f"needs the output of {' and '.join(MAKES[k] for k in missing)}"
        else:
            sections.append((name, build()))

    need("convergence and fit", ["fit"], lambda: section_fit(inputs["fit"], fit))
    need("funnel over time", ["forecast"], lambda: section_funnel(inputs["forecast"]))
    if fc is not None and not fc.get("contributions"):
        absent["contributions by stage and channel"] = ("this forecast has none (an agents forecast, or no paid "
                                                        "channel with baseline spend); rerun journeysim plan")
    else:
        need("contributions by stage and channel", ["forecast"], lambda: section_contributions(fc, currency))
    need("plan comparison", ["forecast"], lambda: section_plans(inputs["forecast"], fc, currency))
    need("response curves", ["optimize"], lambda: section_response(inputs["optimize"], fc))
    need("optimiser allocation", ["optimize"], lambda: section_optimize(inputs["optimize"], opt, currency))
    need("backtest scores", ["backtest"], lambda: section_backtest(inputs["backtest"], bt))
    sections.append(("warnings", section_warnings(summaries)))

    base = Path(out).parent if out is not None else Path(directory)
    sources = {}
    for k, v in inputs.items():
        p = (v / "summary.json").resolve()
        try:
            sources[k] = str(p.relative_to(base.resolve()))
        except ValueError:
            sources[k] = str(p)
    found = "".join(f"<li><b>{esc(k)}</b>: <code>{esc(v)}</code></li>" for k, v in inputs.items())
    missing = "".join(f"<li><b>{esc(k)}</b>: not in this report; it {esc(v)}</li>" for k, v in absent.items())
    toc = " · ".join(f"<a href='#{_anchor(n)}'>{esc(n)}</a>" for n, _ in sections)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="journeysim report"><title>journeysim report: {esc(scenario)}</title>
<style>{STYLE}</style></head>
<body data-sources='{esc(json.dumps(sources))}' data-sections='{esc(json.dumps([n for n, _ in sections]))}'
 data-absent='{esc(json.dumps(sorted(absent)))}'>
<h1>Media plan report: {esc(scenario)}</h1>
<p class="lede">From the calibrated customer-journey model. Intervals are 90% posterior intervals: the true value
lies inside with 90% probability if the model is right.{' Money in ' + esc(currency) + '.' if currency else ''}</p>
<p class="note">{toc}</p>
<h2 id="inputs">What this report is made of</h2><ul>{found}</ul>
{'<p>Absent:</p><ul class="absent" id="absent">' + missing + '</ul>' if missing else '<p>Every section is present.</p>'}
{''.join(f'<section id="{_anchor(n)}">{h}</section>' for n, h in sections)}
<p class="note">Made by journeysim {esc(_version())}. Self-contained: no server, nothing loaded from the internet.</p>
<script>{CHECK}</script>
</body></html>
"""
    return page, {"sections": [n for n, _ in sections], "absent": absent, "sources": sources, "inputs": inputs}


def _anchor(name: str) -> str:
    return "s-" + "".join(ch if ch.isalnum() else "-" for ch in name)


def _version() -> str:
    from journeysim._util.version import VERSION

    return VERSION


def write_report(directory: str | Path, out: str | Path | None = None, **given) -> tuple[Path, dict]:
    """Build the report of ``directory`` and write it (atomically) to ``out`` (default ``directory/report.html``)."""
    from journeysim._util.files import write_text

    out = Path(out) if out is not None else Path(directory) / "report.html"
    page, info = build_report(directory, out=out, **given)
    write_text(page, out)
    return out, info


def cmd_report(args) -> int:
    out, info = write_report(args.dir, args.out, fit=args.fit, forecast=args.forecast, optimize=args.optimize,
                             backtest=args.backtest)
    if not args.quiet:
        print(f"wrote {out}: " + ", ".join(info["sections"]))
        for name, why in info["absent"].items():
            print(f"   absent: {name} ({why})")
    return 0


def register(sub) -> None:
    r = sub.add_parser("report", help="one self-contained HTML page for a planner from the commands' output folders",
                       description="Write one self-contained HTML file (figures embedded; no server, no internet) "
                                   "from the output folders of fit, plan/compare, optimize and backtest found in DIR "
                                   "or its direct subfolders (or named by the flags).")
    r.add_argument("dir", metavar="DIR", help="output folder (e.g. of journeysim plan)")
    r.add_argument("--out", metavar="FILE", help="the HTML file (default DIR/report.html)")
    for k in KINDS:
        r.add_argument(f"--{k}", metavar="DIR", help=f"the output folder of journeysim {k} (default: found in DIR)")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_report)

"""Uncertain parameters and their priors.

A scenario's ``priors:`` section names the parameters calibration should learn, each with a prior
written as a short formula::

    priors:
      effect.tv.unaware->aware: lognormal(0.003, 1.0)   # median, sigma of the log
      carryover.tv: beta(8, 2)
      rate.considering->purchased: lognormal(1, 0.5)    # multiplier of the scenario's base rates
      wom.rate: lognormal(0.08, 0.7)
      saturation.tv: gamma(4, 2)                        # mean, standard deviation

Parameter names:

==============================  ===========================================================
name                            meaning
==============================  ===========================================================
``effect.<channel>.<a->b>``     hazard added per unit of exposure memory (``word_of_mouth``
                                is a channel here)
``rate.<a->b>``                 multiplier of the base hazard of a transition (all personas)
``carryover.<channel>``         daily retention of exposure memory
``saturation.<channel>``        weekly frequency at which effectiveness halves
``cap.<channel>``               most touches a targeted person receives a week (demand cap)
``wom.rate``                    recommendations per recommender per day
``initial.<stage>``             multiplier of the initial share of a stage (re-normalised)
``demand.<term>``               a coefficient of the ``demand:`` section (log scale):
                                ``season.sin1``, ``season.cos1``, ..., ``trend``,
                                ``control.<column>``
==============================  ===========================================================

Prior formulas: ``lognormal(median, sigma)``, ``normal(mu, sigma)``, ``halfnormal(sigma)``,
``neghalfnormal(sigma)`` (a half-normal on the negative side), ``beta(a, b)``, ``gamma(mean, sd)``, ``uniform(lower, upper)``, ``exponential(mean)``,
``fixed(value)``. With no ``priors:`` section, :func:`default_priors` marks every channel effect,
carry-over, word-of-mouth rate and base rate as uncertain around the scenario's values, and gives
every paid channel a saturation prior (unless the channel says ``linear: true``). The
coefficients of a ``demand:`` section are always learned (:func:`demand_priors`), with the
priors that section states unless ``priors:`` names them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
from scipy import stats

from journeysim.errors import InputError, did_you_mean
from journeysim.model.parameters import ParameterSet, resolve_parameter

__all__ = ['Prior', 'parse_prior', 'ParamSpace', 'default_priors', 'demand_priors', 'build_space', 'COORDS', 'check_coords', 'SoftplusScaled']


_FORMS = {
    "lognormal": 2, "normal": 2, "halfnormal": 1, "neghalfnormal": 1, "beta": 2, "gamma": 2, "uniform": 2, "exponential": 1, "fixed": 1,
}


@dataclass(frozen=True)
class Prior:
    """A named prior distribution with its arguments (as written)."""

    form: str
    args: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.form}({', '.join(f'{a:g}' for a in self.args)})"

    def scipy(self):
        """The same distribution as a frozen scipy.stats object (for sampling and checks)."""
        a = self.args
        if self.form == "lognormal":
            return stats.lognorm(s=a[1], scale=a[0])
        if self.form == "normal":
            return stats.norm(a[0], a[1])
        if self.form == "halfnormal":
            return stats.halfnorm(scale=a[0])
        if self.form == "neghalfnormal":
            return stats.truncnorm(-np.inf, 0.0, loc=0.0, scale=a[0])
        if self.form == "beta":
            return stats.beta(a[0], a[1])
        if self.form == "gamma":
            k = (a[0] / a[1]) ** 2
            return stats.gamma(k, scale=a[0] / k)
        if self.form == "uniform":
            return stats.uniform(a[0], a[1] - a[0])
        if self.form == "exponential":
            return stats.expon(scale=a[0])
        raise ValueError(self.form)

    def pymc(self, name: str, coords: str = "log"):
        """Create the PyMC random variable (inside a model context).

        ``coords`` (:data:`COORDS`) is the sampler's coordinate of a lognormal parameter: ``log``
        (PyMC's) or ``softplus`` (:func:`SoftplusScaled`). The prior and the posterior are the same
        either way; only the space NUTS moves in differs (see that function).
        """
        import pymc as pm

        a = self.args
        if self.form == "lognormal":
            check_coords(coords)
            kw = {"default_transform": SoftplusScaled(a[0] / SOFTPLUS_K)} if coords == "softplus" else {}
            return pm.LogNormal(name, mu=float(np.log(a[0])), sigma=a[1], **kw)
        if self.form == "normal":
            return pm.Normal(name, mu=a[0], sigma=a[1])
        if self.form == "halfnormal":
            return pm.HalfNormal(name, sigma=a[0])
        if self.form == "neghalfnormal":
            return pm.TruncatedNormal(name, mu=0.0, sigma=a[0], upper=0.0)
        if self.form == "beta":
            return pm.Beta(name, alpha=a[0], beta=a[1])
        if self.form == "gamma":
            return pm.Gamma(name, mu=a[0], sigma=a[1])
        if self.form == "uniform":
            return pm.Uniform(name, lower=a[0], upper=a[1])
        if self.form == "exponential":
            return pm.Exponential(name, scale=a[0])
        raise ValueError(self.form)

    @property
    def support(self) -> tuple[float, float]:
        if self.form == "normal":
            return (-np.inf, np.inf)
        if self.form == "neghalfnormal":
            return (-np.inf, 0.0)
        if self.form == "beta":
            return (0.0, 1.0)
        if self.form == "uniform":
            return self.args
        return (0.0, np.inf)


_PRIOR_RE = re.compile(r"^\s*([a-z]+)\s*\(\s*([^()]*)\)\s*$", re.IGNORECASE)


def parse_prior(text: str, where: str | None = None) -> Prior:
    """Parse ``"lognormal(0.003, 1)"`` into a :class:`Prior`.

    >>> parse_prior("beta(8, 2)")
    Prior(form='beta', args=(8.0, 2.0))
    """
    m = _PRIOR_RE.match(str(text))
    if not m:
        raise InputError(f"'{text}' is not a prior; write e.g. lognormal(0.01, 0.5) or beta(8, 2)", where)
    form = m.group(1).lower()
    if form not in _FORMS:
        raise InputError(f"unknown prior '{form}'" + did_you_mean(form, _FORMS) + f"; known: {', '.join(_FORMS)}", where)
    try:
        args = tuple(float(x) for x in m.group(2).split(",") if x.strip())
    except ValueError:
        raise InputError(f"'{text}': the arguments must be numbers", where) from None
    if len(args) != _FORMS[form]:
        raise InputError(f"'{text}': {form} takes {_FORMS[form]} argument(s), got {len(args)}", where)
    if not all(np.isfinite(args)):
        raise InputError(f"'{text}': the arguments must be finite numbers (NaN and infinity are not allowed)", where)
    if form in ("lognormal",) and (args[0] <= 0 or args[1] <= 0):
        raise InputError(f"'{text}': lognormal(median, sigma) needs median > 0 and sigma > 0", where)
    if form in ("normal", "halfnormal", "neghalfnormal") and args[-1] <= 0:
        raise InputError(f"'{text}': sigma must be > 0", where)
    if form in ("beta", "gamma", "exponential") and any(a <= 0 for a in args):
        raise InputError(f"'{text}': arguments must be > 0", where)
    if form == "uniform" and not args[0] < args[1]:
        raise InputError(f"'{text}': uniform(lower, upper) needs lower < upper", where)
    return Prior(form, args)


@dataclass(frozen=True)
class ParamSpace:
    """The uncertain parameters of a scenario, and how they enter :class:`~journeysim.model.dynamics.Params`.

    ``names`` and ``priors`` are aligned; ``kinds``/``targets`` say where each value goes.
    """

    names: tuple[str, ...]
    priors: tuple[Prior, ...]
    kinds: tuple[str, ...]  # one of journeysim.model.parameters.KINDS
    targets: tuple[tuple[int, ...], ...]  # indices into the Params array of that kind

    def __len__(self) -> int:
        return len(self.names)

    @property
    def parameters(self) -> ParameterSet:
        """The names and where their values go, without the priors."""
        return ParameterSet(self.names, self.kinds, self.targets)

    def to_params(self, xp, values, base_params):
        """Params with the uncertain entries replaced by ``values`` (:meth:`ParameterSet.to_params`)."""
        return self.parameters.to_params(xp, values, base_params)

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, len(self))`` draws from the priors."""
        return np.column_stack([p.scipy().rvs(size=n, random_state=rng) if p.form != "fixed" else np.full(n, p.args[0])
                                for p in self.priors]) if len(self) else np.zeros((n, 0))

    def values_of(self, params) -> np.ndarray:
        """The uncertain entries of a :class:`Params` (inverse of :meth:`to_params`, for scenario values)."""
        return self.parameters.values_of(params)


#: Default saturation prior of a paid channel without one: a gamma with this mean weekly frequency at
#: half effectiveness (or the channel's own ``saturation``) and this coefficient of variation.
SATURATION_PRIOR_MEAN = 5.0
SATURATION_PRIOR_CV = 0.6


def default_priors(scenario) -> dict[str, str]:
    """Priors a user gets without writing any: uncertainty around the scenario's own values."""
    st = scenario.structure
    p = scenario.params
    sources = st.channels + ("word_of_mouth",)
    out: dict[str, str] = {}
    for k, src in enumerate(sources):
        for e, edge in enumerate(st.edges):
            b = float(p.beta[k, e])
            if b > 0:
                out[f"effect.{src}.{edge}"] = f"lognormal({b:.6g}, 1.0)"
        if np.any(p.beta[k] > 0) and not (src == "word_of_mouth" and float(p.wom_rate) == 0):
            c = float(p.carryover[k])
            if 0 < c < 1:
                conc = 10.0
                out[f"carryover.{src}"] = f"beta({conc * c:.4g}, {conc * (1 - c):.4g})"
    for k, c in enumerate(st.channels):  # diminishing returns are learned, not assumed away
        spec = scenario.spec.channels[c]
        if spec.cap is not None:
            out[f"cap.{c}"] = f"lognormal({spec.cap:.6g}, 0.5)"
        if st.cost_per_touch[k] > 0 and np.any(p.beta[k] > 0) and not spec.linear:
            m = float(p.fhalf[k]) if np.isfinite(p.fhalf[k]) else SATURATION_PRIOR_MEAN
            out[f"saturation.{c}"] = f"gamma({m:.4g}, {SATURATION_PRIOR_CV * m:.4g})"
    if float(p.wom_rate) > 0:
        out["wom.rate"] = f"lognormal({float(p.wom_rate):.6g}, 0.7)"
    for e, edge in enumerate(st.edges):
        if np.any(p.base[:, e] > 0):
            out[f"rate.{edge}"] = "lognormal(1, 0.5)"
    return out


def demand_priors(scenario) -> dict[str, str]:
    """Priors of the ``demand:`` section's coefficients, as that section states them: a normal
    around the scenario's value for seasonality, trend and free controls and holidays; a half-normal
    on the side a control's or holiday's ``sign`` names."""
    d = scenario.structure.demand
    spec = scenario.spec.demand
    if d is None or spec is None:
        return {}
    values = np.asarray(scenario.params.demand, float)
    sds = [spec.seasonality.prior_sd] * (2 * d.order) if d.order else []
    sds += [spec.trend.prior_sd] if d.trend else []
    out = {}
    for j, (name, sd) in enumerate(zip(d.names, sds)):
        out[name] = f"normal({values[j]:.6g}, {sd:.6g})"
    for k in range(1, d.latent_knots + 1):
        out[f"demand.latent.{k}"] = "normal(0, 1)"  # a standard step of the random walk
    for k in range(1, d.shock_weeks + 1):
        out[f"demand.shock.{k}"] = "normal(0, 1)"  # a week's standard shock
    signed = [(f"demand.control.{c}", sign, spec.controls[c].prior_sd) for c, sign in zip(d.controls, d.signs)]
    signed += [(f"demand.holiday.{h}", sign, spec.holidays[h].prior_sd) for h, sign in zip(d.holidays, d.holiday_signs)]
    for name, sign, sd in signed:
        value = values[d.names.index(name)]
        out[name] = {"positive": f"halfnormal({sd:.6g})", "negative": f"neghalfnormal({sd:.6g})",
                     "free": f"normal({value:.6g}, {sd:.6g})"}[sign]
    return out


def build_space(scenario, priors: dict[str, str] | None = None) -> ParamSpace:
    """Resolve parameter names and prior formulas against a scenario (with :func:`demand_priors`
    for the demand coefficients that ``priors`` does not name)."""
    where_file = str(scenario.source) if scenario.source else "scenario"
    priors = dict(scenario.spec.priors) if priors is None else dict(priors)
    if not priors:
        priors = default_priors(scenario)
    priors = {**{k: v for k, v in demand_priors(scenario).items() if k not in priors}, **priors}
    names, ps, kinds, targets = [], [], [], []
    for name, text in priors.items():
        key = f"{where_file}: priors.{name}"
        prior = parse_prior(text, key)
        kind, tgt = resolve_parameter(scenario, name, key)
        if kind == "carryover" and prior.support != (0.0, 1.0) and prior.form != "fixed":
            raise InputError(f"a carry-over lies in (0, 1): use beta(a, b) or uniform(lo, hi), not {prior.form}", key)
        if kind not in ("carryover", "demand") and prior.support[0] < 0 and prior.form != "fixed":
            raise InputError(f"'{name}' must be positive: use a positive prior (lognormal, gamma, halfnormal, ...)", key)
        names.append(name)
        ps.append(prior)
        kinds.append(kind)
        targets.append(tgt)
    return ParamSpace(tuple(names), tuple(ps), tuple(kinds), tuple(targets))


#: The sampler's coordinates of lognormal parameters (``calibrate(coords=...)``, ``fit --coords``).
COORDS = ("log", "softplus")


def check_coords(coords: str) -> None:
    """Refuse an unknown :data:`COORDS` value, naming it (``InputError`` at key ``coords``)."""
    if coords not in COORDS:
        raise InputError(f"unknown coords '{coords}'" + did_you_mean(coords, COORDS), "coords")


#: Scale of :func:`SoftplusScaled` for a lognormal prior: its median divided by this.
SOFTPLUS_K = 5.0


@functools.cache
def _softplus_transform_class():
    import pytensor.tensor as pt
    from pymc.logprob.transforms import Transform

    class _SoftplusScaled(Transform):
        name = "softplus"

        def __init__(self, scale: float):
            self.scale = float(scale)

        def forward(self, value, *inputs):
            if isinstance(value, int | float):  # (a Python float would become a float32 constant)
                value = np.float64(value)
            z = pt.as_tensor_variable(value) / self.scale
            return z + pt.log(-pt.expm1(-z))  # = log(expm1(z)), without overflow

        def backward(self, value, *inputs):
            return self.scale * pt.softplus(value)

        def log_jac_det(self, value, *inputs):
            return np.log(self.scale) - pt.softplus(-value)  # log(scale * sigmoid(y))

        def __eq__(self, other):
            return type(other) is type(self) and other.scale == self.scale

        def __hash__(self):
            return hash((type(self).__name__, self.scale))

    return _SoftplusScaled


def SoftplusScaled(scale: float):
    """The sampler's coordinate ``y`` of a positive parameter ``x = scale * softplus(y)``.

    Linear where ``x`` is well above ``scale`` (a lognormal prior's median / :data:`SOFTPLUS_K`),
    logarithmic near 0. Channel effects, base-rate multipliers and the word-of-mouth rate add up
    to hazards, so when the data pin them down they constrain sums of them: straight ridges in
    linear coordinates, curved (bananas) in PyMC's log coordinates. On the retail example this
    took NUTS from 15-17 to 9.5 gradients per draw. Where the priors dominate (wide posteriors,
    e.g. the Robyn study: one KPI, ten parameters) log coordinates suit the lognormal priors
    better, so they stay the default. The prior and the posterior are the same either way (the
    Jacobian is included); only the geometry the sampler sees changes.
    """
    return _softplus_transform_class()(scale)

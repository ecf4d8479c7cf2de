"""The scenario file schema: pydantic models that check the *shape* of a YAML file.

Names are checked against each other (a channel effect naming a transition of the journey, a
targeting entry naming a persona) when the file is compiled into a :class:`~journeysim.Scenario`
by :mod:`journeysim.model.scenario`. Every model here forbids unknown keys and suggests the intended
key for a misspelt one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from journeysim.errors import did_you_mean

__all__ = ['MAX_AGENTS', 'Strict', 'MarketSpec', 'JourneySpec', 'PersonaSpec', 'TargetingSpec', 'ChannelSpec', 'WordOfMouthSpec', 'PlanSpec', 'EventSpec', 'SeasonalitySpec', 'TrendSpec', 'ControlSpec', 'HolidaySpec', 'LatentSpec', 'DemandSpec', 'LiftTestSpec', 'ObservationSpec', 'FitSpec', 'ScenarioSpec']


#: Most agents a scenario may ask for (the engine keeps ~34 bytes per agent plus its outputs; the
#: command line also estimates the memory of a run against the machine's before allocating).
MAX_AGENTS = 100_000_000

Positive = Field(gt=0)
NonNegative = Field(ge=0)


class Strict(BaseModel):
    """Frozen model that refuses unknown keys with a did-you-mean hint."""

    # allow_inf_nan=False: NaN and infinity are refused in every float, also inside mappings and lists
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = set()
            for name, f in cls.model_fields.items():
                allowed.add(name)
                if f.alias:
                    allowed.add(f.alias)
            for key in data:
                if key not in allowed:
                    raise ValueError(
                        f"unknown key '{key}'{did_you_mean(key, allowed)}; allowed keys: {', '.join(sorted(allowed))}"
                    )
        return data


class MarketSpec(Strict):
    """Who is simulated, for how long, from which seed."""

    population: float = Field(gt=0, description="people represented in the market")
    agents: int = Field(100_000, gt=0, le=MAX_AGENTS,
                        description="agents simulated; each carries population/agents people")
    start: dt.date = Field(dt.date(2024, 1, 1), description="first day of the simulation (a Monday is natural)")
    weeks: int = Field(52, gt=0, le=1040, description="horizon in weeks")
    step: Literal["day", "week"] = Field("day", description="time step of the dynamics")
    seed: int = Field(0, ge=0, description="seed of every random stream")

    @model_validator(mode="after")
    def _agents_le_population(self):
        if self.agents > self.population:
            raise ValueError(f"agents ({self.agents}) cannot exceed population ({self.population:g})")
        return self


class JourneySpec(Strict):
    """Stages and transitions: a template by name, or spelt out."""

    template: str | None = Field(None, description="built-in journey: default, funnel3, subscription, extended, bass")
    stages: list[str] | None = Field(None, description="stage names, if not a template")
    transitions: list[str] | None = Field(None, description="allowed transitions 'src->dst', if not a template")
    purchase_stages: list[str] | None = Field(None, description="stages whose entry is a purchase")
    initial: dict[str, float] | None = Field(None, description="share of people in each stage at the start")
    rates: dict[str, float] | None = Field(None, description="daily base hazard per transition, all personas")

    @model_validator(mode="after")
    def _template_or_stages(self):
        if self.template is None and (self.stages is None or self.transitions is None):
            raise ValueError("give either 'template' or both 'stages' and 'transitions'")
        if self.template is not None and (self.stages is not None or self.transitions is not None):
            raise ValueError("give either 'template' or 'stages'/'transitions', not both")
        return self

    @field_validator("initial", "rates")
    @classmethod
    def _non_negative(cls, v):
        if v is not None:
            for k, x in v.items():
                if x < 0:
                    raise ValueError(f"'{k}' is {x}, must be >= 0")
        return v


class PersonaSpec(Strict):
    """A segment of customers."""

    share: float = Field(gt=0, le=1, description="share of the population")
    value: float = Field(0.0, ge=0, description="revenue per purchase")
    rates: dict[str, float] = Field(default_factory=dict, description="daily base hazard per transition")
    affinity: dict[str, float] = Field(default_factory=dict, description="multiplier of each channel's effect")
    initial: dict[str, float] | None = Field(None, description="stage shares at the start for this persona")

    @field_validator("rates", "affinity", "initial")
    @classmethod
    def _non_negative(cls, v):
        if v is not None:
            for k, x in v.items():
                if x < 0:
                    raise ValueError(f"'{k}' is {x}, must be >= 0")
        return v


class TargetingSpec(Strict):
    """Relative delivery weight by persona and by stage.

    An empty mapping reaches everyone alike; in a non-empty one, unnamed entries weigh ``others``.
    """

    personas: dict[str, float] = Field(default_factory=dict)
    stages: dict[str, float] = Field(default_factory=dict)
    others: float = Field(0.0, ge=0, description="weight of personas or stages not named in a non-empty mapping")

    @field_validator("personas", "stages")
    @classmethod
    def _non_negative(cls, v):
        for k, x in v.items():
            if x < 0:
                raise ValueError(f"'{k}' is {x}, must be >= 0")
        return v


class ChannelSpec(Strict):
    """A paid or owned channel: its cost, reach, effect, carry-over and saturation."""

    cpm: float | None = Field(None, gt=0, description="cost per thousand impressions")
    cpc: float | None = Field(None, gt=0, description="cost per click (each click is a touch)")
    volume: float | None = Field(None, ge=0, description="touches per week of an owned channel (no spend)")
    targeting: TargetingSpec = Field(default_factory=TargetingSpec)
    effects: dict[str, float] = Field(default_factory=dict, description="daily hazard added per unit of exposure memory")
    carryover: float = Field(0.7, ge=0, lt=1, description="share of exposure memory kept from one day to the next")
    saturation: float | None = Field(
        None, gt=0, description="weekly frequency among the targeted at which effectiveness per impression halves"
    )
    cap: float | None = Field(None, gt=0, description="demand-capped: at most this many touches a week reach a "
                              "person in the targeted stages (search: queries of people in market); spend beyond "
                              "buys nothing")
    linear: bool = Field(False, description="no diminishing returns, on purpose: calibration gives the channel no "
                         "saturation prior (default: it learns one)")
    delivery: Literal["learned", "fixed"] = Field(
        "learned", description="learned: with impressions_<name> in the data, spend buys touches along the delivery "
        "curve learned from them; fixed: at the stated cpm or cpc")

    @property
    def cost_per_touch(self) -> float:
        """What one touch costs as stated: the CPM over a thousand, or the CPC (0: an owned channel)."""
        if self.volume is not None:
            return 0.0
        return self.cpm / 1000.0 if self.cpm is not None else self.cpc

    @model_validator(mode="after")
    def _linear_or_saturation(self):
        if self.linear and self.saturation is not None:
            raise ValueError("a channel is either linear: true or has a saturation, not both")
        return self

    @model_validator(mode="after")
    def _one_cost(self):
        n = sum(x is not None for x in (self.cpm, self.cpc, self.volume))
        if n != 1:
            raise ValueError("give exactly one of 'cpm' (paid media), 'cpc' (paid clicks) or 'volume' (owned touches per week)")
        return self

    @field_validator("effects")
    @classmethod
    def _non_negative(cls, v):
        for k, x in v.items():
            if x < 0:
                raise ValueError(f"'{k}' is {x}, must be >= 0")
        return v


class WordOfMouthSpec(Strict):
    """Recommendations made by people in some stages to others."""

    rate: float = Field(0.0, ge=0, description="recommendations per recommender per day")
    from_: dict[str, float] = Field(default_factory=lambda: {"advocate": 1.0}, alias="from",
                                    description="stages that recommend, with relative intensity")
    targeting: TargetingSpec = Field(default_factory=TargetingSpec)
    effects: dict[str, float] = Field(default_factory=dict, description="daily hazard added per unit of recommendation memory")
    carryover: float = Field(0.5, ge=0, lt=1)


class PlanSpec(Strict):
    """Weekly spend per channel: numbers (constant), lists (one per week) or a CSV file."""

    spend: dict[str, float | list[float]] = Field(default_factory=dict)
    csv: str | None = Field(None, description="CSV with a 'week' or 'date' column and spend_<channel> columns")

    @field_validator("spend")
    @classmethod
    def _non_negative(cls, v):
        for k, x in v.items():
            xs = x if isinstance(x, list) else [x]
            for i, y in enumerate(xs):
                if y < 0:
                    raise ValueError(f"spend of '{k}' is {y} in week {i + 1}; spend must be >= 0")
        return v


class EventSpec(Strict):
    """A scheduled change, e.g. a competitor promotion in weeks 10 to 12."""

    name: str
    weeks: tuple[int, int] | int = Field(description="week number (1-based) or [first, last] inclusive")
    multiply: dict[str, float] = Field(default_factory=dict, description="multiplier of the base hazard per transition")
    channels: dict[str, float] = Field(default_factory=dict, description="multiplier of a channel's effect")
    personas: list[str] | None = Field(None, description="personas affected (default: all)")

    @field_validator("multiply", "channels")
    @classmethod
    def _non_negative(cls, v):
        for k, x in v.items():
            if x < 0:
                raise ValueError(f"'{k}' is {x}, must be >= 0")
        return v


class ObservationSpec(Strict):
    """What an observed weekly KPI column measures, and its likelihood."""

    column: str = Field(description="column of the observed CSV")
    measures: Literal["entries", "share", "purchases", "new_customers", "referrals", "revenue"] = "entries"
    stages: list[str] = Field(default_factory=list, description="stage(s) entered (entries) or counted (share)")
    likelihood: Literal["poisson", "negbin", "binomial", "normal", "ar1"] | None = Field(
        None, description="default: binomial for share, normal for revenue, negbin for counts; ar1: errors on the "
                          "log scale that persist from week to week (what a model that misses something leaves)")
    sample_size: int | str | None = Field(
        None, description="survey sample size (a number, or a column holding it), for share"
    )

    @field_validator("sample_size")
    @classmethod
    def _positive_size(cls, v):
        if isinstance(v, int) and v <= 0:
            raise ValueError(f"{v} must be > 0")
        return v
    scale: float = Field(1.0, gt=0, description="observed = scale x simulated (e.g. a tracking rate)")


class SeasonalitySpec(Strict):
    """Yearly seasonality of demand: Fourier terms of the calendar year."""

    order: int = Field(2, ge=0, le=6, description="pairs of sine and cosine terms (0: none)")
    prior_sd: float = Field(0.3, gt=0, description="prior standard deviation of each coefficient (log scale)")
    coefficients: list[float] | None = Field(
        None, description="the scenario's values [sin1, cos1, sin2, cos2, ...] (default: all zero)")


class TrendSpec(Strict):
    """A log-linear trend of demand."""

    prior_sd: float = Field(0.1, gt=0, description="prior standard deviation of the log change per year")
    value: float = Field(0.0, description="the scenario's log change per year")


class ControlSpec(Strict):
    """An outside driver of demand: a column of the observed CSV (price index, promotion flag, ...)."""

    sign: Literal["positive", "negative", "free"] = Field(
        "free", description="direction the effect must have (positive: more of it, more demand)")
    prior_sd: float = Field(0.2, gt=0, description="prior standard deviation of the log effect per standard deviation")
    value: float = Field(0.0, description="the scenario's log effect per standard deviation of the control")


class HolidaySpec(Strict):
    """Weeks of the year when demand jumps or dips (Black Friday, the weeks before Christmas, a local
    festival): a 0/1 term from the calendar, the same weeks every year, in the history and beyond it."""

    weeks: list[int] = Field(min_length=1, description="ISO weeks of the year it covers (1-53), every year")
    sign: Literal["positive", "negative", "free"] = Field(
        "free", description="direction the effect must have (positive: more demand in those weeks)")
    prior_sd: float = Field(0.3, gt=0, description="prior standard deviation of the log effect in those weeks")
    value: float = Field(0.0, description="the scenario's log effect in those weeks")

    @field_validator("weeks")
    @classmethod
    def _weeks_of_the_year(cls, v):
        bad = [w for w in v if not 1 <= w <= 53]
        if bad:
            raise ValueError(f"{bad[0]} is not a week of the year (ISO weeks run from 1 to 53)")
        return sorted(set(v))


class LatentSpec(Strict):
    """A slowly varying latent demand: a random walk of the log-level."""

    sd: float = Field(0.03, gt=0, le=1, description="standard deviation of the weekly change of the log-level")
    every: int = Field(4, ge=1, le=52, description="weeks between the random walk's knots")


class ShocksSpec(Strict):
    """Weekly demand shocks: independent jumps of the log-level, one per week of the history."""

    sd: float = Field(0.05, gt=0, le=1, description="standard deviation of a week's shock to the log-level")


class DemandSpec(Strict):
    """Demand that moves: multipliers of chosen base hazards (:mod:`journeysim.model.demand`)."""

    transitions: list[str] | None = Field(None, description="transitions multiplied (default: into purchase stages)")
    seasonality: SeasonalitySpec | None = None
    trend: TrendSpec | None = None
    controls: dict[str, ControlSpec] = Field(default_factory=dict, description="CSV column -> control")
    holidays: dict[str, HolidaySpec] = Field(default_factory=dict, description="name -> weeks of the year")
    latent: LatentSpec | None = Field(None, description="a latent random-walk demand for what nothing observed explains")
    shocks: ShocksSpec | None = Field(None, description="weekly demand shocks: noise in the flows, not in the measurements")


class LiftTestSpec(Strict):
    """A measured lift (a geo or audience holdout, a spend test): the KPI's change that a change of
    one channel's spend caused over some weeks of the observed history. Calibration asks the twin
    for the same counterfactual and weighs the difference by the standard error."""

    name: str = Field("", description="a label")
    channel: str = Field(description="channel whose spend changed in the test")
    weeks: tuple[int, int] | tuple[dt.date, dt.date] = Field(
        description="first and last week of the test: week numbers of the observed data (1-based) or dates")
    spend: float = Field(0.0, ge=0, description="multiplier of the channel's spend in the test cells (0: holdout)")
    share: float = Field(1.0, gt=0, le=1, description="share of the market in the test cells")
    window: int = Field(0, ge=0, le=52, description="weeks after the test still counted (carry-over)")
    measures: Literal["purchases", "new_customers", "revenue", "entries", "referrals"] = "purchases"
    stages: list[str] = Field(default_factory=list, description="stages entered, for measures: entries")
    lift: float = Field(description="measured KPI in the test cells minus business as usual, over the test "
                        "weeks and the window (a holdout's lift is negative: what was lost)")
    se: float = Field(gt=0, description="standard error of the measured lift")


class FitSpec(Strict):
    """The sampler settings a model is known to fit well with (``journeysim fit`` / ``plan`` and
    :func:`~journeysim.inference.sampling.calibrate` use them unless told otherwise; omitted keys keep the
    command's defaults)."""

    draws: int | None = Field(None, gt=0, le=1_000_000, description="posterior draws per chain")
    tune: int | None = Field(None, ge=0, le=1_000_000, description="tuning (warm-up) steps per chain")
    chains: int | None = Field(None, gt=0, le=64, description="chains")
    target_accept: float | None = Field(None, gt=0, lt=1, description="NUTS target acceptance")
    coords: Literal["log", "softplus"] | None = Field(None, description="sampler coordinates of lognormal parameters")
    sampler: Literal["nutpie", "pymc", "numpyro"] | None = None


class ScenarioSpec(Strict):
    """A whole scenario file."""

    name: str = "scenario"
    description: str = ""
    market: MarketSpec
    journey: JourneySpec | str = "default"
    personas: dict[str, PersonaSpec] = Field(default_factory=lambda: {"everyone": PersonaSpec(share=1.0)})
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)
    word_of_mouth: WordOfMouthSpec | None = None
    plan: PlanSpec = Field(default_factory=PlanSpec)
    events: list[EventSpec] = Field(default_factory=list)
    demand: DemandSpec | None = Field(None, description="seasonality, trend and controls of demand")
    observations: list[ObservationSpec] = Field(default_factory=list)
    priors: dict[str, str] = Field(default_factory=dict, description="parameter -> prior, e.g. 'lognormal(0.01, 0.5)'")
    lift_tests: list[LiftTestSpec] = Field(default_factory=list, description="measured lifts the fit must "
                                           "reproduce (experiments)")
    fit: FitSpec = Field(default_factory=FitSpec, description="sampler settings of the calibration (flags override)")
    data: str | None = Field(None, description="observed weekly CSV, relative to the scenario file")
    currency: str | None = Field(None, max_length=8, description="unit of spend and revenue in tables, figures "
                                 "and the report: a code (EUR) or a symbol (€); none: plain numbers")
    plans: list[str] = Field(default_factory=list, description="example plan files (YAML/CSV) compared by "
                             "`journeysim plan`, relative to the scenario file")

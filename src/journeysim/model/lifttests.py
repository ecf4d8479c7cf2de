"""Measured lifts (experiments) as the twin's counterfactuals.

A scenario's ``lift_tests:`` list records experiments the brand ran over its observed history: a
holdout (``spend: 0`` in ``share`` of the market) or a spend test (``spend: 1.5``) of one channel
in weeks ``first..last``, and the change of a KPI it measured over those weeks and ``window``
weeks after, with a standard error. The model's lift is

    share * ( KPI(history with the channel's spend times ``spend`` in the test weeks)
              - KPI(history as it was) )

summed over the measured weeks: the same twin, run again from the state at the test's first
week. Calibration adds ``lift ~ Normal(model lift, se)`` to the likelihood
(:func:`journeysim.inference.likelihood.build_model`), so a lift test pins down what spend data
alone cannot (a channel whose spend moved with demand).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeysim.errors import InputError, did_you_mean

__all__ = ['LiftTest', 'check_lift_tests', 'resolve_lift_tests']


@dataclass(frozen=True)
class LiftTest:
    """A lift test resolved against observed weeks (0-based, inclusive)."""

    name: str
    channel: int
    first: int
    last: int
    until: int  # last week counted (last + window)
    spend: float
    share: float
    measures: str
    stage_mask: np.ndarray
    lift: float
    se: float


def check_lift_tests(spec, stages: tuple[str, ...], channels: tuple[str, ...], where: str) -> None:
    """Names in ``lift_tests:`` against the scenario (the weeks are checked against data later)."""
    for i, t in enumerate(spec.lift_tests):
        key = f"{where}: lift_tests[{i}]"
        if t.channel not in channels:
            raise InputError(f"unknown channel '{t.channel}'" + did_you_mean(t.channel, channels), f"{key}.channel")
        for s in t.stages:
            if s not in stages:
                raise InputError(f"unknown stage '{s}'" + did_you_mean(s, stages), f"{key}.stages")
        if t.measures == "entries" and not t.stages:
            raise InputError("measures: entries needs the stages entered", f"{key}.stages")
        if t.weeks[0] > t.weeks[1]:
            raise InputError(f"the first week ({t.weeks[0]}) is after the last ({t.weeks[1]})", f"{key}.weeks")


def resolve_lift_tests(scenario, data) -> tuple[LiftTest, ...]:
    """The scenario's lift tests in weeks of ``data`` (:class:`~journeysim.io.observed.ObservedData`).

    A test outside the observed weeks is an :class:`~journeysim.InputError` naming it.
    """
    where = str(scenario.source) if scenario.source else "scenario"
    st = scenario.structure
    out = []
    dates = [d.date() for d in data.dates]
    for i, t in enumerate(scenario.spec.lift_tests):
        key = f"{where}: lift_tests[{i}].weeks"
        if isinstance(t.weeks[0], int):
            first, last = t.weeks[0] - 1, t.weeks[1] - 1
        else:
            try:
                first, last = dates.index(t.weeks[0]), dates.index(t.weeks[1])
            except ValueError:
                raise InputError(f"{t.weeks[0]} and {t.weeks[1]} must be dates of the observed data's weeks "
                                 f"({dates[0]} ... {dates[-1]})", key) from None
        until = last + t.window
        if first < 0 or until >= data.weeks:
            raise InputError(f"the test and its window (weeks {first + 1}..{until + 1}) must lie inside the "
                             f"{data.weeks} observed weeks", key)
        mask = np.array([s in t.stages for s in st.stages], float)
        out.append(LiftTest(t.name or f"lift test {i + 1}", st.channels.index(t.channel), first, last, until,
                            float(t.spend), float(t.share), t.measures, mask, float(t.lift), float(t.se)))
    return tuple(out)

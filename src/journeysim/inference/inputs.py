"""The observed history as the twin's inputs: touches and event multipliers per step."""

from __future__ import annotations

import numpy as np

from journeysim.io.observed import ObservedData
from journeysim.model.dynamics import edge_multipliers

__all__ = ['observed_inputs']


def observed_inputs(scenario, data: ObservedData):
    """Per twin step (:attr:`~journeysim.model.dynamics.Structure.substeps`): daily touches ``(T, C)``, edge and channel event multipliers; steps per week."""
    scenario = scenario.with_data(data)
    st = scenario.structure
    W = data.weeks
    touches = st.touches(data.plan.aligned(st.channels))  # (W, C) per day
    if data.impressions is not None:
        seen = ~np.isnan(data.impressions)
        touches = np.where(seen, np.nan_to_num(data.impressions) / 7.0, touches)
    em = edge_multipliers(np, st, scenario.params.demand, np.arange(W))  # events and demand, at the scenario's values
    cm = np.stack([st.event_multipliers(w)[1] for w in range(W)])
    steps = len(st.substeps)
    return np.repeat(touches, steps, 0), np.repeat(em, steps, 0), np.repeat(cm, steps, 0), steps

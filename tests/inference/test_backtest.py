"""Backtest scoring: the CRPS from draws, and cutting observed data to its first weeks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SCENARIOS
from scipy import stats

from journeysim.inference.backtest import crps, head
from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario


@pytest.mark.parametrize("y", [-1.3, 0.0, 0.5, 2.2])
def test_crps_of_normal_draws_matches_the_closed_form(y):
    """CRPS(N(0, 1), y) = z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi); 200,000 draws, within 0.5%."""
    draws = np.random.default_rng(0).standard_normal((200_000, 1))
    exact = y * (2 * stats.norm.cdf(y) - 1) + 2 * stats.norm.pdf(y) - 1 / np.sqrt(np.pi)
    assert crps(draws, np.array([y]))[0] == pytest.approx(exact, rel=5e-3)


def test_crps_is_zero_for_a_point_forecast_that_hits():
    assert crps(np.full((50, 3), 2.0), np.array([2.0, 2.0, 2.0])) == pytest.approx(np.zeros(3), abs=1e-12)


def test_head_keeps_the_first_weeks_of_everything():
    sc = load_scenario(SCENARIOS / "shop.yaml")
    data = read_observed(SCENARIOS / "data" / "shop_observed.csv", sc)
    h = head(data, 20)
    assert h.weeks == 20 and h.plan.spend.shape[0] == 20
    assert all(o.values.shape == (20,) for o in h.observations)
    np.testing.assert_array_equal(h.plan.spend, data.plan.spend[:20])
    np.testing.assert_array_equal(h.observations[0].values, data.observations[0].values[:20])

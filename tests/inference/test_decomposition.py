"""The decomposition of each KPI into base, demand terms and channels (journeysim.inference.decomposition)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml
from conftest import SCENARIOS

from journeysim.inference.decomposition import decompose, decomposition_table
from journeysim.inference.posterior import known_fit
from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario


def test_parts_are_counterfactuals_and_add_up(tmp_path):
    raw = yaml.safe_load((SCENARIOS / "shop.yaml").read_text())
    raw["plan"] = {"csv": str(SCENARIOS / "shop_plan.csv")}
    raw.pop("plans")
    raw["demand"] = {"seasonality": {"order": 1, "coefficients": [0.3, 0.0]}, "trend": {"value": 0.2},
                     "controls": {"promo": {"sign": "positive", "value": 0.1}}}
    raw["channels"]["newsletter"]["effects"] = {"interested->customer": 0.0}  # a channel that does nothing
    df = pd.read_csv(SCENARIOS / "data" / "shop_observed.csv")
    df["promo"] = (np.arange(len(df)) % 4 == 0).astype(float)
    df.to_csv(tmp_path / "obs.csv", index=False)
    raw["data"] = str(tmp_path / "obs.csv")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    sc = load_scenario(tmp_path / "s.yaml")
    data = read_observed(tmp_path / "obs.csv", sc)
    dec = decompose(sc, known_fit(sc, draws=4), data, max_draws=4)
    assert list(dec.part.values) == ["total", "base", "seasonality", "trend", "promo", "display", "social", "search",
                                     "newsletter"]
    for c in ("site_visits", "new_customers"):
        x = dec[c]
        np.testing.assert_allclose(x.sel(part="total"), x.drop_sel(part="total").sum("part"), rtol=1e-9)
    np.testing.assert_allclose(dec.new_customers.sel(part="newsletter"), 0.0, atol=1e-6)
    season = dec.new_customers.sel(part="seasonality").values
    assert season.max() > 0 > season.min()  # a cycle: above and below the year's level
    promo = dec.new_customers.sel(part="promo").values
    assert promo[data.controls["promo"] > 0].mean() > promo[data.controls["promo"] == 0].mean()
    share = decomposition_table(dec)
    assert abs(share["new_customers"].sum() - 1.0) < 1e-9 and share.loc["display", "site_visits"] > 0.05

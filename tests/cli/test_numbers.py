"""Numbers for people: one formatter (``journeysim._util.format``) for tables, figures and the report."""

from __future__ import annotations

import doctest
import re
import shutil

import pytest
from conftest import SCENARIOS

import journeysim._util.format as fmt
from journeysim.cli.main import main
from journeysim.cli.tables import format_table
from journeysim.errors import InputError

#: Scientific notation as Python prints it (1.928e+05, 2e-05).
SCIENTIFIC = re.compile(r"\d(\.\d+)?e[+-]\d\d")


def test_doctests_of_the_format_module():
    assert doctest.testmod(fmt).failed == 0


@pytest.mark.parametrize("x, text", [(192843.2, "192,843"), (-6718.4, "-6,718"), (0, "0"), (12.34, "12.3"),
                                     (0.004123, "0.00412"), (1.0e-5, "0.0000100"), (1_500_000, "1,500,000"),
                                     (None, "-"), (float("nan"), "nan")])
def test_number_never_scientific_for_ordinary_sizes(x, text):
    assert fmt.number(x) == text


def test_intervals_read_alike_and_round_to_four_digits():
    # the cells of the old tables: '1.928e+05 [1.86e+05, 2.002e+05]' and '-6,718 [-1.002e+04, -3,110]'
    assert fmt.interval(192843, 186012, 200231) == "192,800 [186,000, 200,200]"
    assert fmt.interval(-6718, -10020, -3110, signed=True) == "-6,718 [-10,020, -3,110]"
    assert fmt.interval(0.7002, 0.4996, 0.8939, "ratio", signed=True) == "+0.700 [+0.500, +0.894]"


def test_money_percent_and_currency_labels():
    assert fmt.money(1234.5, "€") == "€1,234" and fmt.money(-1234.5, "$") == "-$1,234"
    assert fmt.money(1234.5, "EUR") == "1,234 EUR" and fmt.money(1234.5) == "1,234"
    assert fmt.percent(0.954) == "95%" and fmt.percent(0.0123, 1) == "1.2%"
    assert fmt.currency_label("EUR") == "EUR" and fmt.currency_label(None) == "currency units"
    from journeysim.plots._axes import axis_formatter

    ticks = axis_formatter("money", "€")
    assert ticks(250000.0, 0) == "€250,000" and axis_formatter("money", "EUR")(1500.0, 0) == "1,500"
    assert axis_formatter()(2.5e6, 0) == "2,500,000" and axis_formatter("percent")(0.25, 0) == "25%"


def test_table_right_aligns_formatted_numbers_and_prints_notes():
    t = format_table([["tv", "1,234 [1,000, 2,000]"], ["search", "+5 [+1, +9]"]], ["channel", "purchases"],
                     notes=["* a footnote"])
    lines = t.splitlines()
    assert lines[2].endswith("1,234 [1,000, 2,000]") and lines[3].endswith("+5 [+1, +9]")
    assert len(lines[2]) == len(lines[3]) and lines[-1] == "* a footnote"


def _scenario_with_currency(tmp_path, currency: str):
    for f in ("shop.yaml", "shop_plan.csv"):
        if (SCENARIOS / f).exists():
            shutil.copy(SCENARIOS / f, tmp_path / f)
    text = (SCENARIOS / "shop.yaml").read_text()
    text = re.sub(r"^(name: .*)$", rf"\1\ncurrency: '{currency}'", text, count=1, flags=re.M)
    text = text.replace("data: data/", f"data: {SCENARIOS}/data/")
    path = tmp_path / "shop.yaml"
    path.write_text(text)
    return path


def test_currency_key_reaches_the_run_table(tmp_path, capsys):
    path = _scenario_with_currency(tmp_path, "€")
    assert main(["run", str(path), "--engine", "twin", "--weeks", "4", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert not SCIENTIFIC.search(out), out
    spend = next(line for line in out.splitlines() if line.startswith("spend "))
    assert re.search(r"€\d{1,3}(,\d{3})+$", spend), spend
    assert "ROAS" not in spend and "not ROAS" in out  # (a run's revenue / spend is not ROAS)


def test_currency_is_one_optional_short_field():
    from pydantic import ValidationError

    from journeysim.model.schema import ScenarioSpec

    assert ScenarioSpec(market={"population": 1e6}).currency is None
    assert ScenarioSpec(market={"population": 1e6}, currency="EUR").currency == "EUR"
    with pytest.raises((ValidationError, InputError)):
        ScenarioSpec(market={"population": 1e6}, currency="a very long currency name")

"""Tests of the observed-data reader (journeysim.io.observed.read_observed).

Every malformed observed CSV must raise an :class:`~journeysim.InputError` whose message names
the file, and the column (and the row, numbered as in the file with the header as row 1) where
the problem is. The scenario is ``scenarios/funnel3.yaml``: channels ``display`` (paid) and
``email`` (owned), observed columns ``enquiries`` and ``new_customers`` (negative binomial).
(The plan CSV's own errors are tested in ``tests/model/test_scenario.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SCENARIOS

from journeysim.errors import InputError
from journeysim.io.observed import read_observed
from journeysim.model.scenario import load_scenario

HEADER = "date,spend_display,enquiries,new_customers\n"
GOOD_ROWS = [
    "2025-01-06,2000,4895,1682",
    "2025-01-13,2000,5330,1709",
    "2025-01-20,6000,5786,1882",
    "2025-01-27,6000,5539,1929",
]


def csv(rows=GOOD_ROWS, header=HEADER) -> str:
    return header + "\n".join(rows) + "\n"


def with_cell(row: int, col: int, value: str) -> str:
    """The good CSV with the cell at data row ``row`` (0-based), column ``col`` replaced."""
    rows = [r.split(",") for r in GOOD_ROWS]
    rows[row][col] = value
    return csv([",".join(r) for r in rows])


#: name -> (CSV text, fragments the message must contain). Rows are numbered as in the file.
CASES = {
    "missing_week": (
        csv([GOOD_ROWS[0], GOOD_ROWS[1], GOOD_ROWS[3]]),
        ["row 4, column date", "2025-01-27", "1 missing week(s) before this row"],
    ),
    "two_missing_weeks": (
        csv([GOOD_ROWS[0], GOOD_ROWS[3]]),
        ["row 3, column date", "2 missing week(s)"],
    ),
    "duplicate_date": (
        csv([GOOD_ROWS[0], GOOD_ROWS[1], GOOD_ROWS[1].replace(",2000,", ",2100,"), GOOD_ROWS[2]]),
        ["row 4, column date", "2025-01-13 is duplicated"],
    ),
    "dates_out_of_order": (
        csv([GOOD_ROWS[1], GOOD_ROWS[0], GOOD_ROWS[2]]),
        ["row 3, column date", "earlier than the previous row"],
    ),
    "not_seven_days_apart": (
        with_cell(2, 0, "2025-01-21"),
        ["row 4, column date", "8 days after the previous row", "7 days apart"],
    ),
    "date_not_a_date": (
        with_cell(1, 0, "13/13/2025"),
        ["row 3, column date", "'13/13/2025' is not a date"],
    ),
    "negative_kpi": (
        with_cell(2, 2, "-5"),
        ["row 4, column enquiries", "-5 is negative"],
    ),
    "negative_spend": (
        with_cell(0, 1, "-100"),
        ["row 2, column spend_display", "-100 is negative"],
    ),
    "non_numeric_spend": (
        with_cell(1, 1, "2k"),
        ["row 3, column spend_display", "'2k' is not a number"],
    ),
    "non_numeric_kpi": (
        with_cell(3, 3, "many"),
        ["row 5, column new_customers", "'many' is not a number"],
    ),
    "missing_spend_value": (
        with_cell(2, 1, ""),
        ["row 4, column spend_display", "value is missing"],
    ),
    "fractional_count": (
        with_cell(1, 3, "17.5"),
        ["row 3, column new_customers", "17.5 is not a whole count", "likelihood: normal"],
    ),
    "unknown_channel": (
        csv([r + ",10" for r in GOOD_ROWS], HEADER.strip() + ",spend_radio\n"),
        ["column spend_radio", "unknown channel 'radio'", "channels are display, email"],
    ),
    "misspelt_channel": (
        csv([r + ",10" for r in GOOD_ROWS], HEADER.strip() + ",impressions_displey\n"),
        ["column impressions_displey", "unknown channel 'displey'", "did you mean 'display'?"],
    ),
    "kpi_column_mapped_to_nothing": (
        csv([r + ",7" for r in GOOD_ROWS], HEADER.strip() + ",newsletter_signups\n"),
        ["column 'newsletter_signups' maps to nothing", "observations", "ignore it on purpose"],
    ),
    "observed_column_missing": (
        csv([r.rsplit(",", 1)[0] for r in GOOD_ROWS], "date,spend_display,enquiries\n"),
        ["observations[1]", "column 'new_customers' is not in the data"],
    ),
    "observed_column_misspelt": (
        csv(GOOD_ROWS, "date,spend_display,enquiries,new_customer\n"),
        ["observations[1]", "'new_customers' is not in the data", "did you mean 'new_customer'?"],
    ),
    "paid_channel_without_spend": (
        csv([r.split(",", 2)[0] + "," + r.split(",", 2)[2] for r in GOOD_ROWS], "date,enquiries,new_customers\n"),
        ["no spend column for paid channel(s) display", "spend_display"],
    ),
    "no_date_column": (
        csv(GOOD_ROWS, "day,spend_display,enquiries,new_customers\n"),
        ["no 'date' column"],
    ),
    "column_twice": (
        csv([r + ",1" for r in GOOD_ROWS], HEADER.strip() + ",enquiries\n"),
        ["'enquiries' appears twice"],
    ),
    "no_rows": (HEADER, ["no data rows"]),
}


@pytest.fixture(scope="module")
def funnel3():
    return load_scenario(SCENARIOS / "funnel3.yaml")


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_observed_csv_names_file_row_and_column(tmp_path, funnel3, name):
    text, fragments = CASES[name]
    path = tmp_path / "observed.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_observed(path, funnel3)
    msg = str(info.value)
    assert msg.startswith(str(path) + ": "), msg  # the file comes first
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    assert "\n" not in msg


def test_missing_file_is_named(tmp_path, funnel3):
    with pytest.raises(InputError, match="nope.csv: file not found"):
        read_observed(tmp_path / "nope.csv", funnel3)


def test_well_formed_csv_is_read(tmp_path, funnel3):
    path = tmp_path / "observed.csv"
    path.write_text(csv([GOOD_ROWS[0], GOOD_ROWS[1].replace(",1709", ","), *GOOD_ROWS[2:]]))
    data = read_observed(path, funnel3)
    assert data.weeks == 4
    assert str(data.dates[0].date()) == "2025-01-06"
    assert data.plan.spend[:, 0].tolist() == [2000, 2000, 6000, 6000]
    assert data.plan.spend[:, 1].tolist() == [0, 0, 0, 0]  # owned email: no spend column needed
    enq, new = data.observations
    assert (enq.column, enq.measures, enq.stages, enq.likelihood) == ("enquiries", "entries", ("interested",), "negbin")
    assert enq.values.tolist() == [4895, 5330, 5786, 5539]
    # a blank KPI cell is a week without an observation, not an error
    assert np.isnan(new.values[1]) and new.observed.tolist() == [True, False, True, True]


def test_ignored_column_is_left_out_on_purpose(tmp_path, funnel3):
    path = tmp_path / "observed.csv"
    path.write_text(csv([r + ",x" for r in GOOD_ROWS], HEADER.strip() + ",notes\n"))
    with pytest.raises(InputError, match="'notes' maps to nothing"):
        read_observed(path, funnel3)
    data = read_observed(path, funnel3, ignore_columns=("notes",))
    assert [o.column for o in data.observations] == ["enquiries", "new_customers"]


def test_example_observed_data_read_cleanly():
    for name, weeks in (("funnel3", 26), ("subscription", 78), ("retail", 104)):
        sc = load_scenario(SCENARIOS / f"{name}.yaml")
        data = read_observed(SCENARIOS / "data" / f"{name}_observed.csv", sc)
        assert data.weeks == weeks
        assert [o.column for o in data.observations] == [o.column for o in sc.spec.observations]

"""The SQL backtest summary equals lifetimes' calibration_and_holdout_data."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import calibration_and_holdout_data

from tests.rawdata import dbt_build, random_order_lines, write_raw

pytestmark = pytest.mark.slow  # dbt or a whole refresh: not in `make test-fast`

AS_OF = dt.date(2026, 11, 24)
HOLDOUT_DAYS = 90
CUTOFF = AS_OF - dt.timedelta(days=HOLDOUT_DAYS)


def edge_lines() -> pd.DataFrame:
    """Customers on the boundaries: first purchase on the cutoff day, first purchase the day
    after it (not in the calibration), two orders on one holdout day, a line after the as-of."""
    rows = [
        ("E0-a", CUTOFF, "EDGE0"),
        ("E0-b", CUTOFF + dt.timedelta(days=10), "EDGE0"),
        ("E0-c", CUTOFF + dt.timedelta(days=10), "EDGE0"),
        ("E0-d", AS_OF + dt.timedelta(days=3), "EDGE0"),
        ("E1-a", CUTOFF + dt.timedelta(days=1), "EDGE1"),
        ("E2-a", CUTOFF - dt.timedelta(days=30), "EDGE2"),
        ("E2-b", AS_OF, "EDGE2"),
    ]
    return pd.DataFrame(
        {
            "order_id": [r[0] for r in rows],
            "line_number": 1,
            "order_date": [pd.Timestamp(r[1]) for r in rows],
            "customer_code": [r[2] for r in rows],
            "product_code": "P1",
            "sold_quantity": 2,
        }
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Raw tables from known order lines, then dbt builds the backtest summary and its tests."""
    root = tmp_path_factory.mktemp("backtest")
    database = root / "warehouse.duckdb"
    lines = pd.concat([random_order_lines(250, AS_OF, seed=11), edge_lines()], ignore_index=True)
    write_raw(database, lines, extra_customers=2)
    dbt_build(
        database,
        root / "target",
        # the model, its parents and stg_raw__customers (its relationships test's target)
        ["--select", "+customer_backtest_summary stg_raw__customers"],
        {"as_of_date": AS_OF.isoformat(), "holdout_days": HOLDOUT_DAYS},
    )
    with duckdb.connect(str(database), read_only=True) as conn:
        backtest = conn.sql("select * from intermediate.customer_backtest_summary").df()
        # one row per purchase day, so that lifetimes' holdout mean times the count is the total
        days = conn.sql(
            "select customer_code, date, sum(net_sales_amount) as net_sales, "
            "sum(gross_margin_amount) as gross_margin from intermediate.int_order_lines_priced "
            "group by all"
        ).df()
    return backtest.set_index("customer_code").sort_index(), days


def lifetimes_summary(days: pd.DataFrame, value: str) -> pd.DataFrame:
    return calibration_and_holdout_data(
        days,
        "customer_code",
        "date",
        calibration_period_end=pd.Timestamp(CUTOFF),
        observation_period_end=pd.Timestamp(AS_OF),
        freq="D",
        monetary_value_col=value,
    ).sort_index()


@pytest.mark.parametrize(
    "value, calibration_column, holdout_column",
    [
        ("net_sales", "monetary_value_net_sales_cal", "net_sales_holdout"),
        ("gross_margin", "monetary_value_gross_margin_cal", "gross_margin_holdout"),
    ],
)
def test_backtest_summary_matches_lifetimes(built, value, calibration_column, holdout_column):
    ours, days = built
    expected = lifetimes_summary(days, value)
    assert ours.index.tolist() == expected.index.tolist()
    np.testing.assert_array_equal(ours["frequency_cal"], expected["frequency_cal"])
    np.testing.assert_array_equal(ours["recency_cal"], expected["recency_cal"])
    np.testing.assert_array_equal(ours["t_cal"], expected["T_cal"])
    np.testing.assert_allclose(ours[calibration_column], expected["monetary_value_cal"], rtol=1e-9)
    np.testing.assert_array_equal(ours["frequency_holdout"], expected["frequency_holdout"])
    np.testing.assert_allclose(
        ours[holdout_column],
        expected["monetary_value_holdout"] * expected["frequency_holdout"],
        rtol=1e-9,
        atol=1e-9,
    )
    np.testing.assert_array_equal(ours["duration_holdout"], expected["duration_holdout"])


def test_the_data_exercises_the_interesting_cases(built):
    ours, _ = built
    assert (ours["frequency_cal"] == 0).any() and (ours["frequency_cal"] >= 2).any()
    assert (ours["frequency_holdout"] == 0).any() and (ours["frequency_holdout"] >= 1).any()


def test_boundaries(built):
    ours, _ = built
    # first purchase on the cutoff day: in the calibration with t_cal = 0; two orders on one
    # holdout day count once; the line after the as-of date is invisible
    edge0 = ours.loc["EDGE0"]
    assert (edge0["frequency_cal"], edge0["recency_cal"], edge0["t_cal"]) == (0, 0, 0)
    assert edge0["frequency_holdout"] == 1
    # first purchase after the cutoff: not a calibration customer; customers without orders too
    assert "EDGE1" not in ours.index
    assert not ours.index.str.startswith("NOORDER").any()
    # a purchase on the as-of date is in the holdout
    assert ours.loc["EDGE2", "frequency_holdout"] == 1
    assert (ours["calibration_end_date"] == pd.Timestamp(CUTOFF)).all()
    assert (ours["duration_holdout"] == HOLDOUT_DAYS).all()

"""The SQL customer summary equals lifetimes' summary_data_from_transaction_data."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import summary_data_from_transaction_data

from tests.rawdata import dbt_build, random_order_lines, write_raw

pytestmark = pytest.mark.slow  # dbt or a whole refresh: not in `make test-fast`

AS_OF = dt.date(2026, 11, 24)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Raw tables from known order lines, then dbt builds the summary and fact_sales, with
    their parents and tests (what this module reads; the whole star schema is built on
    hand-made data in tests/dbt/test_insight_marts.py)."""
    root = tmp_path_factory.mktemp("summary")
    database = root / "warehouse.duckdb"
    write_raw(database, random_order_lines(300, AS_OF, seed=7), extra_customers=3)
    dbt_build(
        database,
        root / "target",
        ["--select", "+customer_summary +fact_sales"],
        {"as_of_date": AS_OF.isoformat()},
    )
    with duckdb.connect(str(database), read_only=True) as conn:
        summary = conn.sql("select * from intermediate.customer_summary").df()
        lines = conn.sql("select customer_code, date, net_sales_amount from marts.fact_sales").df()
    return summary, lines


def test_summary_matches_lifetimes(built):
    summary, lines = built
    expected = summary_data_from_transaction_data(
        lines,
        "customer_code",
        "date",
        monetary_value_col="net_sales_amount",
        observation_period_end=pd.Timestamp(AS_OF),
        freq="D",
    ).sort_index()
    ours = summary[summary["has_orders"]].set_index("customer_code").sort_index()
    assert ours.index.tolist() == expected.index.tolist()
    np.testing.assert_array_equal(ours["frequency"], expected["frequency"])
    np.testing.assert_array_equal(ours["recency"], expected["recency"])
    np.testing.assert_array_equal(ours["t"], expected["T"])
    np.testing.assert_allclose(
        ours["monetary_value_net_sales"], expected["monetary_value"], rtol=1e-9
    )
    # the data exercises the interesting cases: one-time buyers and several orders on one day
    assert (expected["frequency"] == 0).any() and (expected["frequency"] >= 2).any()


def test_customers_without_orders_are_kept_and_marked(built):
    summary, _ = built
    no_orders = summary[~summary["has_orders"]]
    assert sorted(no_orders["customer_code"]) == ["NOORDER0", "NOORDER1", "NOORDER2"]
    assert (no_orders["order_count"] == 0).all()
    assert no_orders["frequency"].isna().all()


def test_lifetime_metrics(built):
    summary, lines = built
    per_customer = lines.groupby("customer_code")["net_sales_amount"].sum()
    ours = summary.set_index("customer_code")
    np.testing.assert_allclose(
        ours.loc[per_customer.index, "total_net_sales"], per_customer, rtol=1e-9
    )
    last = lines.groupby("customer_code")["date"].max()
    days = (pd.Timestamp(AS_OF) - pd.to_datetime(last)).dt.days
    np.testing.assert_array_equal(ours.loc[days.index, "days_since_last_order"], days)

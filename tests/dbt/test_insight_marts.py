"""The business-insight marts' arithmetic on hand-made data, with real dbt builds.

The star schema and the insight marts are built from known order lines; the action marts
(next categories, discounts) from hand-written analytics.* tables standing in for the Python
models.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.rawdata import dbt_build, random_order_lines, write_raw

pytestmark = pytest.mark.slow  # dbt or a whole refresh: not in `make test-fast`

AS_OF = dt.date(2026, 11, 24)
# Three customer segments (market -> one sub_zone and region).
PROFILES = [
    ("India", "India", "APAC", "E-Commerce", "Retailer"),
    ("USA", "NA", "NA", "Brick & Mortar", "Direct"),
    ("Germany", "NE", "EU", "E-Commerce", "Distributor"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("insights")
    database = root / "warehouse.duckdb"
    lines = random_order_lines(240, AS_OF, seed=11, days=900)
    write_raw(database, lines, extra_customers=2)
    with duckdb.connect(str(database)) as conn:
        for i, (market, sub_zone, region, platform, channel) in enumerate(PROFILES):
            conn.execute(
                "update raw.customers set market = ?, sub_zone = ?, region = ?, platform = ?, channel = ? "
                "where hash(customer_code) % 3 = ?",
                [market, sub_zone, region, platform, channel, i],
            )
    dbt_vars = {"as_of_date": AS_OF.isoformat()}
    dbt_build(database, root / "target", ["--exclude", "path:models/marts/customers"], dbt_vars)
    # stand-ins for the Python models' outputs, then the action marts on top of them
    with duckdb.connect(str(database)) as conn:
        summary = conn.sql(
            "select customer_code, has_orders from intermediate.customer_summary"
        ).df()
        rng = np.random.default_rng(5)
        with_orders = summary["has_orders"].to_numpy()
        segments = np.where(
            with_orders, rng.choice(["Champions", "Lost", "At Risk"], len(summary)), "No Orders"
        )
        rfm = pd.DataFrame(  # noqa: F841 (read by DuckDB's replacement scan below)
            {
                "customer_code": summary["customer_code"],
                "r_score": np.where(with_orders, rng.integers(1, 6, len(summary)), 0),
                "segment": segments,
            }
        )
        # expected purchases and order value drive the offers; one customer with orders in ten
        # has null CLTV columns, as when no model could be fitted
        unfitted = with_orders & (rng.uniform(0, 1, len(summary)) < 0.1)
        predicted = with_orders & ~unfitted
        cltv = pd.DataFrame(  # noqa: F841 (read by DuckDB's replacement scan below)
            {
                "customer_code": summary["customer_code"],
                "value_tier": np.where(
                    with_orders, rng.choice(["high", "medium", "low"], len(summary)), "none"
                ),
                "p_alive": np.where(predicted, rng.uniform(0, 1, len(summary)), np.nan),
                "expected_purchases_365d": np.where(
                    predicted, rng.gamma(1.0, 1.0, len(summary)), np.nan
                ),
                "expected_order_value": np.where(
                    predicted, rng.uniform(5, 300, len(summary)), np.nan
                ),
                "clv_12m": np.where(predicted, rng.uniform(0, 500, len(summary)), np.nan),
            }
        )
        conn.execute("create schema if not exists analytics")
        conn.execute("create or replace table analytics.customer_rfm as select * from rfm")
        conn.execute("create or replace table analytics.customer_cltv as select * from cltv")
    dbt_build(
        database,
        root / "target",
        ["--select", "customer_next_categories customer_discount_offers"],
        dbt_vars,
    )
    return database


@pytest.fixture(scope="module")
def conn(built):
    with duckdb.connect(str(built), read_only=True) as connection:
        yield connection


def frame(conn, sql):
    return conn.execute(sql).df()


def test_finance_margin_is_net_minus_cost_and_adds_up(conn):
    # decimals: exact in SQL
    bad = conn.execute(
        "select count(*) filter (where gross_margin <> net_sales - manufacturing_cost "
        "or net_sales <> gross_sales - pre_invoice_discounts) from marts.insight_finance_monthly"
    ).fetchone()[0]
    assert bad == 0
    ours = conn.execute(
        "select sum(net_sales), sum(gross_margin), sum(manufacturing_cost) from marts.insight_finance_monthly"
    ).fetchone()
    totals = conn.execute(
        "select sum(net_sales_amount), sum(gross_margin_amount), sum(manufacturing_cost_amount) from marts.fact_sales"
    ).fetchone()
    assert ours == totals
    fin = frame(conn, "select * from marts.insight_finance_monthly")
    np.testing.assert_allclose(
        fin["gross_margin_pct"], fin["gross_margin"].astype(float) / fin["net_sales"].astype(float)
    )
    # every segment of the hand-made data shows up
    assert set(fin["market"]) == {p[0] for p in PROFILES}


KEY = ["market", "platform", "channel"]


def finance_lines(conn) -> pd.DataFrame:
    return frame(
        conn,
        "select f.date, c.market, c.platform, c.channel, cast(f.net_sales_amount as double) as net_sales, "
        "cast(f.gross_margin_amount as double) as gross_margin "
        # the priced lines and the raw customers: what the yoy fixture's selection builds
        "from intermediate.int_order_lines_priced f join raw.customers c using (customer_code)",
    )


def expected_finance(lines: pd.DataFrame, as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The like-for-like year over year, recomputed from the order lines.

    Monthly: each month x market x platform x channel that sold this month or in the same days
    a year earlier; the previous year counts the lines of the month a year earlier up to the
    as-of date minus one year. Yearly: the monthly rows summed by fiscal year.
    """
    lines = lines.assign(date=pd.to_datetime(lines["date"]))
    lines["month"] = lines["date"].dt.to_period("M").dt.to_timestamp()
    current = lines.groupby(["month", *KEY])[["net_sales", "gross_margin"]].sum()
    cutoff = pd.Timestamp(as_of) - pd.DateOffset(years=1)
    earlier = lines[lines["date"] <= cutoff]
    earlier = earlier.assign(month=earlier["month"] + pd.DateOffset(years=1))
    previous = earlier.groupby(["month", *KEY])[["net_sales", "gross_margin"]].sum()
    monthly = current.join(previous.add_suffix("_previous_year"), how="outer")
    monthly[["net_sales", "gross_margin"]] = monthly[["net_sales", "gross_margin"]].fillna(0.0)
    monthly = monthly.reset_index()
    monthly["fiscal_year"] = monthly["month"].dt.year + (monthly["month"].dt.month >= 9).astype(int)
    yearly = monthly.groupby(["fiscal_year", *KEY]).agg(
        net_sales=("net_sales", "sum"),
        net_sales_previous_year=("net_sales_previous_year", lambda v: v.sum(min_count=1)),
    )
    return monthly.set_index(["month", *KEY]).sort_index(), yearly.sort_index()


def assert_finance_is_like_for_like(conn, as_of: dt.date) -> None:
    monthly, yearly = expected_finance(finance_lines(conn), as_of)
    fin = frame(conn, "select * from marts.insight_finance_monthly")
    fin["month"] = pd.to_datetime(fin["month_start_date"])
    ours = fin.set_index(["month", *KEY]).sort_index()
    assert ours.index.tolist() == monthly.index.tolist()
    for column in (
        "net_sales",
        "gross_margin",
        "net_sales_previous_year",
        "gross_margin_previous_year",
    ):
        np.testing.assert_allclose(
            ours[column].astype(float), monthly[column], rtol=1e-12, err_msg=column
        )
    has = monthly["net_sales_previous_year"].notna() & (monthly["net_sales_previous_year"] != 0)
    np.testing.assert_allclose(
        ours.loc[has, "net_sales_yoy_pct"].astype(float),
        monthly.loc[has, "net_sales"] / monthly.loc[has, "net_sales_previous_year"] - 1,
        rtol=1e-9,
    )
    as_of_month = pd.Timestamp(as_of).to_period("M")
    partial = pd.Timestamp(as_of) < as_of_month.to_timestamp(how="end").normalize()
    expected_mtd = (fin["month"].dt.to_period("M") == as_of_month) & partial
    assert (fin["is_month_to_date"] == expected_mtd).all()
    year = (
        frame(conn, "select * from marts.insight_finance_yearly")
        .set_index(["fiscal_year", *KEY])
        .sort_index()
    )
    assert year.index.tolist() == yearly.index.tolist()
    for column in ("net_sales", "net_sales_previous_year"):
        np.testing.assert_allclose(
            year[column].astype(float), yearly[column], rtol=1e-12, err_msg=column
        )


def test_finance_year_over_year_is_like_for_like(conn):
    assert_finance_is_like_for_like(conn, AS_OF)
    totals = "select sum(net_sales), sum(gross_margin) from marts.{}"
    assert (
        conn.execute(totals.format("insight_finance_yearly")).fetchone()
        == conn.execute(totals.format("insight_finance_monthly")).fetchone()
    )


# --- year over year at the edges of months and fiscal years ---------------------------------

# A shop whose every line is placed on purpose around the as-of date a year earlier, plus
# random history: India sells on the as-of day's month a year earlier before and after the
# as-of day; USA sold in the previous year only (a month x market row with no current sales).
YOY_AS_OFS = ["2026-12-02", "2026-08-31", "2026-08-30"]


def placed_lines(as_of: dt.date) -> pd.DataFrame:
    year_ago = as_of.replace(year=as_of.year - 1)
    rows = [
        ("CIND", year_ago - dt.timedelta(days=1), 1),  # inside the compared span
        ("CIND", year_ago, 2),  # the compared span's last day
        ("CIND", year_ago + dt.timedelta(days=1), 4),  # after it: not compared
        ("CIND", as_of, 8),
        ("CUSA", year_ago.replace(day=1) - dt.timedelta(days=40), 16),  # prior year only
    ]
    return pd.DataFrame(
        [
            {
                "order_id": f"X{i}",
                "line_number": 1,
                "order_date": pd.Timestamp(day),
                "customer_code": code,
                "product_code": "P1",
                "sold_quantity": quantity,
            }
            for i, (code, day, quantity) in enumerate(rows)
        ]
    )


@pytest.fixture(scope="module", params=YOY_AS_OFS)
def yoy(request, tmp_path_factory):
    as_of = dt.date.fromisoformat(request.param)
    root = tmp_path_factory.mktemp("yoy")
    database = root / "warehouse.duckdb"
    lines = pd.concat(
        [random_order_lines(60, as_of, seed=3, days=800), placed_lines(as_of)], ignore_index=True
    )
    write_raw(database, lines)
    with duckdb.connect(str(database)) as conn:
        conn.execute(
            "update raw.customers set market = 'USA', sub_zone = 'NA', region = 'NA', "
            "platform = 'Brick & Mortar', channel = 'Direct' where customer_code = 'CUSA'"
        )
    dbt_build(
        database,
        root / "target",
        ["--select", "+insight_finance_yearly"],
        {"as_of_date": as_of.isoformat()},
    )
    with duckdb.connect(str(database), read_only=True) as conn:
        yield as_of, conn


def test_year_over_year_compares_the_same_days(yoy):
    as_of, conn = yoy
    assert_finance_is_like_for_like(conn, as_of)


def test_the_as_of_month_is_compared_with_the_same_days_a_year_earlier(yoy):
    as_of, conn = yoy
    month = dt.date(as_of.year, as_of.month, 1)
    lines = finance_lines(conn)
    lines["date"] = pd.to_datetime(lines["date"])
    india = lines[(lines["market"] == "India")]
    year_ago = pd.Timestamp(as_of.replace(year=as_of.year - 1))
    same_days = india[(india["date"] >= year_ago.replace(day=1)) & (india["date"] <= year_ago)][
        "net_sales"
    ].sum()
    whole_month = india[india["date"].dt.to_period("M") == year_ago.to_period("M")][
        "net_sales"
    ].sum()
    month_end = as_of.day == (pd.Timestamp(month) + pd.offsets.MonthEnd(0)).day
    if month_end:  # the whole month is compared (the line placed after it is in September)
        assert whole_month == same_days
    else:  # the line placed after the compared day is left out
        assert whole_month > same_days
    row = conn.execute(
        "select net_sales_previous_year, is_month_to_date from marts.insight_finance_monthly "
        "where month_start_date = ? and market = 'India'",
        [month],
    ).fetchone()
    assert float(row[0]) == pytest.approx(same_days)
    assert row[1] is (not month_end)


def test_prior_year_rows_without_current_sales_are_kept(yoy):
    _, conn = yoy
    usa = frame(
        conn,
        "select net_sales, net_sales_previous_year from marts.insight_finance_monthly where market = 'USA'",
    )
    assert len(usa) == 2  # the month it sold, and the same month a year later with no sales
    assert (usa["net_sales"].astype(float) == 0).sum() == 1
    assert usa["net_sales_previous_year"].notna().sum() == 1


def test_a_fiscal_year_closes_only_on_its_last_day(yoy):
    as_of, conn = yoy
    fiscal_year = as_of.year + (1 if as_of.month >= 9 else 0)
    flags = dict(
        conn.execute(
            "select fiscal_year, bool_or(is_year_to_date) from marts.insight_finance_yearly group by 1"
        ).fetchall()
    )
    closed = (as_of.month, as_of.day) == (8, 31)
    assert flags[fiscal_year] is (not closed)
    assert not any(v for fy, v in flags.items() if fy != fiscal_year)


def test_segment_shares_add_up_and_the_growth_rule(conn):
    seg = frame(conn, "select * from marts.insight_segment_performance")
    assert len(seg) == 3
    for column in ("net_sales_share", "gross_margin_share", "net_sales_share_last_12m"):
        assert seg[column].sum() == pytest.approx(1.0)
    customers = conn.execute(
        "select count(distinct customer_code) from marts.fact_sales"
    ).fetchone()[0]
    assert seg["customers"].sum() == customers
    np.testing.assert_allclose(
        seg["avg_order_value"], seg["net_sales"].astype(float) / seg["orders"]
    )
    np.testing.assert_allclose(seg["purchase_frequency"], seg["orders"] / seg["customers"])
    # the documented rule, recomputed
    small = seg["net_sales_share_last_12m"] < 1 / 3
    fast = seg["net_sales_growth_pct"] > seg["total_net_sales_growth_pct"]
    expected = np.select(
        [small & fast, fast, small], ["growth opportunity", "star", "watch"], "core"
    )
    assert seg["growth_quadrant"].tolist() == expected.tolist()
    assert (seg["is_growth_opportunity"] == (small & fast)).all()


def test_segment_retention(conn):
    lines = frame(
        conn,
        "select f.customer_code, f.date, c.platform, c.channel, c.region from marts.fact_sales f "
        "join marts.dim_customer c using (customer_code)",
    )
    as_of = pd.Timestamp(AS_OF)
    last = lines[lines["date"] > as_of - pd.DateOffset(months=12)]
    prior = lines[
        (lines["date"] > as_of - pd.DateOffset(months=24))
        & (lines["date"] <= as_of - pd.DateOffset(months=12))
    ]
    seg = frame(conn, "select * from marts.insight_segment_performance").set_index("region")
    for region, rows in seg.iterrows():
        before = set(prior.loc[prior["region"] == region, "customer_code"])
        after = set(last.loc[last["region"] == region, "customer_code"])
        assert rows["active_customers_prior_12m"] == len(before)
        assert rows["retained_customers"] == len(before & after)
        assert rows["retention_rate"] == pytest.approx(len(before & after) / len(before))


def test_cohort_counts(conn):
    cohorts = frame(conn, "select * from marts.insight_customer_cohorts")
    lines = frame(conn, "select customer_code, date, net_sales_amount from marts.fact_sales")
    lines["month"] = pd.to_datetime(lines["date"]).dt.to_period("M")
    first = lines.groupby("customer_code")["month"].min().rename("cohort")
    lines = lines.join(first, on="customer_code")
    lines["since"] = (lines["month"] - lines["cohort"]).apply(lambda d: d.n)
    expected = lines.groupby(["cohort", "since"])["customer_code"].nunique()
    cohorts["cohort"] = pd.to_datetime(cohorts["cohort_month"]).dt.to_period("M")
    ours = cohorts.set_index(["cohort", "months_since_first_order"])["active_customers"]
    assert ours[ours > 0].sort_index().tolist() == expected.sort_index().tolist()
    assert (ours.reindex(expected.index).to_numpy() == expected.to_numpy()).all()
    # cohort sizes, month 0, the spine up to the as-of month and the money
    sizes = first.value_counts()
    month0 = cohorts[cohorts["months_since_first_order"] == 0].set_index("cohort")
    assert (month0["cohort_customers"] == sizes.reindex(month0.index)).all()
    assert (month0["active_customers"] == month0["cohort_customers"]).all()
    assert (month0["retention_rate"] == 1).all()
    as_of_month = pd.Period(AS_OF, "M")
    assert len(cohorts) == sum((as_of_month - c).n + 1 for c in sizes.index)
    assert cohorts["net_sales"].sum() == pytest.approx(lines["net_sales_amount"].sum())
    assert cohorts["cohort_month_key"].is_unique


def test_bestsellers_and_lifecycle(conn):
    best = frame(conn, "select * from marts.insight_product_bestsellers")
    top = best[best["rank_by_quantity"] == 1]
    most = best.groupby(["fiscal_year", "market"])["sold_quantity"].max()
    assert (
        top.set_index(["fiscal_year", "market"])["sold_quantity"].sort_index().tolist()
        == most.sort_index().tolist()
    )
    life = frame(conn, "select * from marts.insight_product_lifecycle")
    assert sorted(life["product_code"]) == ["P0", "P1", "P2"]
    frame(conn, "select * from marts.insight_category_trends")  # it reads back
    net = "select sum(net_sales) from marts.{}"
    assert (
        conn.execute(net.format("insight_category_trends")).fetchone()
        == conn.execute(net.format("insight_product_bestsellers")).fetchone()
    )


def test_next_categories_are_popular_in_the_segment_and_not_yet_bought(conn):
    recs = frame(conn, "select * from marts.customer_next_categories")
    spend = frame(conn, "select customer_code, category from intermediate.customer_category_spend")
    rfm = frame(conn, "select customer_code, segment from analytics.customer_rfm where r_score > 0")
    bought = set(zip(spend["customer_code"], spend["category"]))
    assert not any((c, k) in bought for c, k in zip(recs["customer_code"], recs["category"]))
    assert recs.groupby("customer_code").size().max() <= 3
    penetration = (
        spend.merge(rfm, on="customer_code").groupby(["segment", "category"]).size()
        / rfm.groupby("segment").size()
    ).rename("expected")
    joined = recs.join(penetration, on=["segment", "category"])
    np.testing.assert_allclose(joined["score"], joined["expected"])
    # with three categories, a customer who bought one gets the two others, in score order
    assert len(recs) > 0
    assert (
        recs.sort_values(["customer_code", "recommendation_rank"])
        .groupby("customer_code")["score"]
        .apply(lambda s: s.is_monotonic_decreasing)
    ).all()


def expected_offers(
    offers: pd.DataFrame, summary: pd.DataFrame, cltv: pd.DataFrame
) -> pd.DataFrame:
    """The documented offer rule, recomputed in pandas (spend = margin)."""
    frame = summary.merge(cltv, on="customer_code", how="left")
    frame["margin"] = frame["expected_purchases_365d"] * frame["expected_order_value"]
    known = frame["margin"].notna() & frame["p_alive"].notna()
    higher = frame.loc[known, "margin"].apply(lambda v: (frame.loc[known, "margin"] > v).sum())
    frame["share"] = np.nan
    frame.loc[known, "share"] = higher / known.sum()
    eligible = known & (frame["share"] < 0.3)
    frame["offer"] = np.select(
        [
            ~frame["has_orders"].astype(bool).to_numpy(),
            ~known.to_numpy(),
            ~eligible.to_numpy(),
            (frame["p_alive"].astype(float) < 0.5).to_numpy(),
            (frame["frequency"].astype(float).fillna(-1) == 0).to_numpy(),
        ],
        ["no orders", "no prediction", "not eligible", "win back", "second purchase"],
        "loyalty reward",
    )
    frame["base"] = (
        frame["offer"]
        .map({"win back": 0.15, "second purchase": 0.05, "loyalty reward": 0.05})
        .fillna(0.0)
    )
    return frame.set_index("customer_code")


def test_offers_go_to_the_top_expected_margin_and_never_below_cost(conn):
    offers = frame(conn, "select * from marts.customer_discount_offers").set_index("customer_code")
    summary = frame(
        conn, "select customer_code, has_orders, frequency from intermediate.customer_summary"
    )
    cltv = frame(conn, "select * from analytics.customer_cltv").drop(columns="value_tier")
    expected = expected_offers(offers, summary, cltv).reindex(offers.index)
    assert len(offers) == len(summary)
    np.testing.assert_allclose(
        offers["expected_margin_12m"].astype(float), expected["margin"].astype(float), rtol=1e-9
    )
    np.testing.assert_allclose(offers["base_discount_pct"], expected["base"])
    rate = offers["gross_margin_rate"].fillna(0).astype(float)
    capped = np.where(rate <= 0, 0.0, np.minimum(expected["base"], np.floor(rate * 100) / 100))
    np.testing.assert_allclose(offers["suggested_discount_pct"], capped)
    reason = np.where((expected["base"] > 0) & (capped <= 0), "no margin", expected["offer"])
    assert offers["discount_reason"].tolist() == reason.tolist()
    assert (offers["is_offer"] == (offers["suggested_discount_pct"] > 0)).all()
    # never below cost, and nothing for customers without orders or without a prediction
    assert (offers["suggested_discount_pct"] <= rate + 1e-12).all()
    unpredicted = offers["expected_margin_12m"].isna()
    assert unpredicted.sum() > 0 and not offers.loc[unpredicted, "is_offer"].any()
    # the hand-made data exercises every reason an offer can have
    assert {"win back", "second purchase", "loyalty reward"} <= set(offers["discount_reason"])
    # eligibility is by expected margin: every recipient out-values every eligible-rule reject
    given = offers[offers["base_discount_pct"] > 0]
    refused = offers[offers["discount_reason"] == "not eligible"]
    assert given["expected_margin_12m"].min() > refused["expected_margin_12m"].max()

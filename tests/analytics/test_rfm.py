"""RFM scoring, the segment map and the Pareto cut: the query of ``pipeline.analytics.rfm`` run by
DuckDB on small hand-made summaries (the refresh runs the same query in the warehouse, and on
Spark; tests/spark compares the two)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.analytics import rfm

SEED_MAP = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "rfm_segment_map.csv"
AS_OF = dt.date(2026, 11, 24)


@pytest.fixture
def segment_map() -> pd.DataFrame:
    return pd.read_csv(SEED_MAP)


def run(
    summary: pd.DataFrame,
    segment_map: pd.DataFrame | None = None,
    as_of: dt.date = AS_OF,
    new_customer_days: int = 90,
) -> pd.DataFrame:
    """analytics.customer_rfm for ``summary``, indexed by customer code, in the summary's order.
    Without ``first_order_date`` a customer's first order is taken to be its last one."""
    segment_map = pd.read_csv(SEED_MAP) if segment_map is None else segment_map
    summary = summary.copy()
    if "first_order_date" in summary:
        first = pd.to_datetime(summary["first_order_date"])
        summary["t"] = (pd.Timestamp(as_of) - first).dt.days.astype("Int64")
    else:
        summary["t"] = summary["days_since_last_order"]
    with duckdb.connect() as conn:
        conn.execute("create schema intermediate; create schema reference")
        conn.register("summary_frame", summary)
        # typed as dbt builds them: decimal amounts, integer days
        conn.execute(
            "create table intermediate.customer_summary as select customer_code, has_orders, "
            "cast(days_since_last_order as bigint) as days_since_last_order, "
            "cast(order_count as hugeint) as order_count, "
            "cast(total_net_sales as decimal(38, 4)) as total_net_sales, cast(t as bigint) as t "
            "from summary_frame"
        )
        conn.register("map_frame", segment_map)
        conn.execute("create table reference.rfm_segment_map as select * from map_frame")
        problems = conn.execute(rfm.summary_problems_query("intermediate.customer_summary")).df()
        rfm.check_summary(problems, "intermediate.customer_summary")
        query = rfm.customer_rfm_query(
            "intermediate.customer_summary",
            "reference.rfm_segment_map",
            rfm.validate_segment_map(segment_map),
            as_of,
            new_customer_days,
        )
        out = conn.execute(query).df()
        assert tuple(out.columns) == rfm.COLUMNS  # analytics.customer_rfm's contract
        out = out.set_index("customer_code")
        conn.execute(f"create table scored as {query}")
        pareto = rfm.pareto_cut(
            conn.execute(rfm.pareto_query("scored", "intermediate.customer_summary")).df()
        )
    out = out.loc[summary["customer_code"]]
    out.attrs["pareto"] = pareto
    return out


def scores(summary: pd.DataFrame) -> pd.DataFrame:
    return run(summary)[list(rfm.SCORE_COLUMNS)]


def buyers(**columns) -> pd.DataFrame:
    """A summary of customers with orders; columns not given are the same for everyone."""
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame(
        {
            "customer_code": [f"c{i:05d}" for i in range(n)],
            "has_orders": True,
            "days_since_last_order": 10,
            "order_count": 1,
            "total_net_sales": 100.0,
        }
    )
    for name, values in columns.items():
        frame[name] = list(values)
    return frame


def segments_of(grid: pd.DataFrame, segment_map: pd.DataFrame) -> pd.Series:
    """The segment ``rfm.segment_rule`` gives each row of ``grid`` (r_score, fm_score,
    is_new_customer)."""
    ordered = rfm.validate_segment_map(segment_map)
    with duckdb.connect() as conn:
        conn.register("grid", grid.assign(i=range(len(grid))))
        conn.register("segment_map", ordered)
        found = conn.execute(
            f"select m.segment from (select i, {rfm.segment_rule(ordered)} as p from grid) as g "
            "left join segment_map as m on g.p = m.priority order by g.i"
        ).df()["segment"]
    return pd.Series(found.to_numpy(), index=grid.index, name="segment")


# --- quintile scores -------------------------------------------------------------------------


def test_distinct_values_fill_five_equal_quintiles():
    # ten distinct values: two per quintile, in order
    assert scores(buyers(order_count=range(1, 11)))["f_score"].tolist() == [
        1, 1, 2, 2, 3, 3, 4, 4, 5, 5
    ]  # fmt: skip


def test_recency_is_reversed_so_the_most_recent_score_five():
    days_since = [1, 400, 30, 90, 200]
    assert scores(buyers(days_since_last_order=days_since))["r_score"].tolist() == [5, 1, 4, 3, 2]


def test_ties_get_the_same_score_whatever_the_row_order():
    summary = buyers(total_net_sales=[1.0, 1, 1, 1, 1, 1, 2, 3, 4, 5])
    got = scores(summary)["m_score"]
    # six customers share the lowest value: all score 1; the next is better than 6 of 10
    assert got.tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    shuffled = scores(summary.sample(frac=1, random_state=3))["m_score"]
    assert shuffled.loc[got.index].tolist() == got.tolist()


def test_null_values_are_refused():
    with pytest.raises(ValueError, match="1 customers with orders .* a null"):
        run(buyers(order_count=[1.0, None]))


def test_customers_without_orders_score_zero_and_do_not_shift_the_quintiles():
    summary = pd.DataFrame(
        {
            "customer_code": ["a", "b", "c", "d", "e", "z"],
            "has_orders": [True, True, True, True, True, False],
            "days_since_last_order": [5, 50, 100, 200, 300, None],
            "order_count": [9, 4, 3, 2, 1, 0],
            "total_net_sales": [900.0, 400, 300, 200, 100, 0],
        }
    )
    got = scores(summary)
    assert got.loc["z"].tolist() == [0, 0, 0, 0]
    assert got.loc["a"].tolist() == [5, 5, 5, 5]
    assert got.loc["e"].tolist() == [1, 1, 1, 1]
    assert got.drop(index="z").isin(range(1, 6)).all().all()


def test_duplicated_customers_are_refused():
    summary = buyers(days_since_last_order=[1, 2]).assign(customer_code=["a", "a"])
    with pytest.raises(ValueError, match="1 duplicated customer_code"):
        run(summary)


# --- FM and the new-customer window -----------------------------------------------------------


def every_f_and_m() -> pd.DataFrame:
    """25 customers with orders whose (F, M) take every pair of 1..5 once, and one without."""
    i = np.arange(25)
    summary = buyers(order_count=i + 1, total_net_sales=(i % 5) * 5 + i // 5 + 1.0)
    no_orders = {"customer_code": "none", "has_orders": False, "days_since_last_order": None}
    return pd.concat([summary, pd.DataFrame([no_orders])], ignore_index=True).fillna(
        {"order_count": 0, "total_net_sales": 0.0}
    )


@pytest.mark.parametrize(
    ("f", "m", "fm"),
    [
        (1, 1, 1),
        (1, 2, 2),
        (2, 3, 3),
        (3, 4, 4),
        (4, 5, 5),
        (5, 5, 5),
        (2, 2, 2),
        (5, 1, 3),
        (0, 0, 0),
    ],
)
def test_fm_is_the_mean_of_f_and_m_rounded_half_up(f, m, fm):
    # Python's round() would send 2.5 to 2 and 4.5 to 4 (halves to even): FM must not
    got = scores(every_f_and_m())
    assert len(got[["f_score", "m_score"]].drop_duplicates()) == 26
    (row,) = got[(got["f_score"] == f) & (got["m_score"] == m)].itertuples()
    assert row.fm_score == fm


def test_new_customer_window_counts_the_as_of_day_as_day_one():
    summary = buyers(
        first_order_date=pd.to_datetime(["2026-11-24", "2026-08-27", "2026-08-26", None]),
        has_orders=[True, True, True, False],
    )
    out = run(summary)
    days = out["days_since_first_order"]
    assert days.tolist()[:3] == [0, 89, 90] and pd.isna(days.iloc[3])
    assert out["is_new_customer"].tolist() == [True, True, False, False]
    assert not run(summary, new_customer_days=0)["is_new_customer"].any()  # 0: the segment is off
    with pytest.raises(ValueError, match=">= 0"):
        run(summary, new_customer_days=-1)


# --- segment map -----------------------------------------------------------------------------

# The R x FM grid of DESIGN.md ("Customer analytics contracts"), rows R 5..1, columns FM 1..5.
DESIGN_GRID = {
    5: ["Promising", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions"],
    4: ["Promising", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions"],
    3: ["About To Sleep", "About To Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"],
    2: ["Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them"],
    1: ["Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them"],
}


def grid_frame(new: bool = False) -> pd.DataFrame:
    grid = pd.DataFrame(rfm.grid_cells(), columns=["r_score", "fm_score"])
    grid["is_new_customer"] = new
    return grid


def test_default_map_is_the_design_grid(segment_map):
    grid = grid_frame()
    segments = segments_of(grid, segment_map)
    assert segments.notna().all()
    for (r, fm), segment in zip(grid[["r_score", "fm_score"]].itertuples(index=False), segments):
        expected = "No Orders" if r == 0 else DESIGN_GRID[r][fm - 1]
        assert segment == expected, (r, fm)


def test_new_customers_win_over_every_score_but_not_over_no_orders(segment_map):
    grid = grid_frame(new=True)
    segments = segments_of(grid, segment_map)
    assert (segments[grid["r_score"] > 0] == "New Customers").all()
    assert (segments[grid["r_score"] == 0] == "No Orders").all()


@pytest.mark.parametrize(
    ("scores", "segment"),
    [
        # F 4 and M 5 average 4.5: half up gives FM 5, so R 4 makes a Champion
        ({"days": 1, "orders": 8, "sales": 900.0}, "Champions"),
        # a one-order customer long ago with a small spend
        ({"days": 700, "orders": 1, "sales": 10.0}, "Lost"),
    ],
)
def test_segments_end_to_end(segment_map, scores, segment):
    rng = np.random.default_rng(1)
    n = 200
    summary = buyers(
        days_since_last_order=rng.integers(0, 720, n),
        order_count=rng.integers(1, 10, n),
        total_net_sales=rng.uniform(5, 1000, n).round(2),
        first_order_date=[pd.Timestamp("2024-01-01")] * n,
    )
    summary.loc[0, ["days_since_last_order", "order_count", "total_net_sales"]] = [
        scores["days"],
        scores["orders"],
        scores["sales"],
    ]
    out = run(summary, segment_map)
    assert out["segment"].iloc[0] == segment
    assert not out["is_new_customer"].any()


def test_a_recent_first_order_makes_a_new_customer_whatever_the_scores(segment_map):
    summary = pd.DataFrame(
        {
            "customer_code": ["old", "new", "none"],
            "has_orders": [True, True, False],
            "days_since_last_order": [1, 300, None],  # "new" scores R 1: still New Customers
            "order_count": [5, 1, 0],
            "total_net_sales": [500.0, 20.0, 0.0],
            "first_order_date": pd.to_datetime(["2025-01-01", "2026-11-01", None]),
        }
    )
    out = run(summary, segment_map)
    assert (
        out.loc["new", "segment"] == "New Customers" and out.loc["none", "segment"] == "No Orders"
    )
    assert out.loc["old", "segment"] not in ("New Customers", "No Orders")
    assert out.loc["new", "days_since_first_order"] == 23
    off = run(summary, segment_map, new_customer_days=0)
    assert off.loc["new", "segment"] != "New Customers"


def test_every_cell_gets_exactly_one_segment_and_the_map_has_no_catch_all(segment_map):
    assert "Others" not in set(segment_map["segment"])
    grid = grid_frame()
    assert len(grid) == 26
    assert segments_of(grid, segment_map).notna().all()


def test_changing_the_map_changes_the_output(segment_map):
    grid = grid_frame()
    before = segments_of(grid, segment_map)
    edited = segment_map.copy()
    # a team decides Champions include R 3 (first match wins over Loyal Customers' row)
    edited.loc[edited["segment"] == "Champions", "r_min"] = 3
    after = segments_of(grid, edited)
    assert (before == "Champions").sum() == 2 * 2
    assert (after == "Champions").sum() == 3 * 2
    assert (after == "Loyal Customers").sum() == 0
    # taking cells away leaves holes, which are refused
    edited.loc[edited["segment"] == "Champions", ["r_min", "fm_min"]] = [4, 5]
    with pytest.raises(rfm.SegmentMapError, match="without a segment"):
        rfm.validate_segment_map(edited)


def test_segment_names_are_never_spliced_into_the_query(segment_map):
    tricky = segment_map.copy()
    tricky.loc[tricky["segment"] == "Lost", "segment"] = "Lost'; drop table x; --"
    assert "drop table" not in rfm.segment_rule(rfm.validate_segment_map(tricky))
    got = run(buyers(days_since_last_order=[900, 1], order_count=[1, 9]), tricky)
    assert got["segment"].iloc[0] == "Lost'; drop table x; --"


def test_a_map_with_holes_is_refused(segment_map):
    without_lost = segment_map[segment_map["segment"] != "Lost"]
    with pytest.raises(rfm.SegmentMapError, match=r"\(R, FM\) = \(1, 1\)"):
        rfm.validate_segment_map(without_lost)


def test_a_map_covered_only_by_the_new_customer_row_is_refused(segment_map):
    # New Customers covers every cell, but only for new customers: the others would be unlabelled
    only_new = segment_map[segment_map["segment"].isin(["No Orders", "New Customers"])]
    with pytest.raises(rfm.SegmentMapError, match="25 .R, FM. cells"):
        rfm.validate_segment_map(only_new)


def test_a_map_with_inverted_ranges_is_refused(segment_map):
    broken = segment_map.copy()
    broken.loc[broken["segment"] == "Lost", ["r_min", "r_max"]] = [3, 1]
    with pytest.raises(rfm.SegmentMapError, match="r_min > r_max"):
        rfm.validate_segment_map(broken)


def test_a_map_with_a_missing_column_is_refused(segment_map):
    with pytest.raises(rfm.SegmentMapError, match="new_customers_only"):
        rfm.validate_segment_map(segment_map.drop(columns="new_customers_only"))


# --- Pareto ----------------------------------------------------------------------------------


def pareto(revenue, codes=None) -> pd.DataFrame:
    summary = buyers(total_net_sales=revenue)
    if codes is not None:
        summary["customer_code"] = codes
    return run(summary)


def test_pareto_takes_the_fewest_top_customers_reaching_half():
    out = pareto([10.0, 40.0, 5.0, 30.0, 15.0])  # total 100
    # b (40) alone is 40%; b + d (70) reach 50%: two customers
    assert out["is_pareto"].tolist() == [False, True, False, True, False]
    cut = out.attrs["pareto"]
    assert cut.customers == 2
    assert cut.revenue_share == pytest.approx(0.70)
    assert cut.customer_share == pytest.approx(0.4)


def test_pareto_stops_at_exactly_half():
    out = pareto([50.0, 30.0, 20.0])
    assert out["is_pareto"].tolist() == [True, False, False]
    assert out.attrs["pareto"].revenue_share == pytest.approx(0.5)


def test_pareto_breaks_revenue_ties_by_customer_code():
    out = pareto([10.0, 10.0, 10.0], codes=["z", "y", "x"])
    # any two of three reach 2/3; the tie goes to the smallest codes
    assert out["is_pareto"].tolist() == [False, True, True]


def test_pareto_ignores_refunds_and_handles_no_revenue():
    assert pareto([-50.0, 10.0, 0.0])["is_pareto"].tolist() == [False, True, False]
    nothing = pareto([0.0, 0.0, -1.0])
    assert not nothing["is_pareto"].any() and nothing.attrs["pareto"].customers == 0


def test_pareto_on_a_skewed_population_takes_a_minority():
    rng = np.random.default_rng(0)
    revenue = pd.Series(rng.pareto(1.2, 10_000).round(4))
    flags = pareto(revenue)["is_pareto"].to_numpy()
    flagged = revenue[flags]
    assert flagged.sum() / revenue.sum() >= 0.5
    # removing the smallest flagged customer must drop below half: the set is minimal
    assert (flagged.sum() - flagged.min()) / revenue.sum() < 0.5
    assert flagged.min() >= revenue[~flags].max()

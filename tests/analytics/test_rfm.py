"""RFM scoring, the segment map and the Pareto cut on small hand-made frames."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.analytics import rfm

SEED_MAP = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "rfm_segment_map.csv"


@pytest.fixture
def segment_map() -> pd.DataFrame:
    return pd.read_csv(SEED_MAP)


# --- quintile scores -------------------------------------------------------------------------


def test_distinct_values_fill_five_equal_quintiles():
    # ten distinct values: two per quintile, in order
    scores = rfm.quintile_score(pd.Series(range(10)))
    assert scores.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_recency_is_reversed_so_the_most_recent_score_five():
    days_since = pd.Series([1, 400, 30, 90, 200])
    assert rfm.quintile_score(days_since, higher_is_better=False).tolist() == [5, 1, 4, 3, 2]


def test_ties_get_the_same_score_whatever_the_row_order():
    values = pd.Series([1, 1, 1, 1, 1, 1, 2, 3, 4, 5])
    scores = rfm.quintile_score(values)
    # six customers share the lowest value: all score 1; the next is better than 6 of 10
    assert scores.tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    shuffled = values.sample(frac=1, random_state=3)
    assert rfm.quintile_score(shuffled).sort_index().tolist() == scores.tolist()


def test_null_values_are_refused():
    with pytest.raises(ValueError, match="null"):
        rfm.quintile_score(pd.Series([1.0, None], name="order_count"))


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
    scores = rfm.rfm_scores(summary).set_index("customer_code")
    assert scores.loc["z"].tolist() == [0, 0, 0, 0]
    assert scores.loc["a"].tolist() == [5, 5, 5, 5]
    assert scores.loc["e"].tolist() == [1, 1, 1, 1]
    assert scores.drop(index="z").isin(range(1, 6)).all().all()


def test_duplicated_customers_are_refused():
    summary = pd.DataFrame(
        {
            "customer_code": ["a", "a"],
            "has_orders": [True, True],
            "days_since_last_order": [1, 2],
            "order_count": [1, 1],
            "total_net_sales": [1.0, 1.0],
        }
    )
    with pytest.raises(ValueError, match="duplicated"):
        rfm.rfm_scores(summary)


# --- FM and the new-customer window -----------------------------------------------------------


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
    assert rfm.fm_score(pd.Series([f]), pd.Series([m])).iloc[0] == fm


def test_scores_carry_fm():
    summary = pd.DataFrame(
        {
            "customer_code": ["a", "b", "c", "d", "e"],
            "has_orders": [True, True, True, True, False],
            "days_since_last_order": [5, 50, 100, 200, None],
            "order_count": [9, 1, 3, 2, 0],
            "total_net_sales": [900.0, 400, 300, 200, 0],
        }
    )
    scores = rfm.rfm_scores(summary).set_index("customer_code")
    expected = (scores["f_score"] + scores["m_score"] + 1) // 2
    assert scores["fm_score"].tolist() == expected.tolist()
    assert scores.loc["e", "fm_score"] == 0


def test_new_customer_window_counts_the_as_of_day_as_day_one():
    as_of = dt.date(2026, 11, 24)
    first = pd.Series(pd.to_datetime(["2026-11-24", "2026-08-27", "2026-08-26", None]))
    days = rfm.days_since_first_order(first, as_of)
    assert days.tolist()[:3] == [0, 89, 90] and pd.isna(days.iloc[3])
    assert rfm.is_new_customer(days, 90).tolist() == [True, True, False, False]
    assert not rfm.is_new_customer(days, 0).any()  # 0 switches the segment off
    with pytest.raises(ValueError, match=">= 0"):
        rfm.is_new_customer(days, -1)


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
    grid = rfm.all_score_combinations(include_no_orders=True)
    grid["is_new_customer"] = new
    return grid


def test_default_map_is_the_design_grid(segment_map):
    grid = grid_frame()
    segments = rfm.assign_segments(grid, segment_map)
    assert segments.notna().all()
    for (r, fm), segment in zip(grid[["r_score", "fm_score"]].itertuples(index=False), segments):
        expected = "No Orders" if r == 0 else DESIGN_GRID[r][fm - 1]
        assert segment == expected, (r, fm)


def test_new_customers_win_over_every_score_but_not_over_no_orders(segment_map):
    grid = grid_frame(new=True)
    segments = rfm.assign_segments(grid, segment_map)
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
def test_segment_customers_end_to_end(segment_map, scores, segment):
    rng = np.random.default_rng(1)
    n = 200
    summary = pd.DataFrame(
        {
            "customer_code": [f"c{i:03d}" for i in range(n)],
            "has_orders": True,
            "days_since_last_order": rng.integers(0, 720, n),
            "order_count": rng.integers(1, 10, n),
            "total_net_sales": rng.uniform(5, 1000, n),
            "first_order_date": pd.Timestamp("2024-01-01"),
        }
    )
    summary.loc[0, ["days_since_last_order", "order_count", "total_net_sales"]] = [
        scores["days"],
        scores["orders"],
        scores["sales"],
    ]
    out = rfm.segment_customers(summary, segment_map, dt.date(2026, 11, 24), 90)
    assert out.loc[0, "segment"] == segment
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
    out = rfm.segment_customers(summary, segment_map, dt.date(2026, 11, 24), 90).set_index(
        "customer_code"
    )
    assert (
        out.loc["new", "segment"] == "New Customers" and out.loc["none", "segment"] == "No Orders"
    )
    assert out.loc["old", "segment"] not in ("New Customers", "No Orders")
    assert out.loc["new", "days_since_first_order"] == 23
    off = rfm.segment_customers(summary, segment_map, dt.date(2026, 11, 24), 0).set_index(
        "customer_code"
    )
    assert off.loc["new", "segment"] != "New Customers"


def test_every_cell_gets_exactly_one_segment_and_the_map_has_no_catch_all(segment_map):
    assert "Others" not in set(segment_map["segment"])
    grid = grid_frame()
    assert len(grid) == 26
    assert rfm.assign_segments(grid, segment_map).notna().all()


def test_changing_the_map_changes_the_output(segment_map):
    grid = grid_frame()
    before = rfm.assign_segments(grid, segment_map)
    edited = segment_map.copy()
    # a team decides Champions include R 3 (first match wins over Loyal Customers' row)
    edited.loc[edited["segment"] == "Champions", "r_min"] = 3
    after = rfm.assign_segments(grid, edited)
    assert (before == "Champions").sum() == 2 * 2
    assert (after == "Champions").sum() == 3 * 2
    assert (after == "Loyal Customers").sum() == 0
    # taking cells away leaves holes, which are refused
    edited.loc[edited["segment"] == "Champions", ["r_min", "fm_min"]] = [4, 5]
    with pytest.raises(rfm.SegmentMapError, match="without a segment"):
        rfm.validate_segment_map(edited)


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


def test_pareto_takes_the_fewest_top_customers_reaching_half():
    codes = pd.Series(["a", "b", "c", "d", "e"])
    revenue = pd.Series([10.0, 40.0, 5.0, 30.0, 15.0])  # total 100
    cut = rfm.pareto_cut(codes, revenue)
    # b (40) alone is 40%; b + d (70) reach 50%: two customers
    assert cut.flags.tolist() == [False, True, False, True, False]
    assert cut.customers == 2
    assert cut.revenue_share == pytest.approx(0.70)
    assert cut.customer_share == pytest.approx(0.4)


def test_pareto_stops_at_exactly_half():
    codes = pd.Series(["a", "b", "c"])
    cut = rfm.pareto_cut(codes, pd.Series([50.0, 30.0, 20.0]))
    assert cut.flags.tolist() == [True, False, False]
    assert cut.revenue_share == pytest.approx(0.5)


def test_pareto_breaks_revenue_ties_by_customer_code():
    codes = pd.Series(["z", "y", "x"])
    cut = rfm.pareto_cut(codes, pd.Series([10.0, 10.0, 10.0]))
    # any two of three reach 2/3; the tie goes to the smallest codes
    assert cut.flags.tolist() == [False, True, True]


def test_pareto_ignores_refunds_and_handles_no_revenue():
    codes = pd.Series(["a", "b", "c"])
    cut = rfm.pareto_cut(codes, pd.Series([-50.0, 10.0, 0.0]))
    assert cut.flags.tolist() == [False, True, False]
    nothing = rfm.pareto_cut(codes, pd.Series([0.0, 0.0, -1.0]))
    assert not nothing.flags.any() and nothing.customers == 0


def test_pareto_on_a_skewed_population_takes_a_minority():
    rng = np.random.default_rng(0)
    revenue = pd.Series(rng.pareto(1.2, 10_000))
    codes = pd.Series([f"c{i:05d}" for i in range(10_000)])
    cut = rfm.pareto_cut(codes, revenue)
    flagged = revenue[cut.flags]
    assert flagged.sum() / revenue.sum() >= 0.5
    # removing the smallest flagged customer must drop below half: the set is minimal
    assert (flagged.sum() - flagged.min()) / revenue.sum() < 0.5
    assert flagged.min() >= revenue[~cut.flags].max()

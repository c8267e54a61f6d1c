"""RFM scoring, the segment map and the Pareto cut on small hand-made frames."""

from __future__ import annotations

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
    assert scores.loc["z"].tolist() == [0, 0, 0]
    assert scores.loc["a"].tolist() == [5, 5, 5]
    assert scores.loc["e"].tolist() == [1, 1, 1]
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


# --- segment map -----------------------------------------------------------------------------


def test_default_map_gives_each_of_the_125_combinations_exactly_one_segment(segment_map):
    grid = rfm.all_score_combinations()
    assert len(grid) == 125
    segments = rfm.assign_segments(grid, segment_map)
    assert segments.notna().all()
    # exactly one: the first match in priority order, so assignment is a function of the scores
    assert len(segments) == len(grid)


@pytest.mark.parametrize(
    ("scores", "segment"),
    [
        ((5, 5, 5), "Champions"),  # the top cell
        ((4, 4, 4), "Potential Loyalist"),  # also inside Loyal Customers: first match wins
        ((2, 2, 2), "Loyal Customers"),
        ((4, 1, 4), "Promising"),
        ((5, 1, 1), "New Customers"),
        ((2, 3, 5), "Can't Lose Them"),  # also inside At Risk: first match wins
        ((1, 5, 4), "At Risk"),
        ((3, 5, 3), "Potential Loyalist"),
        ((1, 3, 3), "Need Attention"),
        ((3, 1, 1), "About To Sleep"),
        ((1, 1, 1), "Lost"),
        ((2, 1, 5), "Others"),  # no named range holds it
        ((0, 0, 0), "No Orders"),
    ],
)
def test_default_map_follows_the_design(segment_map, scores, segment):
    frame = pd.DataFrame([scores], columns=list(rfm.SCORE_COLUMNS))
    assert rfm.assign_segments(frame, segment_map).iloc[0] == segment


def test_changing_the_map_changes_the_output(segment_map):
    grid = rfm.all_score_combinations()
    before = rfm.assign_segments(grid, segment_map)
    edited = segment_map.copy()
    # a team decides Champions are everyone with R and F of 4 or 5
    champions = edited["segment"] == "Champions"
    edited.loc[champions, ["r_min", "f_min", "m_min"]] = [4, 4, 1]
    after = rfm.assign_segments(grid, edited)
    assert (before == "Champions").sum() == 1
    assert (after == "Champions").sum() == 2 * 2 * 5


def test_a_map_with_holes_is_refused(segment_map):
    without_catch_all = segment_map[segment_map["segment"] != "Others"]
    with pytest.raises(rfm.SegmentMapError, match="without a segment"):
        rfm.validate_segment_map(without_catch_all)


def test_a_map_with_inverted_ranges_is_refused(segment_map):
    broken = segment_map.copy()
    broken.loc[broken["segment"] == "Lost", ["r_min", "r_max"]] = [3, 1]
    with pytest.raises(rfm.SegmentMapError, match="r_min > r_max"):
        rfm.validate_segment_map(broken)


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

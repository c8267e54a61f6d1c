"""Backtest baseline, the rank metrics the engine computes, and the ground-truth comparison:
hand-checked numbers, then real data, through a real DuckDB warehouse."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import math

import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import summary_data_from_transaction_data
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from pipeline.analytics import backtest
from pipeline.analytics.cltv import base, gamma_gamma, scoring, transactions
from pipeline.synthetic import SimulationConfig, simulate
from tests.analytics.conftest import warehouse_with

DATASETS = importlib.resources.files("lifetimes") / "datasets"


# --- hand-checked metrics ---------------------------------------------------------------------


def test_baseline_carries_the_past_repeat_rate_forward():
    baseline = backtest.baseline_purchases(np.array([0, 2, 3, 0]), np.array([10.0, 100, 30, 0]), 90)
    np.testing.assert_allclose(baseline, [0.0, 1.8, 9.0, 0.0])


def test_undefined_metrics_are_nan(tmp_path):
    assert math.isnan(backtest.pct_error(3.0, 0.0))
    with warehouse_with(tmp_path / "w.duckdb", {}) as tables:
        pairs = "select 'k' as key, 1.0 as x, y from (select 0.0 as y union all select 2.0)"
        assert math.isnan(backtest.rank_correlations(tables, pairs)["k"])
        labelled = "select 'k' as key, 0.5 as score, true as label"
        assert math.isnan(backtest.aucs(tables, labelled)["k"])


def test_rank_metrics_in_sql_equal_scipy_and_scikit_learn_with_ties(tmp_path):
    rng = np.random.default_rng(8)
    frame = pd.DataFrame(
        {
            "key": np.repeat(["a", "b"], 500),
            # few distinct values on both sides: many ties
            "x": rng.integers(0, 12, 1000) / 4,
            "y": rng.poisson(1.5, 1000).astype(float),
        }
    )
    frame["label"] = rng.random(1000) < 0.2 + frame["x"] / 6
    with warehouse_with(tmp_path / "w.duckdb", {"analytics.pairs": frame}) as tables:
        spearman = backtest.rank_correlations(tables, "select key, x, y from analytics.pairs")
        auc = backtest.aucs(tables, "select key, x as score, label from analytics.pairs")
    for key, part in frame.groupby("key"):
        expected = spearmanr(part["x"], part["y"]).statistic
        assert spearman[key] == pytest.approx(expected, rel=1e-12)
        assert auc[key] == pytest.approx(roc_auc_score(part["label"], part["x"]), rel=1e-12)


# --- the simulator's ground truth -------------------------------------------------------------


def fake_bgnbd() -> base.FitResult:
    return base.FitResult(
        name="bgnbd",
        model=None,
        penalizer=0.0,
        converged=True,
        log_likelihood=-1.0,
        n_customers=4,
        n_rows=4,
        params={"r": 1.0, "alpha": 100.0, "a": 1.0, "b": 3.0},
    )


def truth_warehouse(tmp_path, scores, truth, summary):
    """A DuckDB warehouse with the scores, the truth and the customers' summary."""
    return warehouse_with(
        tmp_path / "warehouse.duckdb",
        {
            backtest.SCORES: scores,
            backtest.TRUTH_TABLE: truth,
            backtest.SUMMARY: summary,
        },
    )


def test_truth_comparison_by_hand(tmp_path):
    scores = pd.DataFrame(
        {
            "customer_code": ["a", "b", "c", "d", "none"],
            "p_alive": [0.9, 0.2, 0.6, 1.0, np.nan],
            "expected_purchases_365d": [2.0, 0.1, 1.0, 3.0, np.nan],
            "expected_order_value": [10.0, 10, 20, 5, np.nan],
        }
    )
    truth = pd.DataFrame(
        {
            "customer_code": ["a", "b", "c", "d", "not scored"],
            "purchase_rate": [0.02, 0.01, 0.0, 0.01, 9.0],
            "dropout_prob": [0.1, 0.5, 0.3, 0.1, 1.0],
            "alive_at_as_of": [True, False, True, True, False],
            "future_orders": [2, 0, 2, 3, 100],
            "future_gross_margin": [20.0, 0, 30, 15, 1000],
        }
    )
    # a and c have repeat purchases; b, d and the customer without orders do not
    summary_table = pd.DataFrame(
        {"customer_code": ["a", "b", "c", "d", "none"], "frequency": [2, 0, 1, 0, None]}
    )
    with truth_warehouse(tmp_path, scores, truth, summary_table) as tables:
        metrics, summary = backtest.compare_with_truth(tables, fake_bgnbd())
    ours, actual = summary["bgnbd"], summary["truth"]
    assert summary["n_customers"] == 4
    assert actual["alive_share"] == 0.75 and ours["alive_share"] == pytest.approx(0.675)
    assert ours["p_alive_brier"] == pytest.approx((0.01 + 0.04 + 0.16 + 0) / 4)
    assert ours["p_alive_auc"] == 1.0  # the one dead customer has the lowest P(alive)
    assert actual["purchases_365d_total"] == 7
    assert ours["purchases_365d_total"] == pytest.approx(6.1)
    assert ours["purchases_365d_aggregate_pct_error"] == pytest.approx(100 * (6.1 - 7) / 7)
    assert ours["purchases_365d_mae"] == pytest.approx(0.275)
    # value = purchases x order value: 20 + 1 + 20 + 15 = 56 vs 65
    assert ours["value_365d_total"] == pytest.approx(56.0)
    assert ours["value_365d_aggregate_pct_error"] == pytest.approx(100 * (56 - 65) / 65)
    assert ours["mean_purchase_rate_per_day"] == 0.01
    assert actual["mean_purchase_rate_per_day"] == 0.01
    assert ours["mean_dropout_prob"] == 0.25
    assert actual["mean_dropout_prob"] == pytest.approx(0.25)
    # repeat buyers a (alive, 0.9) and c (alive, 0.6): both alive, so no AUC
    assert ours["p_alive_brier_repeat"] == pytest.approx((0.01 + 0.16) / 2)
    assert math.isnan(ours["p_alive_auc_repeat"])
    # spend per order, weighted by next year's orders: a 10 vs 20 / 2, c 20 vs 30 / 2
    assert ours["order_value_rmse_repeat"] == pytest.approx(math.sqrt(2 * 25 / 4))
    assert ours["order_value_aggregate_pct_error_repeat"] == pytest.approx(100 * (60 - 50) / 50)
    # one-time buyers with future orders: d alone, 5 vs 15 / 3
    assert ours["order_value_rmse_one_time"] == pytest.approx(0.0)
    assert set(metrics["model"]) == {"bgnbd", "truth"}
    assert not metrics.duplicated(["metric", "model"]).any()


def test_truth_comparison_on_the_simulator(tmp_path):
    """Fit and score a small simulated world, then check the model against its latent truth."""
    as_of = dt.date(2026, 11, 24)
    data = simulate(
        SimulationConfig(
            customers=3000, seed=7, start_date=dt.date(2023, 9, 1), history_days=1095, as_of=as_of
        )
    )
    lines = data.order_lines
    summary = summary_data_from_transaction_data(
        lines,
        "customer_code",
        "order_date",
        monetary_value_col="sold_quantity",
        observation_period_end=pd.Timestamp(as_of),
        freq="D",
    ).reset_index()
    summary = summary.rename(columns={"T": "t", "monetary_value": "monetary_value_gross_margin"})
    summary["has_orders"] = True
    transaction = transactions.fit_bgnbd(summary)
    spend = gamma_gamma.fit_gamma_gamma(summary)
    scores = scoring.score_customers(summary, transaction, spend)
    with truth_warehouse(tmp_path, scores, data.truth_customers, summary) as tables:
        metrics, result = backtest.compare_with_truth(tables, transaction)
    ours, truth = result["bgnbd"], result["truth"]
    assert result["n_customers"] == len(summary) == len(data.truth_customers)
    # P(alive) ranks the living above the dead, and its mean is near the true share
    assert ours["p_alive_auc"] > 0.8
    assert ours["alive_share"] == pytest.approx(truth["alive_share"], abs=0.08)
    # next year's purchases in aggregate, and the population's mean purchase rate
    assert abs(ours["purchases_365d_aggregate_pct_error"]) < 15
    assert ours["mean_purchase_rate_per_day"] == pytest.approx(
        truth["mean_purchase_rate_per_day"], rel=0.2
    )
    assert len(metrics) == len(ours) + len(truth) + 1

"""Backtest metrics and the ground-truth comparison: hand-checked numbers, then real data."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import (
    calibration_and_holdout_data,
    summary_data_from_transaction_data,
)

from pipeline.analytics import backtest, cltv
from pipeline.synthetic import SimulationConfig, simulate

DATASETS = importlib.resources.files("lifetimes") / "datasets"


# --- hand-checked metrics ---------------------------------------------------------------------


@pytest.fixture
def predictions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_code": ["a", "b", "c", "d"],
            "actual_purchases": [0.0, 2, 1, 3],
            "bgnbd_purchases": [0.5, 1.5, 1.0, 2.0],
            "baseline_purchases": [0.0, 4, 0, 2],
            "actual_value": [0.0, 40, 10, 90],
            "bgnbd_value": [5.0, 30, 10, 60],
            "baseline_value": [0.0, 80, 0, 60],
        }
    )


def test_metrics_by_hand(predictions):
    metrics, summary = backtest.backtest_metrics(predictions)
    ours, naive = summary["bgnbd"], summary["baseline"]
    assert summary["actual"] == {"purchases_total": 6.0, "value_total": 140.0}
    # totals 5 vs 6 -> -16.7%; |0.5| + |0.5| + 0 + |1| over 4 customers
    assert ours["purchases_total"] == 5.0
    assert ours["purchases_aggregate_pct_error"] == pytest.approx(-100 / 6)
    assert ours["purchases_mae"] == 0.5
    assert ours["purchases_spearman"] == pytest.approx(1.0)  # same order as the actuals
    assert ours["value_aggregate_pct_error"] == pytest.approx(-25.0)
    assert ours["value_mae"] == pytest.approx(11.25)
    # the baseline hits the total exactly but misses per customer
    assert naive["purchases_aggregate_pct_error"] == 0.0
    assert naive["purchases_mae"] == 1.0
    # ranks (1.5, 4, 1.5, 3) vs (1, 3, 2, 4): 3.5 / sqrt(4.5 * 5)
    assert naive["purchases_spearman"] == pytest.approx(3.5 / math.sqrt(22.5))
    assert naive["value_mae"] == 20.0
    # lower MAE is not enough: the aggregate error must be lower too
    assert summary["beats_baseline"] is False
    assert summary["n_customers"] == 4
    assert list(metrics.columns) == ["metric", "model", "value"]
    assert set(metrics["model"]) == {"actual", "bgnbd", "baseline"}
    lookup = metrics.set_index(["metric", "model"])["value"]
    assert lookup[("purchases_mae", "bgnbd")] == 0.5
    assert lookup[("beats_baseline", "bgnbd")] == 0.0
    assert not metrics.duplicated(["metric", "model"]).any()


def test_the_model_beats_the_baseline_when_better_on_both_errors(predictions):
    predictions["bgnbd_purchases"] = [0.2, 2.2, 1.0, 2.6]  # total 6: no aggregate error
    _, summary = backtest.backtest_metrics(predictions)
    assert summary["bgnbd"]["purchases_aggregate_pct_error"] == pytest.approx(0.0, abs=1e-12)
    assert summary["bgnbd"]["purchases_mae"] < summary["baseline"]["purchases_mae"]
    # equal aggregate errors are not "lower"
    assert summary["beats_baseline"] is False
    predictions["bgnbd_purchases"] = [0.2, 2.2, 1.0, 2.5]
    _, summary = backtest.backtest_metrics(predictions)
    assert summary["beats_baseline"] is False
    predictions["baseline_purchases"] = [0.0, 4, 0, 3]  # the baseline now over-predicts
    _, summary = backtest.backtest_metrics(predictions)
    assert summary["beats_baseline"] is True


def test_baseline_carries_the_past_repeat_rate_forward():
    baseline = backtest.baseline_purchases(
        np.array([0, 2, 3, 0]), np.array([10.0, 100, 30, 0]), 90
    )
    np.testing.assert_allclose(baseline, [0.0, 1.8, 9.0, 0.0])


def test_undefined_metrics_are_nan():
    assert math.isnan(backtest.pct_error(3.0, 0.0))
    assert math.isnan(backtest.spearman(np.array([1.0, 1.0]), np.array([0.0, 2.0])))


# --- the backtest on real data (CDNOW transactions) -------------------------------------------


@pytest.fixture(scope="module")
def cdnow_backtest() -> pd.DataFrame:
    """CDNOW's 1997-98 transactions as customer_backtest_summary: 39 weeks of calibration."""
    raw = pd.read_csv(
        DATASETS / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["customer_code", "index", "date", "quantity", "amount"],
        dtype={"customer_code": str, "date": str},
    )
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    days = raw.groupby(["customer_code", "date"], as_index=False)["amount"].sum()
    days = days[days["amount"] > 0]
    summary = calibration_and_holdout_data(
        days,
        "customer_code",
        "date",
        calibration_period_end=pd.Timestamp("1997-09-30"),
        observation_period_end=pd.Timestamp("1998-06-30"),
        freq="D",
        monetary_value_col="amount",
    )
    frame = pd.DataFrame(
        {
            "customer_code": summary.index,
            "frequency_cal": summary["frequency_cal"].to_numpy(),
            "recency_cal": summary["recency_cal"].to_numpy(),
            "t_cal": summary["T_cal"].to_numpy(),
            "monetary_value_net_sales_cal": summary["monetary_value_cal"].to_numpy(),
            "monetary_value_gross_margin_cal": 0.3 * summary["monetary_value_cal"].to_numpy(),
            "frequency_holdout": summary["frequency_holdout"].to_numpy(),
            "net_sales_holdout": (
                summary["monetary_value_holdout"] * summary["frequency_holdout"]
            ).to_numpy(),
            "duration_holdout": summary["duration_holdout"].to_numpy(),
        }
    )
    frame["gross_margin_holdout"] = 0.3 * frame["net_sales_holdout"]
    return frame


def test_backtest_on_cdnow(cdnow_backtest):
    result = backtest.run_backtest(cdnow_backtest, spend="revenue")
    calibration = backtest.calibration_summary(cdnow_backtest)
    x, tx, t = (calibration[c].astype(float) for c in ("frequency", "recency", "t"))
    # the holdout prediction is lifetimes' own, from the calibration-only fit
    np.testing.assert_allclose(
        result.predictions["bgnbd_purchases"],
        result.bgnbd.model.conditional_expected_number_of_purchases_up_to_time(273.0, x, tx, t),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        result.predictions["baseline_purchases"],
        np.where(t > 0, x / t.where(t > 0, 1), 0) * 273.0,
    )
    assert result.predictions["actual_value"].sum() == pytest.approx(
        cdnow_backtest["net_sales_holdout"].sum()
    )
    assert result.bgnbd.n_customers == len(cdnow_backtest)
    assert result.summary["holdout_days"] == 273.0
    # BG/NBD forecasts the 39-week holdout within ~12% (1,653 vs 1,882 purchase days); the
    # naive rate over-forecasts by ~56% and has a larger MAE
    ours, naive = result.summary["bgnbd"], result.summary["baseline"]
    assert abs(ours["purchases_aggregate_pct_error"]) < 15
    assert naive["purchases_aggregate_pct_error"] > 40
    assert ours["purchases_spearman"] > 0.4
    assert result.summary["beats_baseline"] is True
    assert set(result.metrics["model"]) == {"actual", "bgnbd", "baseline"}


def test_backtest_refuses_missing_columns(cdnow_backtest):
    with pytest.raises(ValueError, match="frequency_holdout"):
        backtest.run_backtest(cdnow_backtest.drop(columns="frequency_holdout"))
    with pytest.raises(ValueError, match="spend must be one of"):
        backtest.run_backtest(cdnow_backtest, spend="units")


# --- the simulator's ground truth -------------------------------------------------------------


def fake_bgnbd() -> cltv.FitResult:
    return cltv.FitResult(
        name="bgnbd", model=None, penalizer=0.0, converged=True, log_likelihood=-1.0,
        n_customers=4, n_rows=4, params={"r": 1.0, "alpha": 100.0, "a": 1.0, "b": 3.0},
    )


def test_truth_comparison_by_hand():
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
    metrics, summary = backtest.compare_with_truth(scores, truth, fake_bgnbd())
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
    assert set(metrics["model"]) == {"bgnbd", "truth"}
    assert not metrics.duplicated(["metric", "model"]).any()


def test_truth_comparison_on_the_simulator():
    """Fit and score a small simulated world, then check the model against its latent truth."""
    as_of = dt.date(2026, 11, 24)
    data = simulate(
        SimulationConfig(customers=3000, seed=7, start_date=dt.date(2023, 9, 1),
                         history_days=1095, as_of=as_of)
    )
    lines = data.order_lines
    summary = summary_data_from_transaction_data(
        lines, "customer_code", "order_date", monetary_value_col="sold_quantity",
        observation_period_end=pd.Timestamp(as_of), freq="D",
    ).reset_index()
    summary = summary.rename(columns={"T": "t", "monetary_value": "monetary_value_gross_margin"})
    summary["has_orders"] = True
    bgnbd = cltv.fit_bgnbd(summary)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cltv.CltvWarning)
        gamma_gamma = cltv.fit_gamma_gamma(summary)
    scores = cltv.score_customers(summary, bgnbd, gamma_gamma)
    metrics, result = backtest.compare_with_truth(scores, data.truth_customers, bgnbd)
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

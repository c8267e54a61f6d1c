"""Model choice on the holdout: metrics by hand (computed by DuckDB over a predictions table),
the candidates on CDNOW (a backtest summary in a real DuckDB warehouse), the log-normal spend
model on data drawn from it, and a refresh whose models cannot be fit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifetimes import ModifiedBetaGeoFitter, ParetoNBDFitter
from scipy.stats import spearmanr

from pipeline.analytics import backtest, model_selection
from pipeline.analytics.cltv import (
    bgnbd,
    gamma_gamma,
    lognormal,
    pareto_nbd,
    scoring,
    spend,
    transactions,
)
from pipeline.analytics.cltv.tables import CompactFits
from tests.analytics.conftest import DATASETS, warehouse_with

# --- metrics by hand, computed by DuckDB over a predictions table ---------------------------------


def predictions_table(tmp_path, frame: pd.DataFrame):
    """``analytics.cltv_backtest_predictions`` holding ``frame`` (customers a, b, ... in order)."""
    frame = frame.copy()
    frame.insert(0, "customer_code", [f"c{i:03d}" for i in range(len(frame))])
    tmp_path.mkdir(exist_ok=True)
    return warehouse_with(tmp_path / "warehouse.duckdb", {model_selection.PREDICTIONS: frame})


def test_poisson_deviance_by_hand(tmp_path):
    def deviance(actual, predicted, name):
        frame = pd.DataFrame({"frequency_holdout": actual, "purchases_m": predicted})
        with predictions_table(tmp_path / name, frame) as tables:
            return model_selection.purchase_metrics(tables, ["m"])["m"][
                "purchases_poisson_deviance"
            ]

    # 2 [0 - (0 - 1)] = 2 and 2 [2 log 2 - (2 - 1)], averaged
    assert deviance([0.0, 2], [1.0, 1], "a") == pytest.approx((2 + 2 * (2 * math.log(2) - 1)) / 2)
    assert deviance([1.0, 3], [1.0, 3], "b") == 0.0
    # a forecast of 0 for a buyer is floored, so it is finite but large
    floor = model_selection.DEVIANCE_FLOOR
    assert deviance([1.0], [0.0], "c") == pytest.approx(2 * (math.log(1 / floor) - (1 - floor)))


def test_purchase_metrics_and_deciles_by_hand(tmp_path):
    actual = np.arange(20, dtype=float)
    frame = pd.DataFrame({"frequency_holdout": actual, "purchases_m": actual + 1})
    with predictions_table(tmp_path, frame) as tables:
        metrics = model_selection.purchase_metrics(tables, ["m"])["m"]
        deciles = model_selection.calibration_deciles(tables, ["m"])
    assert metrics["purchases_rmse"] == 1.0 and metrics["purchases_mae"] == 1.0
    assert metrics["purchases_aggregate_pct_error"] == pytest.approx(100 * 20 / actual.sum())
    assert metrics["purchases_spearman"] == pytest.approx(1.0)
    assert deciles["decile"].tolist() == list(range(1, 11))
    assert (deciles["customers"] == 2).all()
    np.testing.assert_allclose(deciles["actual_mean"], np.arange(10) * 2 + 0.5)
    np.testing.assert_allclose(deciles["predicted_mean"], np.arange(10) * 2 + 1.5)


def test_deciles_break_ties_by_customer_code_and_spearman_averages_tied_ranks(tmp_path):
    # 15 customers, one prediction for all but the last five: who lands in which decile
    # among the tied ones is decided by customer code, as in a stable sort by prediction
    rng = np.random.default_rng(5)
    actual = rng.integers(0, 4, 15).astype(float)
    predicted = np.r_[np.full(10, 0.5), rng.random(5)]
    frame = pd.DataFrame({"frequency_holdout": actual, "purchases_m": predicted})
    with predictions_table(tmp_path, frame) as tables:
        metrics = model_selection.purchase_metrics(tables, ["m"])["m"]
        deciles = model_selection.calibration_deciles(tables, ["m"])
    order = np.argsort(predicted, kind="stable")  # customer codes are in row order
    decile = np.empty(15, dtype=int)
    decile[order] = np.arange(15) * 10 // 15 + 1
    expected = pd.DataFrame({"d": decile, "a": actual}).groupby("d")["a"].agg(["size", "mean"])
    assert deciles["customers"].tolist() == expected["size"].tolist()
    np.testing.assert_allclose(deciles["actual_mean"], expected["mean"], rtol=1e-12)
    assert metrics["purchases_spearman"] == pytest.approx(
        spearmanr(predicted, actual).statistic, rel=1e-12
    )


def test_spend_metrics_weight_by_holdout_days_and_split_one_time_buyers(tmp_path):
    # spend per day: 10, 20, 30; the last did not buy
    frame = pd.DataFrame(
        {
            "frequency_holdout": [2.0, 3.0, 1.0, 0.0],
            "spend_holdout": [20.0, 60.0, 30.0, 0.0],
            "one_time": [True, False, False, True],
            "spend_exact": [10.0, 20.0, 30.0, 99.0],
            "spend_high": [12.0, 20.0, 30.0, 99.0],
        }
    )
    with predictions_table(tmp_path, frame) as tables:
        metrics = model_selection.spend_metrics(tables, ["exact", "high"])
    exact, high = metrics["exact"], metrics["high"]
    assert exact["spend_rmse"] == 0.0 and exact["spend_aggregate_pct_error"] == 0.0
    assert high["spend_rmse"] == pytest.approx(math.sqrt(2 * 4 / 6))
    assert high["spend_rmse_one_time"] == pytest.approx(2.0)
    assert high["spend_rmse_repeat"] == 0.0
    assert high["spend_aggregate_pct_error_one_time"] == pytest.approx(20.0)


# --- the transaction candidates on CDNOW --------------------------------------------------------


def test_pareto_nbd_reproduces_the_published_cdnow_estimates(cdnow):
    fit = transactions.fit_transaction_model(cdnow, pareto_nbd.PARETO_NBD)
    # Fader, Hardie & Lee (2005), "A note on implementing the Pareto/NBD model in MATLAB"
    expected = {"r": 0.5533, "alpha": 10.5776, "s": 0.6061, "beta": 11.6650}
    for name, value in expected.items():
        assert fit.params[name] == pytest.approx(value, rel=2e-3), name
    assert fit.log_likelihood == pytest.approx(-9595.0, abs=0.1)
    assert fit.n_customers == len(cdnow)  # under the sample limit: everyone


def test_pareto_nbd_predictions_equal_lifetimes_own(cdnow):
    fit = transactions.fit_transaction_model(cdnow, pareto_nbd.PARETO_NBD)
    x, tx, t = (cdnow[c].to_numpy(dtype=float) for c in ("frequency", "recency", "t"))
    p_alive, expected = transactions.predictions(
        pareto_nbd.PARETO_NBD, fit.model, x, tx, t, [13.0, 52.0]
    )
    model = ParetoNBDFitter()
    model.params_ = fit.model.params_
    np.testing.assert_allclose(p_alive, model.conditional_probability_alive(x, tx, t), rtol=1e-8)
    for horizon in (13.0, 52.0):
        np.testing.assert_allclose(
            expected[horizon],
            model.conditional_expected_number_of_purchases_up_to_time(horizon, x, tx, t),
            rtol=1e-8,
        )


def test_mbgnbd_compressed_fit_equals_lifetimes_uncompressed(cdnow):
    fit = transactions.fit_transaction_model(cdnow, bgnbd.MBGNBD)
    plain = ModifiedBetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["t"])
    for name in ("r", "alpha", "a", "b"):
        assert fit.params[name] == pytest.approx(plain.params_[name], rel=1e-5), name
    assert fit.n_rows < fit.n_customers


def test_pareto_nbd_sample_is_seeded_and_capped():
    frame = pd.DataFrame({"i": range(6_000), "weights": 2})
    first = transactions.sample_histories(frame, pareto_nbd.PARETO_NBD)
    assert first["weights"].sum() == transactions.SAMPLE_LIMITS[pareto_nbd.PARETO_NBD]
    assert (first["weights"] > 0).all() and (first["weights"] <= 2).all()
    assert first["i"].isin(frame["i"]).all()
    assert first.equals(transactions.sample_histories(frame, pareto_nbd.PARETO_NBD))
    assert transactions.sample_histories(frame, bgnbd.BGNBD) is frame


# --- the log-normal spend model -------------------------------------------------------------------


@pytest.fixture(scope="module")
def lognormal_world():
    """Customers drawn from the model itself: mu_i ~ N(3, 0.5), log spend ~ N(mu_i, 0.8)."""
    rng = np.random.default_rng(3)
    n_customers, mu0, tau2, sigma2 = 4000, 3.0, 0.5, 0.8
    mu = rng.normal(mu0, math.sqrt(tau2), n_customers)
    days = rng.integers(1, 8, n_customers)
    logs = [rng.normal(m, math.sqrt(sigma2), d) for m, d in zip(mu, days)]
    return {
        "n": days.astype(float),
        "mean": np.array([v.mean() for v in logs]),
        "var": np.array([v.var() for v in logs]),
        "total": np.array([np.exp(v).sum() for v in logs]),
        "truth": (mu0, tau2, sigma2),
    }


def test_lognormal_recovers_the_population_it_was_drawn_from(lognormal_world):
    w = lognormal_world
    fit = lognormal.fit_lognormal(w["n"], w["mean"], w["var"])
    mu0, tau2, sigma2 = w["truth"]
    assert fit.mu0 == pytest.approx(mu0, abs=0.05)
    assert fit.tau2 == pytest.approx(tau2, abs=0.08)
    assert fit.sigma2 == pytest.approx(sigma2, abs=0.05)
    # on log-normal data the smearing factor has nothing to correct
    smeared = lognormal.with_smearing(fit, w["n"], w["mean"], w["n"], w["total"])
    assert smeared.smearing == pytest.approx(1.0, abs=0.06)


def test_lognormal_shrinks_a_one_time_buyer_towards_the_population():
    fit = lognormal.LogNormalSpend(mu0=3.0, tau2=0.5, sigma2=1.0, n_customers=2, n_days=2)
    high = np.log(400.0)
    one_day, ten_days = fit.expected_spend(np.array([1.0, 10.0]), np.array([high, high]))
    nobody = fit.expected_spend(np.array([0.0]), np.array([np.nan]))[0]
    assert nobody == pytest.approx(fit.population_mean)
    # one first order of 400 moves the estimate up, ten such days move it further
    assert nobody < one_day < ten_days
    # posterior mean of a one-time buyer: (3 / 0.5 + log 400 / 1) / (1 / 0.5 + 1)
    m, v = (3 / 0.5 + high) / 3, 1 / 3
    assert one_day == pytest.approx(math.exp(m + (1.0 + v) / 2))


def test_lognormal_needs_two_days_from_someone():
    with pytest.raises(ValueError, match="two purchase days"):
        lognormal.fit_lognormal(np.array([1.0, 1.0]), np.array([1.0, 2.0]), np.array([0.0, 0.0]))


# --- the selection on a real backtest (CDNOW transactions) -----------------------------------


@pytest.fixture(scope="module")
def cdnow_backtest() -> pd.DataFrame:
    """CDNOW's transactions as customer_backtest_summary (39-week holdout), log-spend statistics
    and the last-period baseline included, computed with pandas."""
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
    cutoff, end = pd.Timestamp("1997-09-30"), pd.Timestamp("1998-06-30")
    holdout_days = (end - cutoff).days
    cal, hold = days[days["date"] <= cutoff], days[days["date"] > cutoff]
    first = cal.groupby("customer_code")["date"].min()
    cal = cal.join(first.rename("first"), on="customer_code")
    cal["log"] = np.log(cal["amount"])
    repeat = cal[cal["date"] > cal["first"]]
    g = cal.groupby("customer_code")
    frame = (
        pd.DataFrame(
            {
                "frequency_cal": g.size() - 1,
                "recency_cal": (g["date"].max() - first).dt.days,
                "t_cal": (cutoff - first).dt.days,
                "monetary_value_net_sales_cal": repeat.groupby("customer_code")["amount"].mean(),
                "frequency_last_period_cal": repeat[
                    repeat["date"] > cutoff - pd.Timedelta(days=holdout_days)
                ]
                .groupby("customer_code")
                .size(),
                "total_net_sales_cal": g["amount"].sum(),
                "log_net_sales_days_cal": g.size(),
                "log_net_sales_mean_cal": g["log"].mean(),
                "log_net_sales_var_cal": g["log"].var(ddof=0),
                "frequency_holdout": hold.groupby("customer_code").size(),
                "net_sales_holdout": hold.groupby("customer_code")["amount"].sum(),
            }
        )
        .loc[first.index]
        .fillna(
            {
                "monetary_value_net_sales_cal": 0,
                "frequency_last_period_cal": 0,
                "frequency_holdout": 0,
                "net_sales_holdout": 0,
            }
        )
    )
    frame["duration_holdout"] = holdout_days
    frame["monetary_value_gross_margin_cal"] = 0.3 * frame["monetary_value_net_sales_cal"]
    frame["gross_margin_holdout"] = 0.3 * frame["net_sales_holdout"]
    return frame.rename_axis("customer_code").reset_index()


def backtest_warehouse(path, backtest: pd.DataFrame):
    """A DuckDB warehouse whose customer_backtest_summary is ``backtest``."""
    return warehouse_with(path, {model_selection.BACKTEST: backtest})


@pytest.fixture(scope="module")
def cdnow_selection(cdnow_backtest, tmp_path_factory):
    path = tmp_path_factory.mktemp("cdnow") / "warehouse.duckdb"
    with backtest_warehouse(path, cdnow_backtest) as tables:
        yield (
            model_selection.select_models(tables, spend="revenue"),
            tables.query(f"select * from {model_selection.PREDICTIONS} order by customer_code"),
        )


def test_every_candidate_and_baseline_is_scored_on_the_holdout(cdnow_selection, cdnow_backtest):
    cdnow_selection, predictions = cdnow_selection
    selection = cdnow_selection.selection.set_index("model")
    assert set(selection.index) == {
        *transactions.TRANSACTION_MODELS,
        *spend.SPEND_MODELS,
        *model_selection.BASELINES,
    }
    for name in (*transactions.TRANSACTION_MODELS, *model_selection.BASELINES):
        assert np.isfinite(
            selection.loc[name, ["purchases_rmse", "purchases_poisson_deviance"]].astype(float)
        ).all(), name
    actual = cdnow_backtest["frequency_holdout"].to_numpy(dtype=float)
    assert selection.loc["zero", "purchases_rmse"] == pytest.approx(np.sqrt(np.mean(actual**2)))
    # CDNOW is BTYD's home ground: every model beats all three baselines
    assert cdnow_selection.beats_baselines is True
    for name in transactions.TRANSACTION_MODELS:
        assert selection.loc[name, "status"] == "fitted"
        assert abs(selection.loc[name, "purchases_aggregate_pct_error"]) < 20
    # the predictions table: every backtest customer, with each predictor's forecast
    assert predictions["customer_code"].tolist() == sorted(cdnow_backtest["customer_code"])
    assert predictions[model_selection.purchases_column("zero")].eq(0).all()
    assert predictions["frequency_holdout"].sum() == actual.sum()


def test_the_candidates_are_fit_on_the_calibration_period_as_in_memory(
    cdnow_selection, cdnow_backtest
):
    """The fits on the engine's compact rows of the calibration columns are the fits on the
    calibration summary in memory, and so are the holdout predictions of each customer. The
    backtest fits its candidates on worker threads, beside the spend fits: the same bits."""
    cdnow_selection, predictions = cdnow_selection
    calibration = cdnow_backtest.rename(
        columns={
            **backtest.CALIBRATION_COLUMNS,
            **model_selection.CALIBRATION_LOG_COLUMNS,
        }
    ).sort_values("customer_code", ignore_index=True)
    calibration["has_orders"] = True
    for name in transactions.TRANSACTION_MODELS:
        fit = transactions.fit_transaction_model(calibration, name)
        assert cdnow_selection.transaction_fits[name].params == fit.params, name
        expected = model_selection.holdout_purchases(
            fit, calibration, calibration["duration_holdout"].to_numpy()
        )
        np.testing.assert_allclose(
            predictions[model_selection.purchases_column(name)], expected, rtol=1e-12
        )
    for name in spend.SPEND_MODELS:
        fit = spend.fit_spend_model(calibration, name, "revenue")
        for key, value in fit.params.items():
            assert cdnow_selection.spend_fits[name].params[key] == pytest.approx(
                value, rel=1e-10
            ), (name, key)


def test_the_lowest_deviance_wins_and_says_why(cdnow_selection):
    cdnow_selection, _ = cdnow_selection
    selection = cdnow_selection.selection
    fitted = selection[(selection["kind"] == "transaction") & (selection["status"] == "fitted")]
    best = fitted.sort_values("purchases_poisson_deviance").iloc[0]
    assert cdnow_selection.transaction_ranking[0] == best["model"]
    assert best["rank"] == 1 and best["chosen"]
    assert "Poisson deviance" in best["reason"]
    assert selection["chosen"].sum() == 2  # one transaction and one spend model
    assert model_selection.gate(selection) is cdnow_selection.beats_baselines
    deciles = cdnow_selection.deciles
    assert set(deciles["model"]) == {*transactions.TRANSACTION_MODELS, "last_period", "naive"}
    assert (deciles.groupby("model")["customers"].sum() == cdnow_selection.n_customers).all()


def test_spend_candidates_are_ranked_by_holdout_error(cdnow_selection):
    cdnow_selection, _ = cdnow_selection
    spend = cdnow_selection.selection[cdnow_selection.selection["kind"] == "spend"]
    spend = spend.set_index("model")
    assert set(spend["status"]) <= {"fitted", "not eligible"}
    chosen = spend[spend["chosen"].astype(bool)]
    assert (
        len(chosen) == 1
        and chosen["spend_rmse"].iloc[0]
        == spend.loc[spend["status"] == "fitted", "spend_rmse"].min()
    )
    for column in ("spend_rmse_one_time", "spend_rmse_repeat"):
        assert spend[column].notna().all()


def test_a_gamma_gamma_fit_without_population_mean_is_not_eligible(cdnow_backtest, tmp_path):
    # repeat spend redrawn from a Gamma-Gamma with q = 0.6 < 1 (infinite population mean)
    heavy = cdnow_backtest.copy()
    rng = np.random.default_rng(1)
    x = heavy["frequency_cal"].to_numpy()
    nu = rng.gamma(0.6, 1 / 10.0, len(heavy))
    heavy["monetary_value_net_sales_cal"] = [
        rng.gamma(2.0, 1 / n, k).mean() if k else 0.0 for n, k in zip(nu, x)
    ]
    with backtest_warehouse(tmp_path / "warehouse.duckdb", heavy) as tables:
        calibration = model_selection.calibration_relation(tables, "revenue")
        gg = CompactFits(tables, "revenue", source=calibration).spend_model(gamma_gamma.GAMMA_GAMMA)
        assert not gg.population_mean_defined
        selection = model_selection.select_models(
            tables, spend="revenue", transaction_candidates=(bgnbd.BGNBD,)
        ).selection.set_index("model")
    assert selection.loc["gamma_gamma", "status"] == "not eligible"
    assert "q = " in selection.loc["gamma_gamma", "reason"]
    assert selection.loc["lognormal_eb", "chosen"]


# --- when nothing can be fit ---------------------------------------------------------------------


def test_no_candidate_fits_gives_an_unavailable_result_that_says_why():
    # three identical customers: no transaction model has a maximum-likelihood fit
    identical = pd.DataFrame(
        {
            "customer_code": ["a", "b", "c"],
            "has_orders": True,
            "frequency": [1, 1, 1],
            "recency": [5.0] * 3,
            "t": [10.0] * 3,
        }
    )
    chosen = model_selection.fit_chosen(identical, [], [gamma_gamma.GAMMA_GAMMA])
    assert not chosen.available and chosen.transaction is None
    assert "no transaction model" in chosen.reason
    chosen = model_selection.fit_chosen(identical, [bgnbd.BGNBD], [], penalizers=(0.0,))
    assert not chosen.available
    assert "bgnbd failed on the full history" in chosen.reason
    scores = scoring.unavailable_scores(
        pd.concat(
            [identical, pd.DataFrame({"customer_code": ["none"], "has_orders": [False]})],
            ignore_index=True,
        )
    )
    assert list(scores.columns) == list(scoring.SCORE_COLUMNS)
    assert scores.drop(columns=["customer_code", "value_tier"]).isna().all().all()
    assert scores["value_tier"].isna().tolist() == [True, True, True, False]
    assert scores["value_tier"].iloc[3] == "none"


def test_an_empty_backtest_evaluates_nothing_and_keeps_the_default_order(cdnow_backtest, tmp_path):
    with backtest_warehouse(tmp_path / "warehouse.duckdb", cdnow_backtest.iloc[:0]) as tables:
        result = model_selection.select_models(tables, spend="revenue")
        assert tables.row_count(model_selection.PREDICTIONS) == 0
    assert result.transaction_ranking == transactions.TRANSACTION_MODELS
    assert (result.selection["status"] == "not evaluated").all()
    assert result.beats_baselines is None

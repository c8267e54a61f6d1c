"""CLTV fits, the penalizer ladder, scoring, tiers and model artifacts, on real lifetimes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter
from lifetimes.utils import ConvergenceError
from scipy.special import hyp2f1

from pipeline.analytics.cltv import base, bgnbd, gamma_gamma, scoring, storage, transactions
from tests.analytics.conftest import DATASETS


@pytest.fixture(scope="module")
def cdnow_spend() -> pd.DataFrame:
    """The same customers with zbar, the mean spend of their repeat transactions."""
    frame = pd.read_csv(DATASETS / "cdnow_customers_summary_with_transactions.csv")
    frame = frame.rename(
        columns={
            "ID": "customer_code",
            "x": "frequency",
            "t_x": "recency",
            "T": "t",
            "zbar": "monetary_value_net_sales",
        }
    )
    frame["customer_code"] = frame["customer_code"].astype(str)
    frame["has_orders"] = True
    return frame


@pytest.fixture(scope="module")
def fitted(cdnow_spend):
    return transactions.fit_bgnbd(cdnow_spend), gamma_gamma.fit_gamma_gamma(
        cdnow_spend, spend="revenue"
    )


@pytest.fixture(scope="module")
def scored(cdnow_spend, fitted):
    """CDNOW plus two customers without orders, scored."""
    no_orders = pd.DataFrame({"customer_code": ["NONE1", "NONE2"], "has_orders": [False, False]})
    summary = pd.concat([cdnow_spend, no_orders], ignore_index=True)
    bgnbd, gamma_gamma = fitted
    return summary, scoring.score_customers(summary, bgnbd, gamma_gamma, annual_discount_rate=0.10)


# --- the published CDNOW estimates ------------------------------------------------------------


def test_bgnbd_reproduces_the_published_cdnow_estimates(cdnow):
    fit = transactions.fit_bgnbd(cdnow)
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way", table 1
    expected = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}
    for name, value in expected.items():
        assert fit.params[name] == pytest.approx(value, abs=1e-4), name
    # ... and the paper's log-likelihood, which lifetimes' own _negative_log_likelihood_ is not
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert fit.model._negative_log_likelihood_ == pytest.approx(0.2503, abs=1e-4)
    assert (fit.penalizer, fit.converged, fit.n_customers) == (0.0, True, 2357)
    assert fit.n_rows < fit.n_customers  # compressed


def test_gamma_gamma_reproduces_the_published_cdnow_estimates(cdnow_spend):
    fit = gamma_gamma.fit_gamma_gamma(cdnow_spend, spend="revenue")
    # Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves", on the 946 repeat buyers
    assert fit.params["p"] == pytest.approx(6.249, abs=1e-3)
    assert fit.params["q"] == pytest.approx(3.745, abs=1e-3)
    assert fit.params["v"] == pytest.approx(15.448, abs=1e-3)
    assert fit.n_customers == 946
    assert fit.spend_column == "monetary_value_net_sales"
    # Hardie's note 025 reports this correlation as 0.11: independence is plausible
    assert fit.frequency_spend_correlation == pytest.approx(0.11, abs=0.01)
    assert fit.population_mean_defined
    p, q, v = (fit.params[k] for k in "pqv")
    assert fit.population_mean_spend == pytest.approx(p * v / (q - 1))


def test_log_likelihoods_are_totals_in_the_original_units(cdnow_spend, fitted):
    bgnbd, gamma_gamma = fitted
    # lifetimes' fitted objective is a per-customer mean over rescaled data (+ penalty, here 0)
    repeat = cdnow_spend[cdnow_spend["frequency"] > 0]
    assert gamma_gamma.log_likelihood == pytest.approx(
        -gamma_gamma.model._negative_log_likelihood_ * len(repeat), rel=1e-9
    )
    per_customer = transactions.bgnbd_log_likelihood(
        bgnbd.params, cdnow_spend["frequency"], cdnow_spend["recency"], cdnow_spend["t"]
    )
    assert per_customer == pytest.approx(bgnbd.log_likelihood, rel=1e-12)


def test_fits_without_standard_errors_are_lifetimes_fits_bit_for_bit(cdnow_spend):
    """The fitters the pipeline uses skip lifetimes' Hessian, and nothing else: the same
    optimiser run, so the same parameters to the last bit, and no standard errors."""
    f, r, t = cdnow_spend["frequency"], cdnow_spend["recency"], cdnow_spend["t"]
    for ours, theirs in (
        (bgnbd.BetaGeo, BetaGeoFitter),
        (bgnbd.ModifiedBetaGeo, ModifiedBetaGeoFitter),
    ):
        fast, plain = (
            ours(penalizer_coef=0.001).fit(f, r, t),
            theirs(penalizer_coef=0.001).fit(f, r, t),
        )
        assert fast.params_.to_dict() == plain.params_.to_dict(), ours.__name__
        assert fast._negative_log_likelihood_ == plain._negative_log_likelihood_
        assert plain.standard_errors_ is not None and fast.standard_errors_ is None
    repeat = cdnow_spend[cdnow_spend["frequency"] > 0]
    fast = gamma_gamma.GammaGamma().fit(repeat["frequency"], repeat["monetary_value_net_sales"])
    plain = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value_net_sales"])
    assert fast.params_.to_dict() == plain.params_.to_dict()
    assert fast.standard_errors_ is None


def test_bgnbd_expectation_is_lifetimes_bit_for_bit_where_its_direct_form_overflows_too():
    """Ours evaluates lifetimes' alternative hypergeometric form only on the rows that need it;
    long horizons and heavy buyers put some rows there. The predictions' horizons run on
    threads: each the same array as lifetimes' own call."""
    model = BetaGeoFitter()
    model.params_ = pd.Series({"r": 0.8, "alpha": 137.0, "a": 0.87, "b": 2.9})
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.integers(0, 50, 500), [300, 500, 1000, 2000]]).astype(float)
    big_t = np.concatenate([rng.uniform(1, 1000, 500), [1000.0] * 4])
    t_x = np.where(x > 0, np.minimum(big_t, rng.uniform(0, 1000, len(x))), 0.0)
    horizons = [30.0, 365.0, 36500.0]
    _, expected = bgnbd.predictions(model, x, t_x, big_t, horizons)
    with np.errstate(all="ignore"):
        for horizon in horizons:
            theirs = model.conditional_expected_number_of_purchases_up_to_time(
                horizon, x, t_x, big_t
            )
            np.testing.assert_array_equal(expected[horizon], theirs)
        direct = np.log(hyp2f1(0.8 + x, 2.9 + x, 0.87 + 2.9 + x - 1, 36500 / (137 + big_t + 36500)))
    assert np.isinf(direct).sum() >= 2 and np.isfinite(expected[36500.0]).all()


def test_compressed_fit_equals_the_uncompressed_fit(cdnow):
    ours = transactions.fit_bgnbd(cdnow)
    plain = BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["t"])
    for name in ("r", "alpha", "a", "b"):
        assert ours.params[name] == pytest.approx(plain.params_[name], rel=1e-6), name


def test_the_fit_does_not_depend_on_row_order(cdnow):
    shuffled = cdnow.sample(frac=1, random_state=5)
    assert transactions.fit_bgnbd(shuffled).params == transactions.fit_bgnbd(cdnow).params


def test_gamma_gamma_uses_margin_by_default_and_skips_non_positive_spend():
    summary = pd.DataFrame(
        {
            "customer_code": [f"c{i}" for i in range(8)],
            "frequency": [0, 1, 2, 3, 1, 2, 4, 2],
            "recency": [0, 5, 9, 20, 3, 8, 30, 12],
            "t": [40] * 8,
            "monetary_value_gross_margin": [0.0, 10.0, 14.0, 9.0, -3.0, 12.0, 11.0, 20.0],
            "monetary_value_net_sales": [0.0, 30.0, 41.0, 25.0, 5.0, 33.0, 30.0, 52.0],
        }
    )
    margin = gamma_gamma.fit_gamma_gamma(summary)
    revenue = gamma_gamma.fit_gamma_gamma(summary, spend="revenue")
    assert margin.spend_column == "monetary_value_gross_margin"
    assert margin.n_customers == 6  # not the one-time buyer, not the negative margin
    assert revenue.n_customers == 7
    with pytest.raises(ValueError, match="spend must be one of"):
        gamma_gamma.fit_gamma_gamma(summary, spend="profit")


# --- the penalizer ladder ---------------------------------------------------------------------


def tiny_sample() -> pd.DataFrame:
    """Four customers: too few for a reliable fit; whether a given rung converges depends on the
    optimiser and the BLAS kernel, so only the ladder's contract is asserted."""
    return pd.DataFrame(
        {"frequency": [1, 3, 4, 2], "recency": [20.0, 38, 33, 22], "t": [30.0, 59, 49, 58]}
    )


def assert_usable(fit: base.FitResult) -> None:
    low, high = base.PARAMETER_RANGE
    assert fit.converged and all(low <= v <= high for v in fit.params.values())
    assert np.isfinite(fit.log_likelihood)


@pytest.mark.parametrize("name", transactions.TRANSACTION_MODELS)
def test_the_ladder_ends_in_a_usable_fit_or_lists_every_attempt(name):
    try:
        fit = transactions.fit_transaction_model(tiny_sample(), name)
    except base.ModelFitError as error:
        assert error.model == name
        assert [a.penalizer for a in error.attempts] == list(base.DEFAULT_PENALIZERS)
        assert all(a.error for a in error.attempts)
        return
    # the rungs tried are a prefix of the ladder; every one but the last failed, with a reason
    tried = [a.penalizer for a in fit.attempts]
    assert tried == list(base.DEFAULT_PENALIZERS[: len(tried)])
    assert all(a.error for a in fit.attempts[:-1]) and fit.attempts[-1].error is None
    assert fit.penalizer == tried[-1]
    assert_usable(fit)
    histories = base.compress(tiny_sample(), base.SUMMARY_COLUMNS)
    predicted = scoring.purchase_predictions(fit, histories)
    assert np.isfinite(predicted.to_numpy()).all()
    assert predicted["p_alive"].between(0, 1).all()


def test_the_ladder_climbs_past_a_failing_rung():
    rows = base.compress(tiny_sample(), base.SUMMARY_COLUMNS)

    def attempt(penalizer):
        # a rung that fails for a reason of ours, whatever the optimiser does
        if penalizer == 0.0:
            return None, "refused"
        model = BetaGeoFitter(penalizer_coef=penalizer).fit(
            rows["frequency"], rows["recency"], rows["t"], weights=rows["weights"]
        )
        return model, None

    model, penalizer, attempts = base.ladder("bgnbd", (0.0, 0.1, 1.0), attempt)
    assert penalizer == 0.1 and isinstance(model, BetaGeoFitter)
    assert attempts == [base.FitAttempt(0.0, "refused"), base.FitAttempt(0.1, None)]


def test_a_fit_that_runs_off_to_a_boundary_is_not_accepted():
    # the validator refuses parameters outside the range whatever produced them ...
    low, high = base.PARAMETER_RANGE
    assert "ran off to a boundary" in base.invalid_params(
        {"r": 1.0, "alpha": 2.0 * high, "a": 1.0, "b": 1.0}, -10.0
    )
    assert "ran off to a boundary" in base.invalid_params(
        {"r": 1.0, "alpha": 5.0, "a": low / 2, "b": 1.0}, -10.0
    )
    assert base.invalid_params({"r": 1.0, "alpha": 5.0, "a": 1.0, "b": 1.0}, -10.0) is None
    # ... so on three identical customers, where the likelihood has no maximum, the
    # unpenalized rung never yields a fit: it fails one way or another, and says why
    identical = pd.DataFrame({"frequency": [1, 1, 1], "recency": [5.0] * 3, "t": [10.0] * 3})
    with pytest.raises(base.ModelFitError) as raised:
        transactions.fit_bgnbd(identical, penalizers=(0.0,))
    assert [a.penalizer for a in raised.value.attempts] == [0.0]
    assert raised.value.attempts[0].error


def test_gamma_gamma_ladder_climbs_too():
    two = pd.DataFrame(
        {
            "frequency": [1, 1],
            "recency": [5, 5],
            "t": [10, 10],
            "monetary_value_gross_margin": [10.0, 20.0],
        }
    )
    with pytest.raises(ConvergenceError):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            GammaGammaFitter().fit(two["frequency"], two["monetary_value_gross_margin"])
    fit = gamma_gamma.fit_gamma_gamma(two)
    assert fit.penalizer == 0.001 and fit.attempts[0].error is not None


def test_when_every_rung_fails_a_clear_error_names_the_model_and_the_penalizers():
    identical = pd.DataFrame({"frequency": [1, 1, 1], "recency": [5.0] * 3, "t": [10.0] * 3})
    with pytest.raises(base.ModelFitError) as raised:
        transactions.fit_bgnbd(identical, penalizers=(0.0, 0.01, 0.1))
    error = raised.value
    assert error.model == "bgnbd"
    assert [a.penalizer for a in error.attempts] == [0.0, 0.01, 0.1]
    assert all(a.error for a in error.attempts)
    assert "bgnbd" in str(error) and "[0.0, 0.01, 0.1]" in str(error)


def test_bad_input_is_refused_before_the_ladder():
    bad = pd.DataFrame(
        {
            "customer_code": ["x", "y"],
            "frequency": [1, 0],
            "recency": [50.0, 0.0],
            "t": [40.0, 10.0],
        }
    )
    with pytest.raises(ValueError, match="'recency' must be <= 't'.*'x'"):
        transactions.fit_bgnbd(bad)
    with pytest.raises(ValueError, match="no customers with orders"):
        transactions.fit_bgnbd(
            pd.DataFrame({"frequency": [np.nan], "recency": [np.nan], "t": [np.nan]})
        )


# --- Gamma-Gamma with an infinite population mean -----------------------------------------------


@pytest.fixture(scope="module")
def heavy_tailed() -> pd.DataFrame:
    """Spend drawn from a Gamma-Gamma with q = 0.6 (< 1: the population mean is infinite)."""
    rng = np.random.default_rng(1)
    n, p, q, gamma = 3000, 2.0, 0.6, 10.0
    nu = rng.gamma(q, 1 / gamma, n)
    x = rng.integers(1, 6, n)
    m = np.array([rng.gamma(p, 1 / nu[i], x[i]).mean() for i in range(n)])
    frame = pd.DataFrame(
        {
            "customer_code": [f"c{i}" for i in range(n)],
            "frequency": x,
            "recency": x * 5,
            "t": 40,
            "monetary_value_gross_margin": m,
        }
    )
    one_timers = pd.DataFrame(
        {
            "customer_code": ["o1", "o2"],
            "frequency": [0, 0],
            "recency": [0, 0],
            "t": [40, 12],
            "monetary_value_gross_margin": [0.0, 0.0],
        }
    )
    return pd.concat([frame, one_timers], ignore_index=True)


def test_infinite_population_mean_falls_back_without_a_warning(heavy_tailed):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a reason to choose, not a warning
        fit = gamma_gamma.fit_gamma_gamma(heavy_tailed)
    assert fit.params["q"] < 1 and not fit.population_mean_defined
    repeat = heavy_tailed[heavy_tailed["frequency"] > 0]
    assert fit.population_mean_spend == pytest.approx(repeat["monetary_value_gross_margin"].mean())
    # repeat customers keep lifetimes' conditional mean, which is proper while p + q > 1
    x = repeat["frequency"].to_numpy(dtype=float)
    m = repeat["monetary_value_gross_margin"].to_numpy()
    ours = gamma_gamma.expected_spend(fit, x, m)
    lifetimes_spend = fit.model.conditional_expected_average_profit(x, m)
    np.testing.assert_allclose(ours, lifetimes_spend, rtol=1e-12)
    assert (ours > 0).all()
    # customers without repeat purchases get the fallback, not lifetimes' negative number
    assert fit.model.conditional_expected_average_profit(0, 0) < 0
    one_timer = gamma_gamma.expected_spend(fit, np.array([0.0]), np.array([0.0]))[0]
    assert one_timer == fit.population_mean_spend


def test_infinite_population_mean_can_be_refused(heavy_tailed):
    with pytest.raises(base.ModelFitError, match="population mean spend is infinite"):
        gamma_gamma.fit_gamma_gamma(heavy_tailed, undefined_mean="raise")


# --- scoring ----------------------------------------------------------------------------------


def test_scores_match_lifetimes(scored, fitted):
    summary, scores = scored
    bgnbd, gamma_gamma = fitted
    buyers = summary[summary["has_orders"]]
    ours = scores[summary["has_orders"].to_numpy()]
    x, tx, t = (buyers[c].astype(float) for c in ("frequency", "recency", "t"))
    m = buyers["monetary_value_net_sales"]
    bg, gg = bgnbd.model, gamma_gamma.model
    np.testing.assert_allclose(
        ours["p_alive"], bg.conditional_probability_alive(x, tx, t), rtol=1e-12
    )
    for days in (90, 365):
        np.testing.assert_allclose(
            ours[f"expected_purchases_{days}d"],
            bg.conditional_expected_number_of_purchases_up_to_time(days, x, tx, t),
            rtol=1e-12,
        )
    # lifetimes' conditional expectation is the population mean for customers without repeats
    np.testing.assert_allclose(
        ours["expected_order_value"], gg.conditional_expected_average_profit(x, m), rtol=1e-12
    )
    monthly = (1.10) ** (1 / 12) - 1
    expected_clv = gg.customer_lifetime_value(
        bg, x, tx, t, m, time=12, discount_rate=monthly, freq="D"
    )
    np.testing.assert_allclose(ours["clv_12m"], expected_clv, rtol=1e-10)
    assert ours["clv_12m"].gt(0).all()


def test_scores_keep_row_order_and_mark_customers_without_orders(scored):
    summary, scores = scored
    assert list(scores.columns) == list(scoring.SCORE_COLUMNS)
    assert scores["customer_code"].tolist() == summary["customer_code"].tolist()
    none = scores[scores["customer_code"].isin(["NONE1", "NONE2"])]
    assert (none["value_tier"] == "none").all()
    assert none.drop(columns=["customer_code", "value_tier"]).isna().all().all()
    assert scores.loc[scores["value_tier"] != "none", "clv_12m"].notna().all()


def test_tiers_of_the_scored_customers_follow_the_cut_points(scored):
    _, scores = scored
    buyers = scores[scores["value_tier"] != "none"]
    shares = buyers["value_tier"].value_counts(normalize=True)
    assert shares["high"] == pytest.approx(0.2, abs=0.01)
    assert shares["medium"] == pytest.approx(0.3, abs=0.01)
    assert (
        buyers.groupby("value_tier")["clv_12m"].min()["high"]
        >= buyers.groupby("value_tier")["clv_12m"].max()["medium"]
    )


def test_discount_rate_is_compounded_monthly():
    assert (1 + scoring.monthly_discount_rate(0.10)) ** 12 == pytest.approx(1.10)
    assert scoring.monthly_discount_rate(0.0) == 0.0


# --- tiers ------------------------------------------------------------------------------------


def test_tiers_cut_at_20_and_50_percent():
    clv = pd.Series([10.0, 9, 8, 7, 6, 5, 4, 3, 2, 1])
    assert scoring.value_tiers(clv).tolist() == ["high"] * 2 + ["medium"] * 3 + ["low"] * 5


def test_tied_clvs_share_a_tier_whatever_the_order():
    clv = pd.Series([5.0, 5, 5, 1, 1, 1, 1, 1, 1, 1])
    tiers = scoring.value_tiers(clv)
    # nobody is strictly above the three 5s: all high, although they are 30%; 30% are
    # strictly above the 1s: all medium, so there is no low tier here
    assert tiers.tolist() == ["high"] * 3 + ["medium"] * 7
    shuffled = clv.sample(frac=1, random_state=2)
    assert scoring.value_tiers(shuffled).sort_index().tolist() == tiers.tolist()


def test_null_clv_is_tier_none_and_does_not_count():
    clv = pd.Series([np.nan, 3.0, 2.0, 1.0, 0.5, 0.1, np.nan])
    expected = ["none", "high", "medium", "medium", "low", "low", "none"]
    assert scoring.value_tiers(clv).tolist() == expected
    assert scoring.value_tiers(pd.Series([np.nan, np.nan])).tolist() == ["none", "none"]


# --- model outputs as data --------------------------------------------------------------------


def test_model_parameters_have_one_row_per_model_and_a_fixed_schema(fitted):
    bgnbd, gamma_gamma = fitted
    first = storage.model_parameters([bgnbd, gamma_gamma], as_of_date="2026-11-09")
    second = storage.model_parameters([bgnbd, gamma_gamma], as_of_date="2026-11-24")
    assert list(first.columns) == ["as_of_date", *storage.PARAMETER_COLUMNS]
    assert first["model"].tolist() == ["bgnbd", "gamma_gamma"]
    both = pd.concat([first, second], ignore_index=True)
    assert (both.dtypes == first.dtypes).all()  # appending keeps the schema
    bg_row, gg_row = first.iloc[0], first.iloc[1]
    assert bg_row["r"] == bgnbd.params["r"] and pd.isna(bg_row["p"])
    assert gg_row["q"] == gamma_gamma.params["q"] and pd.isna(gg_row["alpha"])
    assert gg_row["spend_column"] == "monetary_value_net_sales"
    assert bool(bg_row["converged"]) and bg_row["time_unit"] == "day"
    assert bg_row["log_likelihood"] == bgnbd.log_likelihood


def test_models_round_trip_through_artifacts(tmp_path, fitted, cdnow_spend):
    bgnbd, gamma_gamma = fitted
    written = storage.save_models([bgnbd, gamma_gamma], tmp_path / "models")
    assert sorted(p.name for p in written) == [
        "bgnbd.json",
        "bgnbd.pkl",
        "gamma_gamma.json",
        "gamma_gamma.pkl",
    ]
    loaded = storage.load_models(tmp_path / "models")
    assert loaded["bgnbd"].params == bgnbd.params
    assert loaded["gamma_gamma"].population_mean_spend == gamma_gamma.population_mean_spend
    assert loaded["bgnbd"].attempts == bgnbd.attempts
    summary = cdnow_spend.head(50)
    again = scoring.score_customers(summary, loaded["bgnbd"], loaded["gamma_gamma"])
    pd.testing.assert_frame_equal(again, scoring.score_customers(summary, bgnbd, gamma_gamma))

"""The CLTV fit and scoring over a real DuckDB table store (``cltv.tables``): the fits on the
engine's compact rows equal the fits on every customer, and scoring batch by batch equals
scoring the whole table. Batches are made small (2,048 rows) so the CDNOW customers span two."""

from __future__ import annotations

import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline import warehouse
from pipeline.analytics.cltv import gamma_gamma, lognormal, scoring, transactions
from pipeline.analytics.cltv import tables as cltv_tables
from pipeline.analytics.cltv.bgnbd import BGNBD
from pipeline.engine import duckdb_tables
from pipeline.engine.duckdb_tables import DuckDBTables
from tests.analytics.conftest import DATASETS

with warnings.catch_warnings():
    from lifetimes import BetaGeoFitter, GammaGammaFitter

AS_OF = pd.Timestamp("2026-11-24")


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    """CDNOW's customers (time in weeks) as customer_summary: spend from their repeat
    transactions' mean, log-spend statistics drawn around it, and three customers without orders."""
    frame = pd.read_csv(DATASETS / "cdnow_customers_summary_with_transactions.csv")
    rng = np.random.default_rng(11)
    days = frame["x"].to_numpy() + 1
    spend = np.where(frame["x"] > 0, frame["zbar"], rng.lognormal(3.0, 0.5, len(frame)))
    log_mean = np.log(spend) + rng.normal(0, 0.1, len(frame))
    log_var = np.where(days > 1, rng.gamma(2.0, 0.2, len(frame)), 0.0)
    buyers = pd.DataFrame(
        {
            "customer_code": frame["ID"].astype(str).str.zfill(5),
            "has_orders": True,
            "frequency": frame["x"].astype("int64"),
            "recency": frame["t_x"],
            "t": frame["T"],
            "monetary_value_net_sales": np.where(frame["x"] > 0, frame["zbar"], 0.0),
            "monetary_value_gross_margin": np.where(frame["x"] > 0, frame["zbar"] * 0.3, 0.0),
            "log_net_sales_days": days,
            "log_net_sales_mean": log_mean,
            "log_net_sales_var": log_var,
            "log_gross_margin_days": days,
            "log_gross_margin_mean": log_mean + np.log(0.3),
            "log_gross_margin_var": log_var,
            "total_net_sales": days * spend,
            "total_gross_margin": days * spend * 0.3,
        }
    )
    nobody = pd.DataFrame({"customer_code": ["N1", "N2", "N3"], "has_orders": False})
    return pd.concat([buyers, nobody], ignore_index=True).sort_values(
        "customer_code", ignore_index=True
    )


@pytest.fixture
def tables(tmp_path, summary, monkeypatch):
    monkeypatch.setattr(duckdb_tables, "BATCH_VECTORS", 1)  # 2,048 rows a batch
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        warehouse.replace_tables(conn, "intermediate", {"customer_summary": summary})
        yield DuckDBTables(conn)


def test_bgnbd_on_the_engines_grouped_rows_equals_lifetimes_on_every_customer(tables, summary):
    fit = cltv_tables.CompactFits(tables).transaction(BGNBD)
    buyers = summary[summary["has_orders"]]
    plain = BetaGeoFitter().fit(buyers["frequency"], buyers["recency"], buyers["t"])
    for name in ("r", "alpha", "a", "b"):
        assert fit.params[name] == pytest.approx(plain.params_[name], rel=1e-5), name
    assert fit.n_customers == len(buyers) and fit.n_rows < fit.n_customers
    # the same rows as the in-memory compression, so the same fit
    assert fit.params == transactions.fit_transaction_model(summary, BGNBD).params


def test_gamma_gamma_on_the_engines_grouped_pairs_equals_lifetimes(tables, summary):
    fit = cltv_tables.CompactFits(tables, spend="revenue").spend_model(gamma_gamma.GAMMA_GAMMA)
    repeat = summary[summary["has_orders"] & (summary["frequency"] > 0)]
    plain = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value_net_sales"])
    for name in ("p", "q", "v"):
        assert fit.params[name] == pytest.approx(plain.params_[name], rel=1e-5), name
    assert fit.n_customers == len(repeat)
    correlation = np.corrcoef(repeat["frequency"], repeat["monetary_value_net_sales"])[0, 1]
    assert fit.frequency_spend_correlation == pytest.approx(correlation, rel=1e-9)


def test_lognormal_from_the_engines_sums_equals_the_fit_on_every_customer(tables, summary):
    fit = cltv_tables.CompactFits(tables).spend_model(lognormal.LOGNORMAL)
    whole = lognormal.fit_lognormal_spend(summary, "margin")
    for name, value in whole.params.items():
        assert fit.params[name] == pytest.approx(value, rel=1e-10), name
    assert fit.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-10)
    assert fit.n_customers == whole.n_customers == int(summary["has_orders"].sum())
    # the per-customer arrays give the same moments as the sums per number of days
    buyers = summary[summary["has_orders"]]
    n, mean, var = lognormal.statistics(buyers, "margin")
    direct = lognormal.fit_lognormal(n, mean, var)
    # its compact rows: one of sums per number of days with positive spend, not per customer
    assert fit.n_rows == whole.n_rows == len(np.unique(n[n > 0])) < fit.n_customers
    assert direct.sigma2 == pytest.approx(np.sum(n[n >= 2] * var[n >= 2]) / np.sum(n[n >= 2] - 1))
    assert (
        abs(np.corrcoef(buyers["frequency"], mean)[0, 1] - fit.frequency_spend_correlation) < 1e-9
    )


def test_scoring_batch_by_batch_equals_scoring_the_whole_table(tables, summary):
    fits = cltv_tables.CompactFits(tables)
    transaction, spend = fits.transaction(BGNBD), fits.spend_model(lognormal.LOGNORMAL)
    cltv_tables.write_scores(tables, transaction, spend, 0.10, AS_OF)
    written = tables.read_table("analytics", "customer_cltv")
    whole = scoring.score_customers(summary, transaction, spend, 0.10)
    assert len(summary) > 2048  # more than one batch
    assert written["customer_code"].tolist() == whole["customer_code"].tolist()
    assert (written["as_of_date"] == AS_OF).all()
    for column in scoring.SCORE_COLUMNS[1:-1]:
        np.testing.assert_allclose(written[column], whole[column], rtol=1e-12, err_msg=column)
    assert written["value_tier"].tolist() == whole["value_tier"].tolist()
    assert cltv_tables.score_summary(tables)["rows"] == len(summary)


def test_a_model_that_cannot_score_leaves_no_partial_tiers(tables, summary):
    fits = cltv_tables.CompactFits(tables)
    transaction, spend = fits.transaction(BGNBD), fits.spend_model(lognormal.LOGNORMAL)
    broken = transactions.load(BGNBD, {**transaction.params, "alpha": float("nan")})
    broken_fit = type(transaction)(**{**transaction.__dict__, "model": broken})
    with pytest.raises(FloatingPointError, match="not finite for"):
        cltv_tables.write_scores(tables, broken_fit, spend, 0.10, AS_OF)
    cltv_tables.write_unavailable(tables, AS_OF)
    written = tables.read_table("analytics", "customer_cltv")
    assert written["clv_12m"].isna().all()
    tiers = written.set_index("customer_code")["value_tier"]
    assert (tiers[["N1", "N2", "N3"]] == "none").all()
    assert tiers.drop(["N1", "N2", "N3"]).isna().all()


@pytest.mark.parametrize("customers", [1, 4, 5, 10, 997, 2000])
def test_tier_bounds_give_the_tiers_of_the_whole_ranking(customers):
    rng = np.random.default_rng(customers)
    # few distinct values: ties at the cuts
    clv = pd.Series(rng.integers(0, max(customers // 3, 2), customers).astype(float))
    clv[rng.random(customers) < 0.1] = np.nan
    known = clv.dropna().sort_values(ascending=False).to_numpy()
    bounds = {
        tier: known[rank - 1] if rank else np.inf
        for tier, rank in scoring.tier_cuts(len(known)).items()
    }
    batch = pd.DataFrame({"clv_12m": clv, "value_tier": np.where(clv.isna(), "none", None)})
    tiers = scoring.assign_tiers(batch, bounds)["value_tier"]
    assert tiers.tolist() == scoring.value_tiers(clv).tolist()

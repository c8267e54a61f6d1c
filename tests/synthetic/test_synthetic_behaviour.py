"""The realised data follow the latent process the simulator says it uses."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.synthetic.behaviour import simulate_orders
from pipeline.synthetic.customers import draw_world
from pipeline.synthetic.dates import SEASONALITY, day_number
from pipeline.synthetic.personas import PERSONAS
from pipeline.synthetic.products import CATEGORIES, CATEGORY_KEYS, build_catalogue


def seasonal_exposure(acquired: pd.Series, end: dt.date) -> np.ndarray:
    """Rate-weighted days from the day after acquisition to ``end``: sum of the month factors."""
    days = pd.date_range(acquired.min(), end)
    cumulative = np.r_[0.0, np.cumsum(SEASONALITY[days.month - 1])]
    first = (acquired - days[0]).dt.days.to_numpy() + 1  # index of the day after acquisition
    return cumulative[len(days)] - cumulative[np.minimum(first, len(days))]


def repeats_at(data, customers: pd.Index) -> pd.Series:
    orders = data.order_lines.groupby("customer_code")["order_id"].nunique()
    return (orders - 1).reindex(customers)


def test_active_customers_buy_at_their_latent_rate(big_data, config):
    """Given the latent lambda and p, a customer still alive after exposure E made on average
    lambda * (1 - p) * E repeat purchases (Poisson counts thinned by survival): check the total."""
    truth = big_data.truth_customers.set_index("customer_code")
    alive = truth[truth["alive_at_as_of"]]
    exposure = seasonal_exposure(alive["acquisition_date"], config.as_of)
    expected = (alive["purchase_rate"] * (1 - alive["dropout_prob"]) * exposure).sum()
    realised = repeats_at(big_data, alive.index).sum()
    assert realised > 2000
    assert realised == pytest.approx(expected, rel=0.06)


def test_without_dropout_repeats_follow_the_poisson_rate(config):
    """The monthly process alone: with dropout switched off, repeats = sum(lambda x exposure)."""
    world = draw_world(4000, config.seed, config.start_date, config.history_days)
    world = dataclasses.replace(world, dropout_after=np.full(len(world), 10**9))
    catalogue = build_catalogue(np.random.default_rng([config.seed, 2]), 2024)
    end = dt.date(2025, 12, 31)  # a month end: the simulated months stop exactly there
    book = simulate_orders(
        world, catalogue, config.seed, day_number(config.start_date), day_number(end)
    )
    acquired = world.acquisition_day <= day_number(end)
    exposure = seasonal_exposure(
        pd.Series(world.acquisition_day[acquired].astype("datetime64[D]")), end
    )
    expected = (world.purchase_rate[acquired] * exposure).sum()
    assert book.repeats.sum() == pytest.approx(expected, rel=0.05)
    assert (book.dropout_day == -1).all()


def test_dropout_bookkeeping(data, config):
    """Dead customers made exactly D repeat purchases, the last on their dropout date."""
    truth = data.truth_customers.set_index("customer_code")
    repeats = repeats_at(data, truth.index)
    dead = ~truth["alive_at_as_of"]
    assert dead.sum() > 100 and (~dead).sum() > 100
    assert (repeats[dead] == truth.loc[dead, "repeat_purchases_until_dropout"]).all()
    assert (repeats[~dead] < truth.loc[~dead, "repeat_purchases_until_dropout"]).all()
    last = data.order_lines.groupby("customer_code")["order_date"].max()
    assert (last[dead[dead].index] == truth.loc[dead, "dropout_date"]).all()
    # Dropout after the as-of date shows in the truth window, with a last future order on it.
    later = truth["dropout_date"].notna() & truth["alive_at_as_of"]
    assert (truth.loc[later, "dropout_date"] > pd.Timestamp(config.as_of)).all()
    future_last = data.future_order_lines.groupby("customer_code")["order_date"].max()
    assert (future_last.reindex(truth.index[later]) == truth.loc[later, "dropout_date"]).all()


def test_latent_variables_follow_the_persona_priors(big_data):
    truth = big_data.truth_customers
    shares = truth["persona"].value_counts(normalize=True)
    for persona in PERSONAS:
        group = truth[truth["persona"] == persona.name]
        assert shares[persona.name] == pytest.approx(persona.share, abs=0.03)
        assert group["purchase_rate"].mean() == pytest.approx(persona.r / persona.alpha, rel=0.15)
        assert group["dropout_prob"].mean() == pytest.approx(
            persona.a / (persona.a + persona.b), abs=0.04
        )
        assert group["mean_quantity_multiplier"].mean() == pytest.approx(1.0, abs=0.12)
        assert (group["repeat_purchases_until_dropout"] >= 1).all()


def test_each_persona_buys_its_category_mix(big_data):
    """First lines of orders (never dropped as duplicates) follow the persona's weights."""
    keys = {(c.segment, c.name): c.key for c in CATEGORIES}
    products = big_data.products.assign(
        key=[
            keys[(s, n)]
            for s, n in zip(
                big_data.products["segment"], big_data.products["category"], strict=True
            )
        ]
    )
    lines = big_data.order_lines[big_data.order_lines["line_number"] == 1]
    lines = lines.merge(products[["product_code", "key"]], on="product_code").merge(
        big_data.truth_customers[["customer_code", "persona"]], on="customer_code"
    )
    for persona in PERSONAS:
        observed = lines.loc[lines["persona"] == persona.name, "key"].value_counts(normalize=True)
        weights = dict(zip(CATEGORY_KEYS, persona.category_vector(), strict=True))
        assert set(observed.index) <= {k for k, w in weights.items() if w > 0}, persona.name
        for key, weight in weights.items():
            assert observed.get(key, 0.0) == pytest.approx(weight, abs=0.05), (persona.name, key)


def test_quantities(big_data):
    lines = big_data.order_lines.merge(
        big_data.truth_customers[["customer_code", "persona"]], on="customer_code"
    ).merge(big_data.products[["product_code", "division", "segment"]], on="product_code")
    assert (lines["sold_quantity"] >= 1).all()
    consumers = lines[lines["persona"] != "bulk_reseller"]
    resellers = lines[lines["persona"] == "bulk_reseller"]
    assert consumers["sold_quantity"].median() == 1
    assert consumers["sold_quantity"].quantile(0.9) <= 4
    assert resellers["sold_quantity"].mean() > 5 * consumers["sold_quantity"].mean()
    accessories = resellers[resellers["segment"] == "Accessories"]["sold_quantity"].mean()
    pcs = resellers[resellers["division"] == "PC"]["sold_quantity"].mean()
    assert accessories > 3 * pcs


def test_population_is_fit_for_bgnbd(data):
    """At the pipeline's defaults: a few order lines per customer, many one-time buyers, and a
    good share of repeat buyers."""
    lines_per_customer = len(data.order_lines) / len(data.customers)
    assert 3 <= lines_per_customer <= 8
    frequency = data.order_lines.groupby("customer_code")["order_date"].nunique() - 1
    assert 0.15 <= (frequency == 0).mean() <= 0.6
    assert (frequency >= 3).mean() >= 0.1
    assert data.truth_customers["alive_at_as_of"].mean() == pytest.approx(0.65, abs=0.15)


def test_seasonality_and_growth(big_data):
    orders = big_data.order_lines.drop_duplicates("order_id")
    monthly = orders.groupby(orders["order_date"].dt.to_period("M")).size()
    # December beats the January and February after it despite the growth of the base.
    december = monthly[pd.Period("2025-12")]
    assert december > 1.3 * monthly[pd.Period("2026-01")]
    assert december > 1.3 * monthly[pd.Period("2026-02")]
    assert SEASONALITY.mean() == pytest.approx(1.0)
    acquired = big_data.truth_customers["acquisition_date"]
    middle = acquired.min() + (acquired.max() - acquired.min()) / 2
    assert (acquired > middle).sum() > 1.1 * (acquired <= middle).sum()


def test_prices_costs_and_discounts_look_like_atliq(data):
    costs = data.manufacturing_costs.rename(columns={"cost_year": "fiscal_year"}).merge(
        data.gross_prices, on=["product_code", "fiscal_year"]
    )
    ratio = costs["manufacturing_cost"] / costs["gross_price"]
    assert ratio.between(0.2858 - 1e-3, 0.3125 + 1e-3).all()
    assert ratio.mean() == pytest.approx(0.299, abs=0.005)

    prices = data.gross_prices.merge(data.products, on="product_code")
    by_category = prices.groupby("category")["gross_price"].agg(["min", "max"])
    assert by_category.loc["Mouse", "min"] < 6 and by_category.loc["Mouse", "max"] < 40
    assert by_category.loc["USB Flash Drives", "max"] < 8
    assert by_category.loc["Gaming Laptop", "min"] > 400
    assert by_category.loc["Personal Desktop", "min"] > 550
    # Prices drift from year to year.
    wide = data.gross_prices.pivot(
        index="product_code", columns="fiscal_year", values="gross_price"
    )
    assert (wide.diff(axis=1).iloc[:, 1:] != 0).to_numpy().mean() > 0.9

    pct = data.pre_invoice_deductions.merge(data.customers, on="customer_code")
    assert pct["pre_invoice_discount_pct"].between(0.0, 0.35).all()
    direct_bm = pct[(pct["platform"] == "Brick & Mortar") & (pct["channel"] == "Direct")]
    assert direct_bm["pre_invoice_discount_pct"].between(0.05, 0.11).all()
    distributors = pct[pct["channel"] == "Distributor"]
    assert distributors["pre_invoice_discount_pct"].between(0.18, 0.31).all()

"""The simulated tables honour the contract: columns, keys, foreign keys, enumerations, dates."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.synthetic.geography import MARKETS

RAW_COLUMNS = {
    "customers": [
        "customer_code",
        "customer",
        "platform",
        "channel",
        "market",
        "sub_zone",
        "region",
        "city",
        "email",
        "occupation",
        "date_of_birth",
    ],
    "products": ["product_code", "division", "segment", "category", "product", "variant"],
    "gross_prices": ["product_code", "fiscal_year", "gross_price"],
    "manufacturing_costs": ["product_code", "cost_year", "manufacturing_cost"],
    "pre_invoice_deductions": ["customer_code", "fiscal_year", "pre_invoice_discount_pct"],
    "order_lines": [
        "order_id",
        "line_number",
        "order_date",
        "customer_code",
        "product_code",
        "sold_quantity",
    ],
}
TRUTH_COLUMNS = {
    "customers": [
        "customer_code",
        "persona",
        "acquisition_date",
        "purchase_rate",
        "dropout_prob",
        "repeat_purchases_until_dropout",
        "dropout_date",
        "alive_at_as_of",
        "mean_quantity_multiplier",
        "future_orders",
        "future_net_sales",
        "future_gross_margin",
    ],
    "future_order_lines": RAW_COLUMNS["order_lines"] + ["net_sales_amount", "gross_margin_amount"],
}


def fiscal_year(dates: pd.Series) -> pd.Series:
    """AtliQ fiscal year, computed independently of the simulator: YEAR(date + 4 months)."""
    return (dates + pd.DateOffset(months=4)).dt.year


def test_tables_have_the_contract_columns(data):
    tables = data.tables()
    assert {k: list(v.columns) for k, v in tables["raw"].items()} == RAW_COLUMNS
    assert {k: list(v.columns) for k, v in tables["truth"].items()} == TRUTH_COLUMNS


def test_column_types(data):
    for frame, column in [
        (data.customers, "date_of_birth"),
        (data.order_lines, "order_date"),
        (data.truth_customers, "acquisition_date"),
        (data.truth_customers, "dropout_date"),
        (data.future_order_lines, "order_date"),
    ]:
        assert pd.api.types.is_datetime64_any_dtype(frame[column]), column
        values = frame[column].dropna()
        assert (values == values.dt.normalize()).all(), f"{column} is not at midnight"
    for name, frame in {**data.tables()["raw"], **data.tables()["truth"]}.items():
        for column in frame.columns:
            assert frame[column].dtype != object, (name, column)
    for column in ["line_number", "sold_quantity"]:
        assert pd.api.types.is_integer_dtype(data.order_lines[column])
    assert pd.api.types.is_integer_dtype(data.gross_prices["fiscal_year"])
    assert pd.api.types.is_integer_dtype(data.manufacturing_costs["cost_year"])
    assert data.truth_customers["alive_at_as_of"].dtype == bool
    for frame, column in [
        (data.gross_prices, "gross_price"),
        (data.manufacturing_costs, "manufacturing_cost"),
        (data.pre_invoice_deductions, "pre_invoice_discount_pct"),
    ]:
        assert np.allclose(frame[column], frame[column].round(4), rtol=0, atol=1e-9), column


def test_enumerations(data):
    c, p = data.customers, data.products
    assert set(c["platform"]) == {"Brick & Mortar", "E-Commerce"}
    assert set(c["channel"]) == {"Direct", "Distributor", "Retailer"}
    assert set(c["region"]) <= {"APAC", "EU", "NA", "LATAM"}
    assert set(c["sub_zone"]) <= {"India", "ROA", "ANZ", "NE", "SE", "NA", "LATAM"}
    assert set(c["market"]) <= {m.name for m in MARKETS}
    # No E-Commerce distributors in AtliQ.
    assert not ((c["platform"] == "E-Commerce") & (c["channel"] == "Distributor")).any()
    assert set(p["division"]) == {"P & A", "PC", "N & S"}
    assert set(p["segment"]) == {
        "Peripherals",
        "Accessories",
        "Notebook",
        "Desktop",
        "Storage",
        "Networking",
    }
    assert set(data.truth_customers["persona"]) >= {
        "gamer",
        "office_buyer",
        "bulk_reseller",
        "bargain_accessory_buyer",
        "one_off_laptop_buyer",
    }


def test_hierarchies_are_functional(data):
    """Each market has one sub_zone and region; each segment one division; like AtliQ."""
    c = data.customers
    geo = c.drop_duplicates(["market", "sub_zone", "region"])
    assert geo["market"].is_unique
    expected = {m.name: (m.sub_zone, m.region) for m in MARKETS}
    assert all(expected[r.market] == (r.sub_zone, r.region) for r in geo.itertuples())
    seg = data.products.drop_duplicates(["segment", "division"])
    assert seg["segment"].is_unique
    assert len(data.products) == 397
    assert data.products.groupby(["segment", "category"]).size().to_dict() == {
        ("Accessories", "Batteries"): 20,
        ("Accessories", "Keyboard"): 48,
        ("Accessories", "Mouse"): 48,
        ("Desktop", "Business Laptop"): 16,
        ("Desktop", "Personal Desktop"): 16,
        ("Networking", "Wi fi extender"): 9,
        ("Notebook", "Business Laptop"): 28,
        ("Notebook", "Gaming Laptop"): 40,
        ("Notebook", "Personal Laptop"): 61,
        ("Peripherals", "Graphic Card"): 36,
        ("Peripherals", "Internal HDD"): 10,
        ("Peripherals", "MotherBoard"): 20,
        ("Peripherals", "Processors"): 18,
        ("Storage", "External SSD"): 15,
        ("Storage", "USB Flash Drives"): 12,
    }


def test_keys_are_unique(data):
    assert data.customers["customer_code"].is_unique
    assert data.customers["email"].is_unique
    assert data.products["product_code"].is_unique
    assert not data.gross_prices.duplicated(["product_code", "fiscal_year"]).any()
    assert not data.manufacturing_costs.duplicated(["product_code", "cost_year"]).any()
    assert not data.pre_invoice_deductions.duplicated(["customer_code", "fiscal_year"]).any()
    assert data.truth_customers["customer_code"].is_unique
    for lines in (data.order_lines, data.future_order_lines):
        assert not lines.duplicated(["order_id", "line_number"]).any()
        # An order is one customer on one day, with lines numbered 1..n and distinct products.
        per_order = lines.groupby("order_id").agg(
            customers=("customer_code", "nunique"),
            dates=("order_date", "nunique"),
            n=("line_number", "size"),
            top=("line_number", "max"),
            low=("line_number", "min"),
            products=("product_code", "nunique"),
        )
        assert (per_order["customers"] == 1).all() and (per_order["dates"] == 1).all()
        assert (per_order["low"] == 1).all() and (per_order["top"] == per_order["n"]).all()
        assert (per_order["products"] == per_order["n"]).all()
    assert not set(data.order_lines["order_id"]) & set(data.future_order_lines["order_id"])


def test_codes_follow_the_atliq_format(data):
    c = data.customers
    assert c["customer_code"].str.fullmatch(r"[789]\d{10}").all()
    digit = c["customer_code"].str[0].map({"7": "Direct", "8": "Distributor", "9": "Retailer"})
    assert (digit == c["channel"]).all()
    market_index = {m.name: m.index for m in MARKETS}
    assert (c["customer_code"].str[1:3].astype(int) == c["market"].map(market_index)).all()
    p = data.products
    assert p["product_code"].str.fullmatch(r"A\d{10}").all()
    division_code = p["product_code"].str[5:7].map({"15": "P & A", "11": "PC", "16": "N & S"})
    assert (division_code == p["division"]).all()


def test_foreign_keys_resolve(data, config):
    lines, customers, products = data.order_lines, data.customers, data.products
    assert lines["customer_code"].isin(customers["customer_code"]).all()
    assert lines["product_code"].isin(products["product_code"]).all()
    assert data.future_order_lines["customer_code"].isin(customers["customer_code"]).all()
    assert data.future_order_lines["product_code"].isin(products["product_code"]).all()
    assert set(data.truth_customers["customer_code"]) == set(customers["customer_code"])

    needed = lines.assign(fiscal_year=fiscal_year(lines["order_date"]))
    priced = needed.merge(data.gross_prices, on=["product_code", "fiscal_year"], how="left")
    assert priced["gross_price"].notna().all()
    costed = needed.merge(
        data.manufacturing_costs.rename(columns={"cost_year": "fiscal_year"}),
        on=["product_code", "fiscal_year"],
        how="left",
    )
    assert costed["manufacturing_cost"].notna().all()
    discounted = needed.merge(
        data.pre_invoice_deductions, on=["customer_code", "fiscal_year"], how="left"
    )
    assert discounted["pre_invoice_discount_pct"].notna().all()

    # Price, cost and discount tables are complete grids over FY(start)..FY(as_of).
    years = set(range(2024, 2028))
    assert fiscal_year(pd.Series(pd.to_datetime([config.start_date, config.as_of]))).tolist() == [
        2024,
        2027,
    ]
    assert len(data.gross_prices) == len(products) * len(years)
    assert set(data.gross_prices["fiscal_year"]) == years
    assert set(data.manufacturing_costs["cost_year"]) == years
    assert len(data.pre_invoice_deductions) == len(customers) * len(years)
    assert set(data.pre_invoice_deductions["customer_code"]) == set(customers["customer_code"])


def test_dates_respect_the_as_of_cut(data, config):
    as_of = pd.Timestamp(config.as_of)
    horizon = as_of + pd.Timedelta(days=config.truth_horizon_days)
    assert data.order_lines["order_date"].max() <= as_of
    assert data.order_lines["order_date"].min() >= pd.Timestamp(config.start_date)
    future = data.future_order_lines["order_date"]
    assert (future > as_of).all() and (future <= horizon).all()
    truth = data.truth_customers
    assert (truth["acquisition_date"] <= as_of).all()
    assert (truth["acquisition_date"] >= pd.Timestamp(config.start_date)).all()
    end = pd.Timestamp(config.start_date) + pd.Timedelta(days=config.history_days)
    assert (truth["acquisition_date"] < end).all()


def test_first_order_is_on_the_acquisition_date(data):
    first = data.order_lines.groupby("customer_code")["order_date"].min()
    acquired = data.truth_customers.set_index("customer_code")["acquisition_date"]
    assert first.index.size == acquired.index.size  # every customer has ordered
    pd.testing.assert_series_equal(first.sort_index(), acquired.sort_index(), check_names=False)
    # Exactly one order on the acquisition day: repeat purchases start the day after.
    lines = data.order_lines.merge(acquired.rename("acq").reset_index(), on="customer_code")
    on_day = (
        lines[lines["order_date"] == lines["acq"]].groupby("customer_code")["order_id"].nunique()
    )
    assert (on_day == 1).all()


def test_customer_profiles_look_real(data, config):
    c = data.customers
    assert c["customer"].str.len().gt(0).all() and c["city"].str.len().gt(0).all()
    assert c["email"].str.fullmatch(r"[a-z.]+\d+@[A-Za-z0-9.-]+\.[a-z]+").all()
    age = (pd.Timestamp(config.start_date) - c["date_of_birth"]).dt.days / 365.25
    assert age.min() >= 18 and age.max() <= 92
    assert c["occupation"].nunique() > 50
    # India and the USA are the biggest markets, like AtliQ's sales.
    assert c["market"].value_counts().index[:2].tolist() == ["India", "USA"]


@pytest.mark.parametrize("days", [0, 30])
def test_short_horizons(config, days):
    """A zero horizon gives an empty but well-formed truth; as-of on the start date works."""
    from pipeline.synthetic import SimulationConfig, simulate

    data = simulate(
        SimulationConfig(
            customers=200,
            seed=3,
            start_date=config.start_date,
            history_days=config.history_days,
            as_of=config.start_date + dt.timedelta(days=days),
            truth_horizon_days=days,
        )
    )
    assert list(data.future_order_lines.columns) == TRUTH_COLUMNS["future_order_lines"]
    # Even empty frames keep the column types of full ones.
    assert data.future_order_lines.dtypes.astype(str).tolist() == [
        "str",
        "int64",
        "datetime64[ns]",
        "str",
        "str",
        "int64",
        "float64",
        "float64",
    ]
    assert data.truth_customers["future_net_sales"].dtype == np.float64
    assert len(data.customers) == len(data.truth_customers)
    assert (
        data.order_lines["order_date"] <= pd.Timestamp(config.start_date + dt.timedelta(days=days))
    ).all()
    if days == 0:
        assert data.future_order_lines.empty
        assert (data.truth_customers["future_orders"] == 0).all()

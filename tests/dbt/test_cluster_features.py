"""The SQL clustering features equal a pandas computation on the same order lines."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline import warehouse
from tests.rawdata import FISCAL_YEARS, dbt_build, random_order_lines, write_raw

pytestmark = pytest.mark.slow  # dbt or a whole refresh: not in `make test-fast`

AS_OF = dt.date(2026, 11, 24)
SEGMENTS = ["Peripherals", "Accessories", "Notebook", "Desktop", "Storage", "Networking"]
# One product per segment but Networking, so one share column is always 0.
PRODUCTS = pd.DataFrame(
    {
        "product_code": ["P0", "P1", "P2", "P3", "P4"],
        "division": ["P & A", "PC", "N & S", "PC", "P & A"],
        "segment": ["Accessories", "Notebook", "Storage", "Desktop", "Peripherals"],
        "category": ["Mouse", "Personal Laptop", "External SSD", "Personal Desktop", "Monitor"],
        "product": ["AQ Lite", "AQ Velocity", "AQ Digit SSD", "AQ Home", "AQ View"],
        "variant": "Standard",
    }
)
BASE_PRICE = {"P0": 10.0, "P1": 400.0, "P2": 20.0, "P3": 600.0, "P4": 150.0}
PLATFORM_CHANNELS = [
    ("Brick & Mortar", "Retailer"),
    ("Brick & Mortar", "Direct"),
    ("Brick & Mortar", "Distributor"),
    ("E-Commerce", "Retailer"),
    ("E-Commerce", "Direct"),
]


def _raw_data(database) -> None:
    """rawdata's tables, widened to five segments and all platform/channel pairs."""
    lines = random_order_lines(120, AS_OF, seed=11)
    rng = np.random.default_rng(5)
    lines["product_code"] = [f"P{i}" for i in rng.integers(0, len(PRODUCTS), len(lines))]
    write_raw(database, lines, extra_customers=2)
    prices = pd.DataFrame(
        [
            {"product_code": p, "fiscal_year": fy, "gross_price": round(b * (1 + 0.05 * i), 4)}
            for p, b in BASE_PRICE.items()
            for i, fy in enumerate(FISCAL_YEARS)
        ]
    )
    costs = prices.rename(columns={"fiscal_year": "cost_year", "gross_price": "manufacturing_cost"})
    costs["manufacturing_cost"] = (costs["manufacturing_cost"] * 0.3).round(4)
    with duckdb.connect(str(database)) as conn:
        customers = conn.sql("select * from raw.customers order by customer_code").df()
        pairs = [PLATFORM_CHANNELS[i % len(PLATFORM_CHANNELS)] for i in range(len(customers))]
        customers["platform"] = [p for p, _ in pairs]
        customers["channel"] = [c for _, c in pairs]
        warehouse.replace_tables(
            conn,
            "raw",
            {
                "customers": customers,
                "products": PRODUCTS,
                "gross_prices": prices,
                "manufacturing_costs": costs,
            },
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """dbt builds the features (and what they read) on known raw data."""
    root = tmp_path_factory.mktemp("cluster_features")
    database = root / "warehouse.duckdb"
    _raw_data(database)
    dbt_build(
        database,
        root / "target",
        ["--select", "+customer_cluster_features"],
        {"as_of_date": AS_OF.isoformat()},
    )
    with duckdb.connect(str(database), read_only=True) as conn:
        features = conn.sql("select * from intermediate.customer_cluster_features").df()
        lines = conn.sql(
            "select s.customer_code, s.order_id, s.date, s.net_sales_amount, s.gross_margin_amount,"
            " s.sold_quantity, p.segment, p.category, c.platform, c.channel"
            " from intermediate.int_order_lines_priced s"
            " join raw.products p on s.product_code = p.product_code"
            " join raw.customers c on s.customer_code = c.customer_code"
        ).df()
    return features.set_index("customer_code").sort_index(), lines


def _expected(lines: pd.DataFrame) -> pd.DataFrame:
    """The features computed in pandas from the priced order lines (a line is a row)."""
    lines = lines.assign(date=pd.to_datetime(lines["date"]))
    by = lines.groupby("customer_code")
    as_of = pd.Timestamp(AS_OF)
    out = pd.DataFrame(
        {
            "order_count": by["order_id"].nunique(),
            "days_since_last_order": (as_of - by["date"].max()).dt.days,
            "tenure_days": (as_of - by["date"].min()).dt.days,
            "total_net_sales": by["net_sales_amount"].sum(),
        }
    )
    out["avg_order_net_sales"] = out["total_net_sales"] / out["order_count"]
    out["order_lines"] = by.size()
    out["units_per_line"] = by["sold_quantity"].sum() / out["order_lines"]
    out["lines_per_order"] = out["order_lines"] / out["order_count"]
    out["margin_rate"] = by["gross_margin_amount"].sum() / out["total_net_sales"]
    out["log_frequency"] = np.log1p(out["order_count"])
    out["log_avg_order_value"] = np.log1p(out["avg_order_net_sales"])
    out["log_units_per_line"] = np.log1p(out["units_per_line"])
    out["log_lines_per_order"] = np.log1p(out["lines_per_order"])
    # the basket mix counts order lines, not money
    lines_by_segment = pd.crosstab(lines["customer_code"], lines["segment"]).reindex(
        columns=SEGMENTS, fill_value=0
    )
    for segment in SEGMENTS:
        out[f"share_{segment.lower()}"] = lines_by_segment[segment] / out["order_lines"]
    # per category, shrunk by two pseudo-lines at everyone's mix
    by_category = pd.crosstab(
        lines["customer_code"],
        "mix_"
        + lines["segment"].str.lower()
        + "__"
        + lines["category"].str.lower().str.replace(" ", "_"),
    )
    population = by_category.sum() / by_category.to_numpy().sum()
    mix = (by_category + 2 * population).div(out["order_lines"] + 2, axis=0)
    out = out.join(mix)
    first = by[["platform", "channel"]].first()
    out["is_e_commerce"] = (first["platform"] == "E-Commerce").astype(int)
    for channel in ("Direct", "Distributor", "Retailer"):
        out[f"is_{channel.lower()}"] = (first["channel"] == channel).astype(int)
    return out.sort_index()


def test_one_row_per_customer_with_orders(built):
    features, lines = built
    assert features.index.is_unique
    assert sorted(features.index) == sorted(lines["customer_code"].unique())
    assert not any(code.startswith("NOORDER") for code in features.index)


def test_features_match_pandas(built):
    features, lines = built
    expected = _expected(lines)
    for column in expected.columns:
        np.testing.assert_allclose(
            features[column].astype(float),
            expected[column].astype(float),
            rtol=1e-9,
            err_msg=column,
        )
    assert (features["as_of_date"] == pd.Timestamp(AS_OF)).all()


def test_the_mix_has_one_column_per_category_bought(built):
    features, lines = built
    mix = sorted(c for c in features.columns if c.startswith("mix_"))
    # Monitor lives under Peripherals: the name says both, as AtliQ reuses category names
    assert mix == [
        "mix_accessories__mouse",
        "mix_desktop__personal_desktop",
        "mix_notebook__personal_laptop",
        "mix_peripherals__monitor",
        "mix_storage__external_ssd",
    ]
    # shrunk, not raw: every customer has some of each, and the mix still sums to one
    assert (features[mix] > 0).all().all()
    np.testing.assert_allclose(features[mix].sum(axis=1), 1.0, rtol=1e-9)


def test_data_exercises_the_edge_cases(built):
    features, _ = built
    # one-order customers, a segment nobody bought, and every flag both ways
    assert (features["order_count"] == 1).any() and (features["order_count"] > 1).any()
    assert (features["share_networking"] == 0).all()
    assert ((features["share_notebook"] == 0) & (features["order_count"] == 1)).any()
    for flag in ("is_e_commerce", "is_direct", "is_distributor", "is_retailer"):
        assert set(features[flag]) == {0, 1}
    shares = features[[f"share_{s.lower()}" for s in SEGMENTS]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0, rtol=1e-9)

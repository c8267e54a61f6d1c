"""Gross prices, manufacturing costs and pre-invoice discounts per fiscal year.

Each fiscal year draws from its own stream (``[seed, stream, fiscal_year]``), and a year's
price is last year's price times that year's drift. So the value for a fiscal year never
depends on how many later years are built: the raw tables (up to FY(as_of)) and the truth's
extension (up to FY(as_of + horizon)) agree, and so do runs with different as-of dates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from .texts import picked

# Stream identifiers (second element of the seed sequence).
# 0 = customers, 1 = months, 2 = catalogue.
PRICE_DRIFT_STREAM = 3
COST_STREAM = 4
DISCOUNT_STREAM = 5

# AtliQ's year-over-year mean price change was -5.1%, +12.5%, +5.9%, +5.7% (FY19-FY22): a
# common yearly move of about +5% with a few points of spread, plus a small per-product move.
_DRIFT_MEAN, _DRIFT_SD, _PRODUCT_DRIFT_SD = 0.035, 0.04, 0.02

# manufacturing_cost / gross_price is uniform in this range for every AtliQ category and year.
COST_RATIO_RANGE = (0.2858, 0.3125)

# Pre-invoice discount ranges: AtliQ's own brick-and-mortar stores ("Atliq Exclusive") get
# about 5-11%; every trade customer 18-31%. Individual consumers get the trade range scaled
# down, since a person does not negotiate a retailer's terms.
DIRECT_BM_DISCOUNT = (0.05, 0.11)
TRADE_DISCOUNT = (0.18, 0.31)
CONSUMER_DISCOUNT_SCALE = 0.5

# Discount classes stored per customer.
DISCOUNT_DIRECT_BM, DISCOUNT_TRADE, DISCOUNT_CONSUMER = 0, 1, 2


def gross_price_matrix(base_price: np.ndarray, seed: int, fiscal_years: range) -> np.ndarray:
    """Gross price per product (rows) and fiscal year (columns), unrounded.

    Parameters
    ----------
    base_price
        Price of each product in ``fiscal_years[0]``.
    seed
        Simulation seed.
    fiscal_years
        Consecutive fiscal years, the first being the start of history.

    Returns
    -------
    numpy.ndarray
        float64 array of shape (products, years).
    """
    prices = np.empty((len(base_price), len(fiscal_years)))
    prices[:, 0] = base_price
    for j, fy in enumerate(fiscal_years[1:], start=1):
        rng = np.random.default_rng([seed, PRICE_DRIFT_STREAM, fy])
        common = rng.normal(_DRIFT_MEAN, _DRIFT_SD)
        own = rng.normal(0.0, _PRODUCT_DRIFT_SD, size=len(base_price))
        prices[:, j] = prices[:, j - 1] * np.clip(1.0 + common + own, 0.85, 1.25)
    return np.round(prices, 4)


def cost_matrix(gross_prices: np.ndarray, seed: int, fiscal_years: range) -> np.ndarray:
    """Manufacturing cost = gross price x U(0.2858, 0.3125), per product and year, 4 dp."""
    costs = np.empty_like(gross_prices)
    for j, fy in enumerate(fiscal_years):
        rng = np.random.default_rng([seed, COST_STREAM, fy])
        ratio = rng.uniform(*COST_RATIO_RANGE, size=gross_prices.shape[0])
        costs[:, j] = gross_prices[:, j] * ratio
    return np.round(costs, 4)


def discount_matrix(discount_class: np.ndarray, seed: int, fiscal_years: range) -> np.ndarray:
    """Pre-invoice discount per customer (rows) and fiscal year (columns), 4 dp.

    Redrawn every year, like AtliQ (within-customer sd about 0.035). Drawn for every customer in
    the world, acquired or not, so a customer's value does not depend on the as-of date.
    """
    lo = np.choose(
        discount_class,
        [DIRECT_BM_DISCOUNT[0], TRADE_DISCOUNT[0], TRADE_DISCOUNT[0] * CONSUMER_DISCOUNT_SCALE],
    )
    hi = np.choose(
        discount_class,
        [DIRECT_BM_DISCOUNT[1], TRADE_DISCOUNT[1], TRADE_DISCOUNT[1] * CONSUMER_DISCOUNT_SCALE],
    )
    out = np.empty((len(discount_class), len(fiscal_years)))
    for j, fy in enumerate(fiscal_years):
        rng = np.random.default_rng([seed, DISCOUNT_STREAM, fy])
        out[:, j] = lo + rng.random(len(discount_class)) * (hi - lo)
    return np.round(out, 4)


def product_year_frame(
    codes: np.ndarray, fiscal_years: range, values: np.ndarray, year_column: str, value_column: str
) -> pd.DataFrame:
    """Long frame (code, year, value), one row per product and year, ordered by code then year."""
    n_products, n_years = values.shape
    return pd.DataFrame(
        {
            "product_code": np.repeat(codes, n_years),
            year_column: np.tile(np.asarray(fiscal_years, dtype=np.int64), n_products),
            value_column: values.reshape(-1),
        }
    )


def deductions_frame(
    customer_codes: pa.Array | np.ndarray, fiscal_years: range, pct: np.ndarray
) -> pd.DataFrame:
    """raw ``pre_invoice_deductions``: one row per customer and fiscal year."""
    n_customers, n_years = pct.shape
    return pd.DataFrame(
        {
            "customer_code": picked(customer_codes, np.repeat(np.arange(n_customers), n_years)),
            "fiscal_year": np.tile(np.asarray(fiscal_years, dtype=np.int64), n_customers),
            "pre_invoice_discount_pct": pct.reshape(-1),
        }
    )

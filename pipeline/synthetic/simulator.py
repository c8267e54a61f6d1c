"""The simulator's entry point: a config in, raw tables and ground truth out.

Random streams (all ``numpy.random.default_rng`` seed sequences):

- ``[seed, 0]``: customers (acquisition, persona, geography, latent BG/NBD variables, profile);
- ``[seed, 1, year * 12 + month]``: the purchases of one calendar month;
- ``[seed, 2]``: the product catalogue and base prices;
- ``[seed, 3 | 4 | 5, fiscal_year]``: price drift, cost ratios and discounts of one year.

None of them depends on the as-of date, which only decides where the world is cut into what
the pipeline sees (``raw``) and what happens next (``truth``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from . import prices
from .behaviour import NO_DAY, OrderBook, persona_names, simulate_orders
from .customers import World, customer_frame, customer_numbers, draw_world
from .dates import day_number, fiscal_year_of, fiscal_years, to_datetime64
from .pools import build_pools
from .products import build_catalogue
from .texts import picked, spelled

CATALOGUE_STREAM = 2

# Rows per block of the large tables (order lines, customers, deductions): building one block
# of customers takes about 0.1 GiB (its text is built whole, then the frame),
# whatever the number of customers; 4x the rows took 0.3 GiB more at 1M customers, no faster.
BLOCK_ROWS = 1 << 18


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate.

    Attributes
    ----------
    customers
        Customers in the world, all acquired over ``history_days`` from ``start_date``.
    seed
        Seed of every random stream and of the Faker pools.
    start_date
        First day of history (first possible acquisition).
    history_days
        Customers are acquired on days ``[start_date, start_date + history_days)``.
    as_of
        Last day the raw tables show.
    truth_horizon_days
        Days after ``as_of`` simulated into the truth tables.
    """

    customers: int
    seed: int
    start_date: dt.date
    history_days: int
    as_of: dt.date
    truth_horizon_days: int = 365

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError(f"customers must be >= 1, got {self.customers}")
        if self.history_days < 1:
            raise ValueError(f"history_days must be >= 1, got {self.history_days}")
        if self.truth_horizon_days < 0:
            raise ValueError(f"truth_horizon_days must be >= 0, got {self.truth_horizon_days}")
        if self.as_of < self.start_date:
            raise ValueError(f"as_of {self.as_of} is before start_date {self.start_date}")

    @classmethod
    def from_settings(cls, settings) -> SimulationConfig:
        """Build from ``pipeline.settings.Settings``: its simulation group and the run's as-of date."""
        return cls(
            as_of=settings.as_of,
            **{
                f.name: getattr(settings.simulation, f.name)
                for f in fields(cls)
                if f.name != "as_of"
            },
        )

    @property
    def horizon_end(self) -> dt.date:
        """Last day of the truth horizon."""
        return self.as_of + dt.timedelta(days=self.truth_horizon_days)


@dataclass(frozen=True)
class BlockTable:
    """A table built block by block: ``build(lo, hi)`` gives its rows ``[lo, hi)``, the same
    rows the whole table has there (every value depends on its own row, or on its own group of
    ``group_rows`` rows, which a block never splits)."""

    rows: int
    build: Callable[[int, int], pd.DataFrame]
    group_rows: int = 1

    @classmethod
    def of(cls, frame: pd.DataFrame) -> BlockTable:
        """A small table, built already: one block."""
        return cls(len(frame), lambda lo, hi: frame.iloc[lo:hi], max(len(frame), 1))

    def frame(self) -> pd.DataFrame:
        return _strings_as_str(self.build(0, self.rows))

    def blocks(self, block_rows: int = BLOCK_ROWS) -> Iterator[pd.DataFrame]:
        """Blocks of about ``block_rows`` rows, in row order; at least one, so that an empty
        table still has its columns."""
        step = max(block_rows // self.group_rows, 1) * self.group_rows
        for lo in range(0, max(self.rows, 1), step):
            yield _strings_as_str(self.build(lo, min(lo + step, self.rows)))


def _whole(schema: str, name: str) -> cached_property:
    return cached_property(lambda self: self.blocks[schema][name].frame())


@dataclass(frozen=True)
class SyntheticData:
    """The simulated tables, built when asked for: whole (the attributes and ``tables()``, each
    built once) or block by block (``table_blocks()``, what the raw load writes: at 10M
    customers the whole frames would take about 20 GiB)."""

    blocks: Mapping[str, Mapping[str, BlockTable]]

    customers = _whole("raw", "customers")
    products = _whole("raw", "products")
    gross_prices = _whole("raw", "gross_prices")
    manufacturing_costs = _whole("raw", "manufacturing_costs")
    pre_invoice_deductions = _whole("raw", "pre_invoice_deductions")
    order_lines = _whole("raw", "order_lines")
    truth_customers = _whole("truth", "customers")
    future_order_lines = _whole("truth", "future_order_lines")

    def tables(self) -> dict[str, dict[str, pd.DataFrame]]:
        """``{"raw": {name: frame}, "truth": {name: frame}}``."""
        return {
            schema: {
                name: getattr(
                    self, "truth_customers" if (schema, name) == ("truth", "customers") else name
                )
                for name in tables
            }
            for schema, tables in self.blocks.items()
        }

    def table_blocks(
        self, block_rows: int = BLOCK_ROWS
    ) -> dict[str, dict[str, Iterator[pd.DataFrame]]]:
        """Like ``tables()``, each table an iterator over its blocks of about ``block_rows`` rows,
        built one at a time."""
        return {
            schema: {name: table.blocks(block_rows) for name, table in tables.items()}
            for schema, tables in self.blocks.items()
        }


def simulate(config: SimulationConfig) -> SyntheticData:
    """Simulate the world of ``config`` and cut it at the as-of date.

    Parameters
    ----------
    config
        Scale, seed, history and as-of date.

    Returns
    -------
    SyntheticData
        Raw tables up to ``as_of`` and the truth: latent variables of every raw customer and
        their order lines in ``(as_of, as_of + truth_horizon_days]``.
    """
    start_day, as_of_day = day_number(config.start_date), day_number(config.as_of)
    horizon_day = day_number(config.horizon_end)
    first_fy = fiscal_year_of(config.start_date)
    raw_years = range(first_fy, fiscal_year_of(config.as_of) + 1)
    all_years = range(first_fy, fiscal_year_of(config.horizon_end) + 1)

    catalogue = build_catalogue(np.random.default_rng([config.seed, CATALOGUE_STREAM]), first_fy)
    world = draw_world(config.customers, config.seed, config.start_date, config.history_days)
    book = simulate_orders(world, catalogue, config.seed, start_day, horizon_day)
    n_raw = world.acquired_by(as_of_day)

    price = prices.gross_price_matrix(catalogue.base_price, config.seed, all_years)
    cost = prices.cost_matrix(price, config.seed, all_years)
    discount = prices.discount_matrix(world.discount_class, config.seed, all_years)[:n_raw]

    product_codes = catalogue.codes
    # Each customer's code spelled once, then picked per row: spelling it per order line took
    # 2.7 s of the raw load at 1M customers (6.75M lines), picking takes 0.8 s. The texts cost
    # about 70 MiB per million customers while the raw tables are written.
    codes = spelled(customer_numbers(world, n_raw))
    n_raw_years = len(raw_years)

    # Orders are sorted by day, so the cut at as-of and at the horizon are positions.
    n_orders_raw = int(np.searchsorted(book.order_day, as_of_day, side="right"))
    n_orders_all = int(np.searchsorted(book.order_day, horizon_day, side="right"))
    n_raw_lines = int(np.searchsorted(book.line_order, n_orders_raw, side="left"))

    def raw_lines(lo: int, hi: int) -> pd.DataFrame:
        return _lines_frame(book, slice(lo, hi), codes, product_codes)

    future = _future_lines(book, n_orders_raw, n_orders_all, n_raw)
    fy_index = fiscal_years(book.order_day[book.line_order[future]]) - first_fy
    customer = book.order_customer[book.line_order[future]]
    product = book.line_product[future]
    quantity = book.line_quantity[future]
    net = quantity * price[product, fy_index] * (1.0 - discount[customer, fy_index])
    margin = np.round(net - quantity * cost[product, fy_index], 4)
    net = np.round(net, 4)
    del fy_index, product, quantity

    def future_lines(lo: int, hi: int) -> pd.DataFrame:
        frame = _lines_frame(book, future[lo:hi], codes, product_codes)
        frame["net_sales_amount"] = net[lo:hi]
        frame["gross_margin_amount"] = margin[lo:hi]
        return frame

    future_orders = np.unique(book.line_order[future])
    next_year = {
        "future_orders": np.bincount(book.order_customer[future_orders], minlength=n_raw),
        "future_net": np.bincount(customer, weights=net, minlength=n_raw),
        "future_margin": np.bincount(customer, weights=margin, minlength=n_raw),
    }
    del future_orders, customer

    def truth_customers(lo: int, hi: int) -> pd.DataFrame:
        return _truth_customers(
            world, book, codes, slice(lo, hi), as_of_day, horizon_day, **next_year
        )

    pools = build_pools(config.seed)

    def customers(lo: int, hi: int) -> pd.DataFrame:
        return customer_frame(world, slice(lo, hi), codes, pools, config.start_date)

    def deductions(lo: int, hi: int) -> pd.DataFrame:
        first, last = lo // n_raw_years, hi // n_raw_years
        return prices.deductions_frame(
            codes[first:last], raw_years, discount[first:last, :n_raw_years]
        )

    return SyntheticData(
        {
            "raw": {
                "customers": BlockTable(n_raw, customers),
                "products": BlockTable.of(catalogue.frame.copy()),
                "gross_prices": BlockTable.of(
                    prices.product_year_frame(
                        product_codes,
                        raw_years,
                        price[:, :n_raw_years],
                        "fiscal_year",
                        "gross_price",
                    )
                ),
                "manufacturing_costs": BlockTable.of(
                    prices.product_year_frame(
                        product_codes,
                        raw_years,
                        cost[:, :n_raw_years],
                        "cost_year",
                        "manufacturing_cost",
                    )
                ),
                "pre_invoice_deductions": BlockTable(n_raw * n_raw_years, deductions, n_raw_years),
                "order_lines": BlockTable(n_raw_lines, raw_lines),
            },
            "truth": {
                "customers": BlockTable(n_raw, truth_customers),
                "future_order_lines": BlockTable(len(future), future_lines),
            },
        }
    )


def _strings_as_str(frame: pd.DataFrame) -> pd.DataFrame:
    """Give text columns pandas' ``str`` dtype even when empty (pandas infers ``object`` then)."""
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("str")
    return frame


def _future_lines(book: OrderBook, first_order: int, end_order: int, n_raw: int) -> np.ndarray:
    """Positions of the lines of orders ``[first_order, end_order)`` placed by raw customers."""
    lo = int(np.searchsorted(book.line_order, first_order, side="left"))
    hi = int(np.searchsorted(book.line_order, end_order, side="left"))
    positions = np.arange(lo, hi)
    return positions[book.order_customer[book.line_order[positions]] < n_raw]


def _lines_frame(
    book: OrderBook,
    lines: slice | np.ndarray,
    customer_codes: pa.Array,
    product_codes: np.ndarray,
) -> pd.DataFrame:
    """Order lines in the raw ``order_lines`` layout (``customer_codes``: each customer's code
    text, by customer index)."""
    order = book.line_order[lines]
    # Lines are grouped by order, so a block's orders are one run of the book: each order id is
    # spelled once.
    first = int(order[0]) if len(order) else 0
    last = int(order[-1]) + 1 if len(order) else 0
    order_ids = spelled(book.order_keys(first, last), "SO")
    return pd.DataFrame(
        {
            "order_id": picked(order_ids, order - first),
            "line_number": book.line_number[lines].astype(np.int64),
            "order_date": to_datetime64(book.order_day[order]),
            "customer_code": picked(customer_codes, book.order_customer[order]),
            "product_code": picked(product_codes, book.line_product[lines]),
            "sold_quantity": book.line_quantity[lines].astype(np.int64),
        }
    )


def _truth_customers(
    world: World,
    book: OrderBook,
    customer_codes: pa.Array,
    rows: slice,
    as_of_day: int,
    horizon_day: int,
    future_orders: np.ndarray,
    future_net: np.ndarray,
    future_margin: np.ndarray,
) -> pd.DataFrame:
    """truth ``customers``: the latent variables of raw customers ``rows`` and their next year
    (``future_*``: per raw customer)."""
    dropout = book.dropout_day[rows]
    dropped_by_horizon = (dropout != NO_DAY) & (dropout <= horizon_day)
    dropout_date = to_datetime64(np.where(dropped_by_horizon, dropout, 0))
    dropout_date[~dropped_by_horizon] = np.datetime64("NaT", "ns")
    return pd.DataFrame(
        {
            "customer_code": picked(customer_codes, rows),
            "persona": persona_names()[world.persona[rows]],
            "acquisition_date": to_datetime64(world.acquisition_day[rows]),
            "purchase_rate": world.purchase_rate[rows],
            "dropout_prob": world.dropout_prob[rows],
            "repeat_purchases_until_dropout": world.dropout_after[rows],
            "dropout_date": dropout_date,
            "alive_at_as_of": ~((dropout != NO_DAY) & (dropout <= as_of_day)),
            "mean_quantity_multiplier": world.quantity_multiplier[rows],
            "future_orders": future_orders[rows].astype(np.int64),
            "future_net_sales": np.round(future_net[rows].astype(np.float64), 4),
            "future_gross_margin": np.round(future_margin[rows].astype(np.float64), 4),
        }
    )

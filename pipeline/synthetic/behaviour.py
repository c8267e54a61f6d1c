"""The latent purchase process: BG/NBD repeat purchases, simulated month by month.

Each customer places a first order on the acquisition date. After it, repeat purchases follow a
Poisson process with the customer's rate ``lambda`` (times the month's seasonality) until the
``D``-th repeat purchase, ``D ~ Geometric(p)``, after which the customer is inactive for good:
exactly the BG/NBD story (Fader, Hardie and Lee, 2005).

Each calendar month draws from its own stream ``default_rng([seed, 1, year * 12 + month])``,
for all customers at once, and always for the whole month. The state carried from month to
month (repeat purchases so far) depends only on earlier months, so the purchases of a month are
the same whatever the as-of date: a later as-of date only adds rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .customers import World
from .dates import SEASONALITY, month_spans
from .personas import PERSONAS, category_matrix, persona_array
from .products import CATEGORIES, Catalogue

MONTH_STREAM = 1
NO_DAY = -1  # day number placeholder: "never"


@dataclass(frozen=True)
class OrderBook:
    """Every order and order line of the simulated months.

    Orders are sorted by month, then day, then customer; lines are grouped by order. The arrays
    hold the narrowest integers their ranges allow (10M customers make about 30M orders and 85M
    lines: int64 everywhere took 2.5x the memory); the frames widen them to int64.

    Attributes
    ----------
    order_day, order_customer
        Day number and customer row (index into the ``World``) of each order.
    month_first_order, month_code
        Position of each simulated month's first order (one more at the end: the number of
        orders) and its ``yyyymm``: what ``order_keys`` numbers the orders from.
    line_order
        Index of each line's order in the order arrays.
    line_number
        1..n within the order.
    line_product
        Row of the product in the catalogue.
    line_quantity
        Units sold (>= 1).
    repeats
        Repeat purchases per customer up to the end of the last simulated month.
    dropout_day
        Day of the repeat purchase after which each customer became inactive, or ``NO_DAY``.
    """

    order_day: np.ndarray
    order_customer: np.ndarray
    line_order: np.ndarray
    line_number: np.ndarray
    line_product: np.ndarray
    line_quantity: np.ndarray
    repeats: np.ndarray
    dropout_day: np.ndarray
    month_first_order: np.ndarray
    month_code: np.ndarray

    def order_keys(self, first: int, last: int) -> np.ndarray:
        """The numbers behind the order_ids of orders ``[first, last)``: ``yyyymm * 10**8 +
        sequence within month`` (computed, not stored: 8 bytes per order, 0.24 GiB at 10M
        customers)."""
        order = np.arange(first, last)
        month = np.searchsorted(self.month_first_order, order, side="right") - 1
        return self.month_code[month] * 10**8 + (order - self.month_first_order[month])


def month_rng(seed: int, year: int, month: int) -> np.random.Generator:
    """The random stream of one calendar month."""
    return np.random.default_rng([seed, MONTH_STREAM, year * 12 + month])


def product_cdf(catalogue: Catalogue) -> np.ndarray:
    """Cumulative popularity shifted by category: category ``c``'s products span ``(c, c + 1]``.

    ``searchsorted(cdf, c + u)`` then picks a product of category ``c`` by popularity, for
    every line at once.
    """
    cat = catalogue.category_index
    cum = np.empty(len(cat))
    offsets = catalogue.category_offsets()
    for c in range(len(CATEGORIES)):
        lo, hi = offsets[c], offsets[c + 1]
        cum[lo:hi] = c + np.cumsum(catalogue.popularity[lo:hi])
        cum[hi - 1] = c + 1.0  # exact upper end despite rounding in the cumulative sum
    return cum


def repeat_events(
    rng: np.random.Generator,
    world: World,
    repeats: np.ndarray,
    n_acquired: int,
    month_first: int,
    month_last: int,
    season: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw a month's repeat purchases of every active customer, truncated at dropout.

    Parameters
    ----------
    rng
        The month's stream.
    world
        All customers.
    repeats
        Repeat purchases so far per customer (read only).
    n_acquired
        Customers acquired on or before ``month_last`` (the first rows of the world).
    month_first, month_last
        Day numbers of the month.
    season
        Seasonal multiplier of the purchase rate for this month.

    Returns
    -------
    customers, days
        Customer row and day of each kept repeat purchase, sorted by customer then day.
    kept
        Per customer row of the world, the repeat purchases kept this month (zeros elsewhere).
    """
    acquired = world.acquisition_day[:n_acquired]
    # Exposure starts the day after acquisition: the acquisition day holds the first order.
    active = np.flatnonzero(
        (acquired < month_last) & (repeats[:n_acquired] < world.dropout_after[:n_acquired])
    )
    start = np.maximum(month_first, acquired[active] + 1)
    exposure = month_last - start + 1
    counts = rng.poisson(world.purchase_rate[active] * exposure * season)

    owner = np.repeat(np.arange(len(active)), counts)
    days = start[owner] + rng.integers(0, exposure[owner])
    # Sort each customer's events by day, then keep only those before dropout.
    order = np.lexsort((days, owner))
    owner, days = owner[order], days[order]
    first_of_owner = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.arange(len(owner)) - first_of_owner
    remaining = world.dropout_after[active] - repeats[active]
    keep = rank < remaining[owner]

    kept = np.zeros(len(world), dtype=np.int32)
    kept[active] = np.minimum(counts, remaining)
    return active[owner[keep]], days[keep], kept


def draw_lines(
    rng: np.random.Generator,
    world: World,
    order_customer: np.ndarray,
    catalogue: Catalogue,
    cdf: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw the lines of a month's orders: how many, which products, how many units.

    The category of a line follows the customer's persona mix; the product within the category
    follows its popularity; units follow the persona's units per line, scaled by the category
    (PCs sell in far smaller quantities than accessories) and the customer's spend multiplier,
    with Gamma-Poisson noise so that quantities are right-skewed. A product drawn twice in one
    order keeps only its first line.

    Returns
    -------
    line_order, line_number, product, quantity
    """
    persona_of_order = world.persona[order_customer]
    n_lines = 1 + rng.poisson(persona_array("extra_lines")[persona_of_order])
    line_order = np.repeat(np.arange(len(order_customer)), n_lines)
    persona = persona_of_order[line_order]

    cum = category_matrix()[persona]
    u = rng.random(len(line_order))
    category = np.zeros(len(line_order), dtype=np.int64)
    for k in range(cum.shape[1] - 1):
        category += u >= cum[:, k]

    product = np.searchsorted(cdf, category + rng.random(len(line_order)), side="right")
    product = np.minimum(product, len(cdf) - 1)

    factor = np.array([c.quantity_factor for c in CATEGORIES])[category]
    mean_units = (
        persona_array("units")[persona]
        * factor
        * world.quantity_multiplier[order_customer[line_order]]
    )
    noise = rng.gamma(2.0, 0.5, size=len(line_order))
    quantity = 1 + rng.poisson(np.maximum(mean_units - 1.0, 0.0) * noise)

    # Drop repeated products within an order, keeping each product's first line.
    key = line_order * len(cdf) + product
    by_key = np.argsort(key, kind="stable")
    duplicate = np.zeros(len(key), dtype=bool)
    duplicate[by_key[1:]] = key[by_key[1:]] == key[by_key[:-1]]
    keep = ~duplicate
    line_order, product, quantity = line_order[keep], product[keep], quantity[keep]
    return line_order, _number_within_groups(line_order), product, quantity


def _number_within_groups(group: np.ndarray) -> np.ndarray:
    """1..n within runs of equal values of a sorted array."""
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    lengths = np.diff(np.r_[starts, len(group)])
    return np.arange(len(group)) - np.repeat(starts, lengths) + 1


def simulate_orders(
    world: World, catalogue: Catalogue, seed: int, first_day: int, last_day: int
) -> OrderBook:
    """Run the purchase process over every whole month from ``first_day`` to ``last_day``.

    Parameters
    ----------
    world
        All customers, in acquisition order.
    catalogue
        Products to sell.
    seed
        Simulation seed; month ``(y, m)`` uses ``default_rng([seed, 1, y * 12 + m])``.
    first_day, last_day
        Day numbers; the months containing them are simulated whole.

    Returns
    -------
    OrderBook
    """
    cdf = product_cdf(catalogue)
    repeats = np.zeros(len(world), dtype=np.int32)
    dropout_day = np.full(len(world), NO_DAY, dtype=np.int32)
    orders: dict[str, list[np.ndarray]] = {k: [] for k in ("day", "customer")}
    month_first_order: list[int] = []
    month_code: list[int] = []
    lines: dict[str, list[np.ndarray]] = {k: [] for k in ("order", "number", "product", "quantity")}
    n_orders = 0

    for year, month, month_first, month_last in month_spans(first_day, last_day):
        rng = month_rng(seed, year, month)
        n_acquired = world.acquired_by(month_last)
        first_lo = world.acquired_by(month_first - 1)

        rep_customer, rep_day, kept = repeat_events(
            rng, world, repeats, n_acquired, month_first, month_last, SEASONALITY[month - 1]
        )
        repeats += kept
        # The D-th repeat purchase (a customer's last kept one) is the day they drop out.
        if len(rep_customer):
            last_of_customer = np.r_[rep_customer[1:] != rep_customer[:-1], True]
            ended = last_of_customer & (repeats[rep_customer] == world.dropout_after[rep_customer])
            dropout_day[rep_customer[ended]] = rep_day[ended]

        customer = np.r_[np.arange(first_lo, n_acquired), rep_customer]
        day = np.r_[world.acquisition_day[first_lo:n_acquired], rep_day]
        order = np.lexsort((customer, day))
        customer, day = customer[order], day[order]

        l_order, l_number, l_product, l_quantity = draw_lines(rng, world, customer, catalogue, cdf)
        orders["day"].append(day.astype(np.int32))
        orders["customer"].append(customer.astype(np.int32))
        month_first_order.append(n_orders)
        month_code.append(year * 100 + month)
        lines["order"].append((l_order + n_orders).astype(np.int32))
        lines["number"].append(l_number.astype(np.int16))
        lines["product"].append(l_product.astype(np.int16))
        lines["quantity"].append(l_quantity.astype(np.int32))
        n_orders += len(day)

    def cat(parts: list[np.ndarray], dtype) -> np.ndarray:
        out = np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
        parts.clear()  # the month pieces go as soon as they are joined
        return out

    return OrderBook(
        order_day=cat(orders["day"], np.int32),
        order_customer=cat(orders["customer"], np.int32),
        line_order=cat(lines["order"], np.int32),
        line_number=cat(lines["number"], np.int16),
        line_product=cat(lines["product"], np.int16),
        line_quantity=cat(lines["quantity"], np.int32),
        repeats=repeats,
        dropout_day=dropout_day,
        month_first_order=np.array([*month_first_order, n_orders], dtype=np.int64),
        month_code=np.array([*month_code, 0], dtype=np.int64),
    )


def persona_names() -> np.ndarray:
    """Persona labels indexed by persona number (object array)."""
    return np.array([p.name for p in PERSONAS], dtype=object)

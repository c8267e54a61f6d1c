"""The customers of the world: acquisition dates, latent BG/NBD variables and profile attributes.

Everything here comes from the customer-level stream ``default_rng([seed, 0])`` and never from
the as-of date: customers are drawn for the whole history at once, sorted by acquisition date,
and numbered in that order. A run with an earlier as-of date sees a prefix of the same list.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from . import prices
from .dates import SEASONALITY, day_number, to_datetime64
from .geography import MARKETS, market_weights
from .personas import PERSONAS, PLATFORM_CHANNELS, persona_array, persona_shares
from .pools import Pools
from .texts import TEXT, column, picked

CUSTOMER_STREAM = 0

# Acquisitions grow mildly: the last day of history sees 1.5x the new customers of the first.
ACQUISITION_GROWTH = 1.5

# Channel digit of the customer code, as in AtliQ.
CHANNEL_DIGIT = {"Direct": 7, "Distributor": 8, "Retailer": 9}
# customer_code = channel digit, 2-digit market index, 8-digit serial: unique up to 99,999,999.
SERIAL_DIGITS = 8

# Uniform draws per customer for the profile (see World.profile_state).
PROFILE_DRAWS = 7

# Dropout probabilities are kept away from 0 so that the geometric draw stays finite.
_MIN_DROPOUT_PROB = 1e-6


@dataclass(frozen=True)
class World:
    """Every customer of the world, in acquisition order (row i has serial i + 1).

    Attributes
    ----------
    acquisition_day
        Day number of the first order.
    persona
        Index into ``PERSONAS``.
    market
        Position in ``MARKETS`` (market index - 1).
    platform_channel
        Index into ``PLATFORM_CHANNELS``.
    purchase_rate
        Latent BG/NBD lambda, repeat purchases per day while active.
    dropout_prob
        Latent BG/NBD p, chance of becoming inactive after each repeat purchase.
    dropout_after
        Number of repeat purchases after which the customer becomes inactive (Geometric(p)).
    quantity_multiplier
        Spend parameter: multiplies the persona's units per line (mean 1).
    discount_class
        Which pre-invoice discount range applies (see ``prices``).
    profile_state
        State of the customer stream before the uniform draws (7 x customers) for first name,
        last name, company, city, e-mail domain, occupation and birthday: ``profile_draws``
        redraws those of a block of customers (stored, they took 0.56 GiB at 10M customers).
    age_years
        Age at the start of history.
    """

    acquisition_day: np.ndarray
    persona: np.ndarray
    market: np.ndarray
    platform_channel: np.ndarray
    purchase_rate: np.ndarray
    dropout_prob: np.ndarray
    dropout_after: np.ndarray
    quantity_multiplier: np.ndarray
    discount_class: np.ndarray
    profile_state: dict
    age_years: np.ndarray

    def __len__(self) -> int:
        return len(self.acquisition_day)

    def profile_draws(self, rows: slice) -> np.ndarray:
        """The profile draws (7 x rows) of customers ``rows`` (a step-1 slice): row k of the
        7 x customers matrix the stream drew in one call is its draws k * customers onwards, one
        64-bit output each."""
        out = np.empty((PROFILE_DRAWS, rows.stop - rows.start))
        for k in range(PROFILE_DRAWS):
            bits = np.random.PCG64()
            bits.state = self.profile_state
            bits.advance(k * len(self) + rows.start)
            out[k] = np.random.Generator(bits).random(rows.stop - rows.start)
        return out

    def acquired_by(self, day: int) -> int:
        """Number of customers acquired on or before ``day`` (they are the first rows)."""
        return int(np.searchsorted(self.acquisition_day, day, side="right"))


def acquisition_weights(start_date: dt.date, history_days: int) -> np.ndarray:
    """Probability of each day of history being a customer's acquisition day.

    Mild exponential growth times the AtliQ seasonality, so more customers arrive later and in
    the holiday months.
    """
    days = day_number(start_date) + np.arange(history_days)
    month = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    growth = ACQUISITION_GROWTH ** (np.arange(history_days) / history_days)
    w = growth * SEASONALITY[month]
    return w / w.sum()


def draw_world(n_customers: int, seed: int, start_date: dt.date, history_days: int) -> World:
    """Draw every customer of the world from the customer-level stream.

    Parameters
    ----------
    n_customers
        Customers acquired over the whole history.
    seed
        Simulation seed.
    start_date, history_days
        Customers are acquired on days ``[start_date, start_date + history_days)``.

    Returns
    -------
    World
    """
    rng = np.random.default_rng([seed, CUSTOMER_STREAM])
    n = n_customers
    offsets = rng.choice(history_days, size=n, p=acquisition_weights(start_date, history_days))
    acquisition_day = day_number(start_date) + np.sort(offsets).astype(np.int64)

    persona = rng.choice(len(PERSONAS), size=n, p=persona_shares()).astype(np.int8)
    market = rng.choice(len(MARKETS), size=n, p=market_weights()).astype(np.int8)

    # Platform and channel from the persona's mix, by inverse CDF on one uniform per customer.
    mix = np.cumsum(np.array([p.channel_mix for p in PERSONAS]), axis=1)
    mix /= mix[:, -1:]
    u = rng.random(n)
    platform_channel = np.zeros(n, dtype=np.int8)
    for k in range(mix.shape[1] - 1):
        platform_channel += u >= mix[persona, k]

    rate = rng.gamma(persona_array("r")[persona], 1.0 / persona_array("alpha")[persona])
    dropout_prob = np.clip(
        rng.beta(persona_array("a")[persona], persona_array("b")[persona]), _MIN_DROPOUT_PROB, 1.0
    )
    dropout_after = rng.geometric(dropout_prob).astype(np.int64)
    shape = persona_array("spend_shape")[persona]
    multiplier = rng.gamma(shape, 1.0 / shape)

    # Not drawn now (see World.profile_state): the stream moves on as if they had been.
    profile_state = rng.bit_generator.state
    rng.bit_generator.advance(PROFILE_DRAWS * n)
    age_mean = persona_array("age_mean")[persona]
    # 18 plus a Gamma with shape 3: most customers within 15 years of their persona's mean age.
    age_years = np.minimum(18.0 + rng.gamma(3.0, (age_mean - 18.0) / 3.0), 90.0)

    business = np.array([p.business for p in PERSONAS])[persona]
    direct_bm = platform_channel == PLATFORM_CHANNELS.index(("Brick & Mortar", "Direct"))
    discount_class = np.where(
        direct_bm,
        prices.DISCOUNT_DIRECT_BM,
        np.where(business, prices.DISCOUNT_TRADE, prices.DISCOUNT_CONSUMER),
    ).astype(np.int8)

    return World(
        acquisition_day=acquisition_day,
        persona=persona,
        market=market,
        platform_channel=platform_channel,
        purchase_rate=rate,
        dropout_prob=dropout_prob,
        dropout_after=dropout_after,
        quantity_multiplier=multiplier,
        discount_class=discount_class,
        profile_state=profile_state,
        age_years=age_years,
    )


def customer_numbers(world: World, n: int) -> np.ndarray:
    """AtliQ-style customer codes of the first ``n`` customers, as integers (int64).

    Code = channel digit (7 Direct, 8 Distributor, 9 Retailer), two-digit market index and an
    8-digit serial. The leading digit is never 0, so ``str`` of the number is the zero-padded
    code (``texts.spelled``).
    """
    channel = np.array([CHANNEL_DIGIT[c] for _, c in PLATFORM_CHANNELS], dtype=np.int64)
    serial = np.arange(1, n + 1, dtype=np.int64)
    return (
        channel[world.platform_channel[:n]] * 10 ** (SERIAL_DIGITS + 2)
        + (world.market[:n].astype(np.int64) + 1) * 10**SERIAL_DIGITS
        + serial
    )


def customer_frame(
    world: World, rows: slice, codes: pa.Array, pools: Pools, start_date: dt.date
) -> pd.DataFrame:
    """raw ``customers`` for rows ``rows`` (a step-1 slice) of the world, whose codes are
    ``codes`` (``texts.spelled`` of ``customer_numbers``). Every value depends on its own row only,
    so the table can be built block by block.

    Strings are assembled from the Faker pools with numpy indexing and numpy's string dtype,
    never per customer, and handed to pandas in Arrow (``texts.column``): Python strings per
    customer took twice the time.
    """
    market = world.market[rows].astype(np.int64)
    persona = world.persona[rows]
    draws = world.profile_draws(rows)
    business = np.array([p.business for p in PERSONAS])[persona]
    serial = np.arange(rows.start + 1, rows.stop + 1).astype(TEXT)

    first_idx = pools.first_names.pick(market, draws[0])
    last_idx = pools.last_names.pick(market, draws[1])
    company_idx = pools.companies.pick(market, draws[2])
    family_first = np.array([m.family_name_first for m in MARKETS])[market]

    first = pools.first_names.values.astype(TEXT)[first_idx]
    last = pools.last_names.values.astype(TEXT)[last_idx]
    person_name = np.where(family_first, last + first, first + " " + last)
    name = np.where(business, pools.companies.values.astype(TEXT)[company_idx], person_name)

    first_handle = pools.first_handles.astype(TEXT)[first_idx]
    last_handle = pools.last_handles.astype(TEXT)[last_idx]
    domain = pools.email_domains.values.astype(TEXT)[pools.email_domains.pick(market, draws[4])]
    has_handle = (first_handle != "") & (last_handle != "")
    person_email = np.where(
        has_handle,
        first_handle + "." + last_handle + serial + "@" + domain,
        "customer" + serial + "@" + domain,
    )
    company_handle = pools.company_handles.astype(TEXT)[company_idx]
    company_handle = np.where(company_handle == "", "trade", company_handle)
    business_email = "orders" + serial + "@" + company_handle + ".com"
    email = np.where(business, business_email, person_email)

    # one pick from both lists: the business ones first
    occupations = np.concatenate([pools.business_occupations, pools.occupations])
    occupation = np.where(
        business,
        (draws[5] * len(pools.business_occupations)).astype(np.int64),
        len(pools.business_occupations) + (draws[5] * len(pools.occupations)).astype(np.int64),
    )
    birth_day = (
        day_number(start_date)
        - np.floor(world.age_years[rows] * 365.25).astype(np.int64)
        - (draws[6] * 365).astype(np.int64)
    )

    platform_channel = world.platform_channel[rows]
    return pd.DataFrame(
        {
            "customer_code": picked(codes, rows),
            "customer": column(name),
            "platform": picked([p for p, _ in PLATFORM_CHANNELS], platform_channel),
            "channel": picked([c for _, c in PLATFORM_CHANNELS], platform_channel),
            "market": picked([m.name for m in MARKETS], market),
            "sub_zone": picked([m.sub_zone for m in MARKETS], market),
            "region": picked([m.region for m in MARKETS], market),
            "city": picked(pools.cities.values, pools.cities.pick(market, draws[3])),
            "email": column(email),
            "occupation": picked(occupations, occupation),
            "date_of_birth": to_datetime64(birth_day),
        }
    )

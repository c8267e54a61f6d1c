"""Faker string pools, built once per seed and combined with numpy indices.

Calling Faker per customer would take minutes at a million customers, so Faker only fills
small pools (names, cities, companies and e-mail domains per market, occupations); customers
pick from them by index. Each pool is drawn from a Faker instance seeded from the simulation
seed and the market, so pools are reproducible and independent of the number of customers.
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
from faker import Faker, factory

from .geography import MARKETS

FIRST_NAMES_PER_MARKET = 150
LAST_NAMES_PER_MARKET = 150
CITIES_PER_MARKET = 30
COMPANIES_PER_MARKET = 60
EMAIL_DOMAINS_PER_MARKET = 6
OCCUPATIONS = 300

# Job titles of the buyer behind a business account.
BUSINESS_OCCUPATIONS: tuple[str, ...] = (
    "Purchasing manager",
    "Retail buyer",
    "Procurement specialist",
    "Store owner",
    "Operations manager",
    "IT reseller",
)


@dataclass(frozen=True)
class FlatPool:
    """Per-market string pools concatenated into one array.

    Market ``m`` owns ``values[offsets[m] : offsets[m] + sizes[m]]``, so one vectorised
    ``offsets[m] + floor(u * sizes[m])`` picks a value for every customer at once.
    """

    values: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray

    def pick(self, market: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Index of a pool value for each (market position, uniform draw) pair."""
        sizes = self.sizes[market]
        return self.offsets[market] + np.minimum((u * sizes).astype(np.int64), sizes - 1)


@dataclass(frozen=True)
class Pools:
    """Every string pool the customer generator needs.

    ``*_handles`` are ASCII, lowercase, letters-only versions of the matching names, for e-mail
    addresses; they are empty when the name has no Latin letters.
    """

    first_names: FlatPool
    first_handles: np.ndarray
    last_names: FlatPool
    last_handles: np.ndarray
    cities: FlatPool
    companies: FlatPool
    company_handles: np.ndarray
    email_domains: FlatPool
    occupations: np.ndarray
    business_occupations: np.ndarray


def ascii_handle(text: str) -> str:
    """Lowercase ASCII letters of ``text`` (accents folded), for e-mail local parts and domains."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z]", "", folded.lower())


def _draw(generate, target: int, unique: bool, max_tries: int) -> list[str]:
    """Call ``generate`` until ``target`` values (distinct if ``unique``) or ``max_tries`` calls."""
    values: list[str] = []
    seen: set[str] = set()
    for _ in range(max_tries):
        value = generate()
        if unique and value in seen:
            continue
        seen.add(value)
        values.append(value)
        if len(values) >= target:
            break
    return values


def _stable_faker(locale: str, seed: str) -> Faker:
    """A seeded Faker whose output does not depend on ``PYTHONHASHSEED``.

    Faker's it_IT address provider builds its city list from a set, so the list order, and with
    it every ``city()`` draw, changes from one Python process to the next. Sorting such lists on
    this instance (the class stays untouched) makes the pools reproducible across processes.
    """
    fake = Faker(locale)
    fake.seed_instance(seed)
    for provider in fake.providers:
        cities = getattr(provider, "cities", None)
        if isinstance(cities, list):
            provider.cities = sorted(cities)
    return fake


@contextlib.contextmanager
def _locales_listed_once():
    """Faker lists the locale folders of each of its ~25 providers on the disk (``pkgutil``, a
    directory scan each) again for every new locale, and the pools use 28 Faker instances: the
    scans were most of the simulator's start (0.5-0.9 s of CPU). Within the block each
    provider's folder is listed once; the listing is the same, so are the instances."""
    listed = factory.list_module
    cached = functools.lru_cache(maxsize=None)(listed)
    factory.list_module = cached
    try:
        yield
    finally:
        factory.list_module = listed


def _flat(per_market: list[list[str]]) -> FlatPool:
    sizes = np.array([len(v) for v in per_market], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    values = np.array([s for v in per_market for s in v], dtype=object)
    return FlatPool(values=values, offsets=offsets, sizes=sizes)


@functools.lru_cache(maxsize=8)
def build_pools(seed: int) -> Pools:
    """Build (and cache per process) the Faker pools for a seed.

    Parameters
    ----------
    seed
        Simulation seed; each market's Faker instance is seeded with ``"{seed}:{market}"``.

    Returns
    -------
    Pools
    """
    first, last, cities, companies, domains = [], [], [], [], []
    with _locales_listed_once():
        for market in MARKETS:
            fake = _stable_faker(market.locale, f"{seed}:{market.index}")
            first.append(
                _draw(fake.first_name, FIRST_NAMES_PER_MARKET, False, FIRST_NAMES_PER_MARKET)
            )
            last.append(_draw(fake.last_name, LAST_NAMES_PER_MARKET, False, LAST_NAMES_PER_MARKET))
            cities.append(_draw(fake.city, CITIES_PER_MARKET, True, CITIES_PER_MARKET * 10))
            companies.append(
                _draw(fake.company, COMPANIES_PER_MARKET, True, COMPANIES_PER_MARKET * 5)
            )
            domains.append(_draw(fake.free_email_domain, EMAIL_DOMAINS_PER_MARKET, True, 60))
        english = _stable_faker("en_US", f"{seed}:occupations")
        occupations = sorted(_draw(english.job, OCCUPATIONS, True, OCCUPATIONS * 20))

    first_pool, last_pool, company_pool = _flat(first), _flat(last), _flat(companies)
    handles = np.vectorize(ascii_handle, otypes=[object])
    return Pools(
        first_names=first_pool,
        first_handles=handles(first_pool.values),
        last_names=last_pool,
        last_handles=handles(last_pool.values),
        cities=_flat(cities),
        companies=company_pool,
        company_handles=handles(company_pool.values),
        email_domains=_flat(domains),
        occupations=np.array(occupations, dtype=object),
        business_occupations=np.array(BUSINESS_OCCUPATIONS, dtype=object),
    )

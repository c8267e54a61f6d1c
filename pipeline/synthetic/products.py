"""The AtliQ product catalogue: 397 codes in the real division/segment/category hierarchy.

The hierarchy, product families, variant label sets and gross-price ranges follow
``reference/atliq-facts.md`` section 2-3. Codes are ``A PP YY DD NN VV``: product number
(01-73, unique per product), launch year, division code (15 P & A, 11 PC, 16 N & S), number of
the product within its category and variant number, so every code is unique by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DIVISIONS: tuple[str, ...] = ("P & A", "PC", "N & S")
SEGMENTS: tuple[str, ...] = (
    "Peripherals",
    "Accessories",
    "Notebook",
    "Desktop",
    "Storage",
    "Networking",
)
_DIVISION_CODE = {"P & A": 15, "PC": 11, "N & S": 16}

# Variant label sets seen in AtliQ, by product family.
_V3 = ("Standard", "Plus", "Premium")
_V4 = ("Standard", "Plus 1", "Plus 2", "Premium")
_V5 = ("Standard", "Plus 1", "Plus 2", "Plus 3", "Premium")
_V6 = ("Standard 1", "Standard 2", "Plus 1", "Plus 2", "Premium 1", "Premium 2")
_V8 = (
    "Standard 1",
    "Standard 2",
    "Standard 3",
    "Plus 1",
    "Plus 2",
    "Plus 3",
    "Premium 1",
    "Premium 2",
)
_COLOUR7 = (
    "Standard Grey",
    "Standard Blue",
    "Standard Red",
    "Plus Grey",
    "Plus Blue",
    "Plus Red",
    "Premium Black",
)
_COLOUR8 = _COLOUR7 + ("Premium Misty Green",)
_GAMING8 = (
    "Standard Firey Red",
    "Standard Cool Blue",
    "Standard Black",
    "Plus Firey Red",
    "Plus Cool Blue",
    "Plus Black",
    "Premium Firey Red",
    "Premium Black",
)
_KEYBOARD_MOUSE = (
    "AQ Master wired x1",
    "AQ Master wireless x1",
    "AQ Gamers",
    "AQ Lite",
    "AQ Maxima",
    "AQ Qwerty",
    "AQ Trigger",
    "AQ Lumina",
)


@dataclass(frozen=True)
class Category:
    """One product category and how it sells.

    Attributes
    ----------
    key
        Internal identifier; personas weight categories by key. Needed because AtliQ uses the
        category name "Business Laptop" in both the Notebook and the Desktop segment.
    division, segment, name
        The AtliQ hierarchy.
    price_range
        (min, max) gross price in AtliQ FY2018-22; base prices are drawn inside it.
    quantity_factor
        Units per order line relative to accessories: PCs sell in far smaller quantities.
    products
        (product name, variant labels) per product family.
    """

    key: str
    division: str
    segment: str
    name: str
    price_range: tuple[float, float]
    quantity_factor: float
    products: tuple[tuple[str, tuple[str, ...]], ...]


CATEGORIES: tuple[Category, ...] = (
    Category(
        "graphic_card",
        "P & A",
        "Peripherals",
        "Graphic Card",
        (14.1, 48.4),
        0.5,
        (
            ("AQ Mforce Gen X", _V8),
            ("AQ Mforce Gen Y", _V8),
            ("AQ Mforce Gen Z", _V8),
            ("AQ GT 21", _V4),
            ("AQ Marquee P3", _V4),
            ("AQ Marquee P4", _V4),
        ),
    ),
    Category(
        "internal_hdd",
        "P & A",
        "Peripherals",
        "Internal HDD",
        (14.4, 30.3),
        0.5,
        (
            ("AQ Dracula HDD – 3.5 Inch SATA 6 Gb/s 5400 RPM 256 MB Cache", _V3),
            ("AQ WereWolf NAS Internal Hard Drive HDD – 8.89 cm", _V3),
            ("AQ Zion Saga", _V4),
        ),
    ),
    Category(
        "motherboard",
        "P & A",
        "Peripherals",
        "MotherBoard",
        (15.0, 47.7),
        0.5,
        (
            ("AQ MB Crossx", _V4),
            ("AQ MB Elite", _V4),
            ("AQ MB Lito", _V4),
            ("AQ MB Crossx 2", _V4),
            ("AQ MB Lito 2", _V4),
        ),
    ),
    Category(
        "processors",
        "P & A",
        "Peripherals",
        "Processors",
        (94.9, 215.0),
        0.4,
        (
            ("AQ Electron 3 3600 Desktop Processor", _V3),
            ("AQ Electron 4 3600 Desktop Processor", _V3),
            ("AQ Electron 5 3600 Desktop Processor", _V3),
            ("AQ 5000 Series Electron 8 5900X Desktop Processor", _V3),
            ("AQ 5000 Series Electron 9 5900X Desktop Processor", _V3),
            ("AQ 5000 Series Ultron 8 5900X Desktop Processor", _V3),
        ),
    ),
    Category(
        "batteries",
        "P & A",
        "Accessories",
        "Batteries",
        (13.6, 32.2),
        1.0,
        (("AQ LION x1", _V5), ("AQ LION x2", _V5), ("AQ LION x3", _V5), ("AQ Mx NB", _V5)),
    ),
    Category(
        "keyboard",
        "P & A",
        "Accessories",
        "Keyboard",
        (5.1, 41.3),
        1.0,
        tuple((name, _V6) for name in _KEYBOARD_MOUSE),
    ),
    Category(
        "mouse",
        "P & A",
        "Accessories",
        "Mouse",
        (2.84, 26.0),
        1.0,
        tuple((f"{name} Ms", _V6) for name in _KEYBOARD_MOUSE),
    ),
    Category(
        "business_laptop",
        "PC",
        "Notebook",
        "Business Laptop",
        (354.0, 616.0),
        0.12,
        (
            ("AQ BZ 101", _COLOUR7),
            ("AQ BZ Compact", _COLOUR7),
            ("AQ BZ Gen Y", _COLOUR7),
            ("AQ BZ Gen Z", _COLOUR7),
        ),
    ),
    Category(
        "gaming_laptop",
        "PC",
        "Notebook",
        "Gaming Laptop",
        (450.0, 800.0),
        0.12,
        (
            ("AQ Gamer 1", _GAMING8),
            ("AQ Gamer 2", _GAMING8),
            ("AQ Gamer 3", _GAMING8),
            ("AQ Smash 1", _GAMING8),
            ("AQ Smash 2", _GAMING8),
        ),
    ),
    Category(
        "personal_laptop",
        "PC",
        "Notebook",
        "Personal Laptop",
        (132.0, 461.0),
        0.12,
        (
            ("AQ Aspiron", _COLOUR8),
            ("AQ Digit", _COLOUR8),
            ("AQ Velocity", _COLOUR8),
            ("AQ Elite", _COLOUR8),
            ("AQ Gen X", _COLOUR8),
            ("AQ Gen Y", _COLOUR7),
            ("AQ GEN Z", _COLOUR7),
            ("AQ F16", _COLOUR7),
        ),
    ),
    Category(
        "business_desktop",
        "PC",
        "Desktop",
        "Business Laptop",
        (681.0, 860.0),
        0.12,
        (("AQ BZ Allin1", _V8), ("AQ BZ Allin1 Gen 2", _V8)),
    ),
    Category(
        "personal_desktop",
        "PC",
        "Desktop",
        "Personal Desktop",
        (626.0, 890.0),
        0.12,
        (("AQ Home Allin1", _V8), ("AQ HOME Allin1 Gen 2", _V8)),
    ),
    Category(
        "external_ssd",
        "N & S",
        "Storage",
        "External SSD",
        (12.2, 25.7),
        0.7,
        (
            ("AQ Digit SSD", _V3),
            ("AQ Neuer SSD", _V3),
            ("AQ Clx1", _V3),
            ("AQ Clx2", _V3),
            ("AQ Clx3", _V3),
        ),
    ),
    Category(
        "usb_flash",
        "N & S",
        "Storage",
        "USB Flash Drives",
        (2.97, 5.3),
        1.0,
        (
            ("AQ Pen Drive 2 IN 1", _V3),
            ("AQ Pen Drive DRC", _V3),
            ("AQ Ultra Dual 2.0", _V3),
            ("AQ Ultra Dual 3.0", _V3),
        ),
    ),
    Category(
        "wifi_extender",
        "N & S",
        "Networking",
        "Wi fi extender",
        (23.4, 46.0),
        0.5,
        (("AQ Wi Power Dx1", _V3), ("AQ Wi Power Dx2", _V3), ("AQ Wi Power Dx3", _V3)),
    ),
)

CATEGORY_KEYS: tuple[str, ...] = tuple(c.key for c in CATEGORIES)

# Variants of one product differ by about 1.08-1.35x in AtliQ; the dearest is not always the
# "highest" label, so multipliers are drawn, not ranked.
_VARIANT_SPREAD = 1.3


@dataclass(frozen=True)
class Catalogue:
    """The product dimension plus the arrays the simulator samples from.

    Attributes
    ----------
    frame
        raw ``products``: product_code, division, segment, category, product, variant.
    category_index
        Index into ``CATEGORIES`` of each product (row order of ``frame``).
    base_price
        Gross price of each product in the first simulated fiscal year.
    popularity
        Probability of each product within its category (sums to 1 per category).
    """

    frame: pd.DataFrame
    category_index: np.ndarray
    base_price: np.ndarray
    popularity: np.ndarray

    @property
    def codes(self) -> np.ndarray:
        """product_code of each product, as an object array for cheap fancy indexing."""
        return self.frame["product_code"].to_numpy(dtype=object)

    def category_offsets(self) -> np.ndarray:
        """Start row of each category in ``frame`` (grouped by category), plus the end."""
        counts = np.bincount(self.category_index, minlength=len(CATEGORIES))
        return np.concatenate([[0], np.cumsum(counts)])


def build_catalogue(rng: np.random.Generator, first_fiscal_year: int) -> Catalogue:
    """Build the product catalogue.

    Parameters
    ----------
    rng
        The catalogue's own stream: launch years, prices and popularity come from it.
    first_fiscal_year
        Fiscal year of the start of history; launch years are the 4 years before it, like
        AtliQ's 18-21 codes for a 2018-2022 history.

    Returns
    -------
    Catalogue
    """
    rows: list[tuple[str, str, str, str, str, str]] = []
    category_index: list[int] = []
    product_number = 0
    for c_idx, category in enumerate(CATEGORIES):
        for number_in_category, (product, variants) in enumerate(category.products, start=1):
            product_number += 1
            launch = int(rng.integers(first_fiscal_year - 4, first_fiscal_year)) % 100
            for v_number, variant in enumerate(variants, start=1):
                code = (
                    f"A{product_number:02d}{launch:02d}{_DIVISION_CODE[category.division]}"
                    f"{number_in_category:02d}{v_number:02d}"
                )
                rows.append(
                    (code, category.division, category.segment, category.name, product, variant)
                )
                category_index.append(c_idx)
    frame = pd.DataFrame(
        rows, columns=["product_code", "division", "segment", "category", "product", "variant"]
    )
    cat_idx = np.asarray(category_index, dtype=np.int64)
    return Catalogue(
        frame=frame,
        category_index=cat_idx,
        base_price=_base_prices(rng, frame, cat_idx),
        popularity=_popularity(rng, cat_idx),
    )


def _base_prices(rng: np.random.Generator, frame: pd.DataFrame, cat_idx: np.ndarray) -> np.ndarray:
    """A log-uniform price level per product inside its category's range, times a variant spread.

    The level range is shrunk so that variant spread and a few years of drift stay near the
    AtliQ range.
    """
    lo = np.array([CATEGORIES[i].price_range[0] for i in cat_idx]) * 1.02
    hi = np.array([CATEGORIES[i].price_range[1] for i in cat_idx]) / (_VARIANT_SPREAD * 1.15)
    hi = np.maximum(hi, lo * 1.05)
    # One level per product family: variants of the same product share it.
    family = pd.factorize(frame["product"] + "|" + frame["category"])[0]
    n_families = int(family.max()) + 1
    u_family = rng.random(n_families)
    level = np.exp(np.log(lo) + u_family[family] * (np.log(hi) - np.log(lo)))
    spread = rng.uniform(1.0, _VARIANT_SPREAD, size=len(frame))
    return level * spread


def _popularity(rng: np.random.Generator, cat_idx: np.ndarray) -> np.ndarray:
    """Skewed product popularity within each category (a few best sellers, a long tail)."""
    raw = rng.gamma(0.8, size=len(cat_idx))
    totals = np.bincount(cat_idx, weights=raw)
    return raw / totals[cat_idx]

"""The 27 AtliQ markets: their codes, sub-zones, regions, weights and Faker locales.

The market index is the ``MM`` part of an AtliQ customer code (01 China ... 27 Brazil), so the
table below is in that order. Weights follow AtliQ's FY2021 net-sales shares (India and USA
biggest); markets the public sources do not rank get plausible small shares. Because the
simulated spend per customer does not depend on the market, customer shares equal sales shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Market:
    """One AtliQ market.

    Attributes
    ----------
    index
        The two-digit ``MM`` of the customer code (1-27).
    name
        Market name, spelled as in AtliQ ("Philiphines", "Newzealand", "Columbia").
    sub_zone, region
        Each market has exactly one sub-zone and one region.
    weight
        Relative share of customers (percent of AtliQ net sales).
    locale
        Faker locale used for the market's names, cities and company names.
    family_name_first
        Whether a person's name is written family name first, without a space (CJK).
    """

    index: int
    name: str
    sub_zone: str
    region: str
    weight: float
    locale: str
    family_name_first: bool = False


MARKETS: tuple[Market, ...] = (
    Market(1, "China", "ROA", "APAC", 3.63, "zh_CN", True),
    Market(2, "India", "India", "APAC", 25.57, "en_IN"),
    Market(3, "Indonesia", "ROA", "APAC", 2.94, "id_ID"),
    Market(4, "Japan", "ROA", "APAC", 2.50, "ja_JP", True),
    Market(5, "Pakistan", "ROA", "APAC", 1.40, "en_PK"),
    Market(6, "Philiphines", "ROA", "APAC", 5.08, "en_PH"),
    Market(7, "South Korea", "ROA", "APAC", 7.77, "ko_KR", True),
    Market(8, "Australia", "ANZ", "APAC", 3.35, "en_AU"),
    Market(9, "Newzealand", "ANZ", "APAC", 1.20, "en_NZ"),
    Market(10, "Bangladesh", "ROA", "APAC", 1.30, "bn_BD"),
    Market(11, "France", "SE", "EU", 4.59, "fr_FR"),
    Market(12, "Germany", "NE", "EU", 2.60, "de_DE"),
    Market(13, "Italy", "SE", "EU", 2.20, "it_IT"),
    Market(14, "Netherlands", "NE", "EU", 1.70, "nl_NL"),
    Market(15, "Norway", "NE", "EU", 1.80, "no_NO"),
    Market(16, "Poland", "NE", "EU", 1.50, "pl_PL"),
    Market(17, "Portugal", "SE", "EU", 1.40, "pt_PT"),
    Market(18, "Spain", "SE", "EU", 2.00, "es_ES"),
    Market(19, "Sweden", "NE", "EU", 0.90, "sv_SE"),
    Market(20, "Austria", "NE", "EU", 0.80, "de_AT"),
    Market(21, "United Kingdom", "NE", "EU", 5.43, "en_GB"),
    Market(22, "USA", "NA", "NA", 16.03, "en_US"),
    Market(23, "Canada", "NA", "NA", 5.57, "en_CA"),
    Market(24, "Chile", "LATAM", "LATAM", 0.20, "es_CL"),
    Market(25, "Columbia", "LATAM", "LATAM", 0.05, "es_CO"),
    Market(26, "Mexico", "LATAM", "LATAM", 0.30, "es_MX"),
    Market(27, "Brazil", "LATAM", "LATAM", 0.30, "pt_BR"),
)

REGIONS: tuple[str, ...] = ("APAC", "EU", "NA", "LATAM")
SUB_ZONES: tuple[str, ...] = ("India", "ROA", "ANZ", "NE", "SE", "NA", "LATAM")


def market_weights() -> np.ndarray:
    """Probability of each market (in ``MARKETS`` order) for a new customer."""
    weights = np.array([m.weight for m in MARKETS], dtype=float)
    return weights / weights.sum()


def market_frame() -> pd.DataFrame:
    """The market dimension as a frame: index, market, sub_zone, region."""
    return pd.DataFrame(
        {
            "market_index": [m.index for m in MARKETS],
            "market": [m.name for m in MARKETS],
            "sub_zone": [m.sub_zone for m in MARKETS],
            "region": [m.region for m in MARKETS],
        }
    )

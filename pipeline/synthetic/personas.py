"""Customer personas: the latent types that drive who buys what, how often and for how long.

Every customer belongs to one persona. Within a persona, customers differ through the BG/NBD
latent variables (purchase rate ``lambda ~ Gamma(r, alpha)`` per day and dropout probability
``p ~ Beta(a, b)``) and a spend multiplier (``Gamma(k, 1/k)``, mean 1). So the population is a
mixture of BG/NBD populations: a single BG/NBD fit is an approximation, as on real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .products import CATEGORY_KEYS

# Platform x channel combinations, in the order of ``Persona.channel_mix``.
PLATFORM_CHANNELS: tuple[tuple[str, str], ...] = (
    ("Brick & Mortar", "Direct"),
    ("Brick & Mortar", "Distributor"),
    ("Brick & Mortar", "Retailer"),
    ("E-Commerce", "Direct"),
    ("E-Commerce", "Retailer"),
)
PLATFORMS: tuple[str, ...] = ("Brick & Mortar", "E-Commerce")
CHANNELS: tuple[str, ...] = ("Direct", "Distributor", "Retailer")


@dataclass(frozen=True)
class Persona:
    """Hyperparameters of one persona.

    Attributes
    ----------
    name
        Persona label written to the truth schema.
    share
        Share of customers.
    r, alpha
        Gamma prior of the purchase rate per day (mean ``r / alpha``), as lifetimes
        parameterises BG/NBD with time in days.
    a, b
        Beta prior of the dropout probability after each repeat purchase (mean ``a / (a + b)``).
    category_weights
        Probability of each product category (by ``Category.key``) on an order line.
    extra_lines
        Mean of the Poisson number of order lines beyond the first.
    units
        Mean units per line of an accessory for an average customer; other categories scale it
        by ``Category.quantity_factor``.
    spend_shape
        Shape ``k`` of the customer's quantity multiplier ``Gamma(k, 1/k)``: smaller = more
        spread in spend between customers.
    channel_mix
        Probability of each entry of ``PLATFORM_CHANNELS``.
    business
        Whether the customer is a business (company name, trade discount) or a person.
    age_mean
        Mean age in years of the person (or of a business's buyer) at the start of history.
    """

    name: str
    share: float
    r: float
    alpha: float
    a: float
    b: float
    category_weights: dict[str, float]
    extra_lines: float
    units: float
    spend_shape: float
    channel_mix: tuple[float, float, float, float, float]
    business: bool
    age_mean: float

    def category_vector(self) -> np.ndarray:
        """``category_weights`` as a probability vector in ``CATEGORY_KEYS`` order."""
        unknown = set(self.category_weights) - set(CATEGORY_KEYS)
        if unknown:
            raise ValueError(f"persona {self.name!r}: unknown categories {sorted(unknown)}")
        w = np.array([self.category_weights.get(k, 0.0) for k in CATEGORY_KEYS])
        return w / w.sum()


# Chosen so that, at the pipeline defaults (three years of acquisitions, as-of date three months
# after the last one), customers average about 3 orders and 6.5 order lines, about 30% never buy
# again (frequency 0) and a long tail buys often: a population BG/NBD can fit. Bulk resellers
# are 5% of customers but about half of gross sales. The overall platform x channel mix is close
# to AtliQ's customer list (B&M Retailer ~60%, E-Commerce ~31%, B&M Direct ~7%, Distributor ~1.5%)
# and gross sales by channel to AtliQ's (Retailer ~72%, Distributor ~19%, Direct ~9%).
PERSONAS: tuple[Persona, ...] = (
    Persona(
        name="gamer",
        share=0.22,
        r=1.5,
        alpha=260.0,  # mean 0.0058/day, about 2.1 purchases a year
        a=1.2,
        b=4.8,  # mean p 0.20
        category_weights={
            "graphic_card": 0.18,
            "processors": 0.08,
            "motherboard": 0.07,
            "internal_hdd": 0.04,
            "mouse": 0.16,
            "keyboard": 0.14,
            "gaming_laptop": 0.15,
            "personal_laptop": 0.03,
            "external_ssd": 0.08,
            "usb_flash": 0.03,
            "wifi_extender": 0.04,
        },
        extra_lines=0.8,
        units=1.4,
        spend_shape=3.0,
        channel_mix=(0.04, 0.0, 0.50, 0.16, 0.30),
        business=False,
        age_mean=27.0,
    ),
    Persona(
        name="office_buyer",
        share=0.20,
        r=2.0,
        alpha=320.0,  # mean 0.0063/day, about 2.3 a year
        a=1.5,
        b=8.5,  # mean p 0.15
        category_weights={
            "business_laptop": 0.22,
            "business_desktop": 0.10,
            "keyboard": 0.14,
            "mouse": 0.14,
            "batteries": 0.08,
            "usb_flash": 0.10,
            "external_ssd": 0.08,
            "wifi_extender": 0.08,
            "personal_laptop": 0.03,
            "internal_hdd": 0.03,
        },
        extra_lines=1.2,
        units=2.5,
        spend_shape=2.0,
        channel_mix=(0.10, 0.0, 0.66, 0.10, 0.14),
        business=False,
        age_mean=41.0,
    ),
    Persona(
        name="bulk_reseller",
        share=0.05,
        r=3.0,
        alpha=160.0,  # mean 0.019/day, about 7 orders a year
        a=1.0,
        b=14.0,  # mean p 0.067
        category_weights={
            "graphic_card": 0.05,
            "internal_hdd": 0.04,
            "motherboard": 0.04,
            "processors": 0.04,
            "batteries": 0.08,
            "keyboard": 0.17,
            "mouse": 0.18,
            "business_laptop": 0.04,
            "gaming_laptop": 0.03,
            "personal_laptop": 0.06,
            "business_desktop": 0.02,
            "personal_desktop": 0.02,
            "external_ssd": 0.06,
            "usb_flash": 0.12,
            "wifi_extender": 0.05,
        },
        extra_lines=3.0,
        units=25.0,
        spend_shape=1.5,
        channel_mix=(0.0, 0.30, 0.60, 0.0, 0.10),
        business=True,
        age_mean=45.0,
    ),
    Persona(
        name="bargain_accessory_buyer",
        share=0.31,
        r=1.0,
        alpha=150.0,  # mean 0.0067/day, about 2.4 a year
        a=2.0,
        b=5.0,  # mean p 0.29
        category_weights={
            "mouse": 0.25,
            "keyboard": 0.18,
            "usb_flash": 0.22,
            "batteries": 0.15,
            "external_ssd": 0.10,
            "wifi_extender": 0.07,
            "internal_hdd": 0.03,
        },
        extra_lines=0.9,
        units=1.8,
        spend_shape=4.0,
        channel_mix=(0.06, 0.0, 0.60, 0.10, 0.24),
        business=False,
        age_mean=35.0,
    ),
    Persona(
        name="one_off_laptop_buyer",
        share=0.22,
        r=0.8,
        alpha=600.0,  # mean 0.0013/day, about 0.5 a year
        a=3.0,
        b=3.0,  # mean p 0.5
        category_weights={
            "personal_laptop": 0.50,
            "personal_desktop": 0.15,
            "business_laptop": 0.05,
            "gaming_laptop": 0.05,
            "mouse": 0.10,
            "keyboard": 0.05,
            "external_ssd": 0.05,
            "batteries": 0.05,
        },
        extra_lines=0.5,
        units=1.2,
        spend_shape=5.0,
        channel_mix=(0.12, 0.0, 0.66, 0.10, 0.12),
        business=False,
        age_mean=38.0,
    ),
)

PERSONA_NAMES: tuple[str, ...] = tuple(p.name for p in PERSONAS)


def persona_shares() -> np.ndarray:
    """Probability of each persona, in ``PERSONAS`` order."""
    shares = np.array([p.share for p in PERSONAS])
    return shares / shares.sum()


def category_matrix() -> np.ndarray:
    """Cumulative category probabilities, one row per persona (for inverse-CDF sampling)."""
    return np.cumsum(np.stack([p.category_vector() for p in PERSONAS]), axis=1)


def persona_array(attribute: str) -> np.ndarray:
    """One numeric persona attribute as an array indexed by persona number."""
    return np.array([getattr(p, attribute) for p in PERSONAS], dtype=float)

"""Small simulated worlds shared by the simulator tests (built once per test session)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from pipeline.synthetic import SimulationConfig, SyntheticData, simulate

# The pipeline's defaults (start 2023-09-01, three years of acquisitions, as-of 2026-11-24)
# at a small scale.
BASE = SimulationConfig(
    customers=1500,
    seed=11,
    start_date=dt.date(2023, 9, 1),
    history_days=1095,
    as_of=dt.date(2026, 11, 24),
    truth_horizon_days=365,
)
# An earlier cut of the same world, in the middle of acquisitions and of a fiscal year.
EARLY_AS_OF = dt.date(2025, 6, 15)


@pytest.fixture(scope="session")
def config() -> SimulationConfig:
    return BASE


@pytest.fixture(scope="session")
def data() -> SyntheticData:
    return simulate(BASE)


@pytest.fixture(scope="session")
def early_config() -> SimulationConfig:
    return dataclasses.replace(BASE, as_of=EARLY_AS_OF)


@pytest.fixture(scope="session")
def early_data(early_config) -> SyntheticData:
    return simulate(early_config)


@pytest.fixture(scope="session")
def big_data() -> SyntheticData:
    """More customers, for the statistical checks (still well under a second)."""
    return simulate(dataclasses.replace(BASE, customers=6000, seed=5))

"""Real data sets shared by the CLTV tests."""

from __future__ import annotations

import importlib.resources

import pandas as pd
import pytest

# Read the shipped files directly: lifetimes.datasets imports pkg_resources (gone in setuptools 82).
DATASETS = importlib.resources.files("lifetimes") / "datasets"


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    """The CDNOW summary (2,357 customers, time in weeks) under customer_summary's names."""
    frame = pd.read_csv(DATASETS / "cdnow_customers_summary.csv")
    frame = frame.rename(columns={"ID": "customer_code", "T": "t"})
    frame["has_orders"] = True
    return frame

"""Real data sets shared by the CLTV tests."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pandas as pd
import pytest

from pipeline import warehouse
from pipeline.engine.duckdb_tables import DuckDBTables

# Read the shipped files directly: lifetimes.datasets imports pkg_resources (gone in setuptools 82).
DATASETS = importlib.resources.files("lifetimes") / "datasets"


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    """The CDNOW summary (2,357 customers, time in weeks) under customer_summary's names."""
    frame = pd.read_csv(DATASETS / "cdnow_customers_summary.csv")
    frame = frame.rename(columns={"ID": "customer_code", "T": "t"})
    frame["has_orders"] = True
    return frame


@contextmanager
def warehouse_with(path, tables: dict[str, pd.DataFrame]) -> Iterator[DuckDBTables]:
    """A real DuckDB warehouse file at ``path`` holding ``tables`` ("schema.table" -> frame),
    as the engine's table store."""
    with duckdb.connect(str(path)) as conn:
        for name, frame in tables.items():
            schema, table = name.split(".")
            warehouse.replace_tables(conn, schema, {table: frame})
        yield DuckDBTables(conn)

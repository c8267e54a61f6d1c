"""Hand-made raw tables for tests that run dbt on small, known data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipeline import warehouse

FISCAL_YEARS = range(2020, 2030)


def random_order_lines(
    n_customers: int, as_of: dt.date, seed: int = 0, days: int = 700
) -> pd.DataFrame:
    """Order lines with repeat days, several orders on one day and several lines per order."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        first = as_of - dt.timedelta(days=int(rng.integers(0, days)))
        n_orders = int(rng.integers(1, 6))
        offsets = np.sort(rng.integers(0, (as_of - first).days + 1, n_orders - 1))
        dates = [first] + [first + dt.timedelta(days=int(o)) for o in offsets]
        for o, date in enumerate(dates):
            for line in range(1, int(rng.integers(1, 4)) + 1):
                rows.append(
                    {
                        "order_id": f"O{c:04d}-{o}",
                        "line_number": line,
                        "order_date": pd.Timestamp(date),
                        "customer_code": f"C{c:04d}",
                        "product_code": f"P{int(rng.integers(0, 3))}",
                        "sold_quantity": int(rng.integers(1, 5)),
                    }
                )
    return pd.DataFrame(rows)


def write_raw(database: Path, order_lines: pd.DataFrame, extra_customers: int = 0) -> None:
    """Write raw.* with dimensions derived from the order lines (prices drift by fiscal year)."""
    codes = sorted(order_lines["customer_code"].unique()) + [
        f"NOORDER{i}" for i in range(extra_customers)
    ]
    customers = pd.DataFrame(
        {
            "customer_code": codes,
            "customer": [f"Customer {c}" for c in codes],
            "platform": "E-Commerce",
            "channel": "Retailer",
            "market": "India",
            "sub_zone": "India",
            "region": "APAC",
            "city": "Pune",
            "email": [f"{c.lower()}@example.com" for c in codes],
            "occupation": "Engineer",
            "date_of_birth": pd.Timestamp("1990-01-01"),
        }
    )
    products = pd.DataFrame(
        {
            "product_code": ["P0", "P1", "P2"],
            "division": ["P & A", "PC", "N & S"],
            "segment": ["Accessories", "Notebook", "Storage"],
            "category": ["Mouse", "Personal Laptop", "External SSD"],
            "product": ["AQ Lite", "AQ Velocity", "AQ Digit SSD"],
            "variant": "Standard",
        }
    )
    base = {"P0": 10.0, "P1": 400.0, "P2": 20.0}
    prices = pd.DataFrame(
        [
            {"product_code": p, "fiscal_year": fy, "gross_price": round(b * (1 + 0.05 * i), 4)}
            for p, b in base.items()
            for i, fy in enumerate(FISCAL_YEARS)
        ]
    )
    costs = prices.rename(columns={"fiscal_year": "cost_year", "gross_price": "manufacturing_cost"})
    costs["manufacturing_cost"] = (costs["manufacturing_cost"] * 0.3).round(4)
    discounts = pd.DataFrame(
        [
            {
                "customer_code": c,
                "fiscal_year": fy,
                "pre_invoice_discount_pct": 0.1 + 0.01 * (i % 5),
            }
            for i, c in enumerate(codes)
            for fy in FISCAL_YEARS
        ]
    )
    database.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database)) as conn:
        warehouse.replace_tables(
            conn,
            "raw",
            {
                "customers": customers,
                "products": products,
                "gross_prices": prices,
                "manufacturing_costs": costs,
                "pre_invoice_deductions": discounts,
                "order_lines": order_lines,
            },
        )


def dbt_build(database: Path, target: Path, selection: list[str], dbt_vars: dict) -> None:
    """Run a real ``dbt build`` of ``selection`` against ``database``; fail the test if it fails.

    ``--indirect-selection cautious`` runs only the tests whose models are all built. dbt has no
    defaults of its own: vars not given are the settings' defaults.
    """
    import json

    import pytest

    from pipeline import settings
    from pipeline.defs.resources import DbtCli, dbt_executable
    from pipeline.project import dbt_project

    dbt_vars = {**settings.load(environ={}).dbt_vars(), **dbt_vars}

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIPELINE_WAREHOUSE", str(database))
        dbt = DbtCli(
            project_dir=dbt_project, dbt_executable=dbt_executable(), warehouse=str(database)
        )
        build = dbt.build(
            [
                "build",
                *selection,
                "--indirect-selection",
                "cautious",
                "--vars",
                json.dumps(dbt_vars),
            ],
            target_path=target,
        )
    assert build.is_successful(), f"dbt build failed: {build.error}"


def cdnow_transactions() -> pd.DataFrame:
    """The CDNOW master file that ships inside lifetimes (CD purchases, Jan 1997 - Jun 1998), as
    text columns client, day (YYYYMMDD), cds, total; identical lines kept. Read from the package
    folder: ``lifetimes.datasets`` imports pkg_resources, which may be missing."""
    import importlib.util

    folder = Path(importlib.util.find_spec("lifetimes").submodule_search_locations[0]) / "datasets"
    return pd.read_csv(
        folder / "CDNOW_master.txt",
        sep=r"\s+",
        header=0,
        names=["client", "day", "cds", "total"],
        dtype=str,
    )

"""The whole pipeline on an imported transactions file: the customer summary equals lifetimes'
own, and a file dropped in before the next refresh is picked up without double counting."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline import settings
from pipeline.defs.assets.dbt import star_schema
from pipeline.defs.assets.raw import imported_raw_data
from pipeline.defs.definitions import build_definitions
from tests.standard_refresh import quiet_run_config

pytestmark = pytest.mark.slow  # dbt or a whole refresh: not in `make test-fast`

AS_OF = dt.date(2026, 11, 24)


def transactions(seed: int, customers: range, days: int = 900) -> pd.DataFrame:
    """BG/NBD-like histories: a purchase rate and a dropout chance after each purchase."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in customers:
        first = AS_OF - dt.timedelta(days=int(rng.integers(30, days)))
        rate, dropout = rng.gamma(1.5, 1 / 40), rng.beta(1.0, 4.0)
        t = 0.0
        while True:
            date = first + dt.timedelta(days=int(t))
            if date > AS_OF:
                break
            rows.append(
                {
                    "client": f"K{c:04d}",
                    "day": date.isoformat(),
                    "total": round(float(rng.gamma(2.0, 40.0)) + 1, 2),
                }
            )
            if rng.random() < dropout:
                break
            t += rng.exponential(1 / rate)
    return pd.DataFrame(rows).drop_duplicates()


def import_settings(import_dir) -> dict[str, str]:
    """The settings that import ``transactions()`` files from ``import_dir``."""
    return {
        "PIPELINE_SOURCE": "files",
        "PIPELINE_IMPORT_DIR": str(import_dir),
        "PIPELINE_IMPORT_LAYOUT": "transactions",
        "PIPELINE_IMPORT_COLUMN_CUSTOMER": "client",
        "PIPELINE_IMPORT_COLUMN_DATE": "day",
        "PIPELINE_IMPORT_COLUMN_AMOUNT": "total",
    }


def run_refresh(defs, asset_selection=None):
    return defs.resolve_job_def("refresh").execute_in_process(
        run_config=quiet_run_config(AS_OF),
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=asset_selection,
        raise_on_error=False,
    )


def import_and_star_schema(defs) -> list[dg.AssetKey]:
    """The file import (with its blocking checks) and the star schema's dbt build, where the
    customer summary is: all that the second refresh below looks at (the customer models, the
    marts and the publish on imported data are the first refresh's to test)."""
    keys = [*imported_raw_data.keys, *star_schema.keys]
    assert set(keys) <= set(defs.resolve_all_asset_keys())
    return keys


def summary(warehouse) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return (
            conn.execute(
                "select customer_code, cast(frequency as double) as frequency, cast(recency as double) as recency, "
                "cast(t as double) as T from intermediate.customer_summary where has_orders order by customer_code"
            )
            .df()
            .set_index("customer_code")
        )


def expected(frame: pd.DataFrame) -> pd.DataFrame:
    from lifetimes.utils import summary_data_from_transaction_data

    tx = frame.assign(day=pd.to_datetime(frame["day"]))
    out = summary_data_from_transaction_data(
        tx, "client", "day", observation_period_end=pd.Timestamp(AS_OF), freq="D"
    )
    out.index.name = "customer_code"
    return out[["frequency", "recency", "T"]].astype(float).sort_index()


def test_refresh_on_imported_transactions_then_a_new_file(tmp_path, monkeypatch):
    import_dir = tmp_path / "import"
    import_dir.mkdir()
    first = transactions(1, range(0, 600))
    first.to_csv(import_dir / "transactions_2026_10.csv", index=False)
    for name, value in {
        **import_settings(import_dir),
        "PIPELINE_CLUSTER_K_MAX": "4",
    }.items():
        monkeypatch.setenv(name, value)
    current = settings.load()
    defs = build_definitions(current)
    keys = defs.resolve_all_asset_keys()
    assert dg.AssetKey(["raw", "quarantine"]) in keys

    result = run_refresh(defs)
    assert result.success
    failed = [e.asset_check_key for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == []
    got = summary(current.warehouse)
    pd.testing.assert_frame_equal(got, expected(first), check_names=False)
    with duckdb.connect(str(current.warehouse), read_only=True) as conn:
        net, lines = conn.execute(
            "select sum(net_sales_amount), count(*) from marts.fact_sales"
        ).fetchone()
        assert float(net) == pytest.approx(first["total"].sum(), abs=1e-6)
        assert lines == len(first)
        assert (
            conn.execute(
                "select count(*) from information_schema.tables where table_schema = 'truth'"
            ).fetchone()[0]
            == 0
        )

    # a new file arrives; the old one is not loaded twice
    second = transactions(2, range(500, 800))
    second.to_csv(import_dir / "transactions_2026_11.csv", index=False)
    result = run_refresh(defs, import_and_star_schema(defs))
    assert result.success
    assert {e.step_key for e in result.get_step_success_events()} == {
        "imported_raw_data",
        "star_schema",
    }
    both = pd.concat([first, second])  # without an order column, identical rows are separate orders
    pd.testing.assert_frame_equal(summary(current.warehouse), expected(both), check_names=False)
    with duckdb.connect(str(current.warehouse), read_only=True) as conn:
        log = conn.execute(
            "select file_name, rows, loaded, quarantined from raw.import_files order by file_name"
        ).fetchall()
        (lines,) = conn.execute("select count(*) from marts.fact_sales").fetchone()
    assert log == [
        ("transactions_2026_10.csv", len(first), len(first), 0),
        ("transactions_2026_11.csv", len(second), len(second), 0),
    ]
    assert lines == len(both)

    # rows lost from a file (here deleted by hand, whatever the cause): the blocking checks name
    # it (the staged rows no longer match the rows read, and fewer load) and nothing is published
    with duckdb.connect(str(current.warehouse)) as conn:
        conn.execute(
            "delete from raw.import_transactions where file_name = 'transactions_2026_10.csv' and row_number <= 3"
        )
    result = run_refresh(defs)  # the whole refresh: blocked at the import, it costs little
    assert not result.success
    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert set(failed) == {
        "every_input_row_loaded_or_quarantined",
        "no_file_loads_fewer_rows_than_before",
    }
    assert (
        failed["no_file_loads_fewer_rows_than_before"].metadata["files_with_fewer_rows"].value
        == f"transactions_2026_10.csv: {len(first) - 3} loaded, {len(first)} before"
    )
    with duckdb.connect(str(current.warehouse), read_only=True) as conn:
        assert conn.execute("select count(*) from marts.fact_sales").fetchone() == (len(both),)


# --- issue 16: real exports import without hand edits and without silent loss -----------------

CDNOW_AS_OF = dt.date(1998, 6, 30)


def test_cdnow_1997_file_summary_equals_lifetimes_on_every_customer(tmp_path):
    """The CDNOW transactions (1997-98, no order column, identical lines included) through the
    import and dbt: frequency, recency, T and monetary value equal lifetimes' own summary."""
    from lifetimes.utils import summary_data_from_transaction_data

    from pipeline.ingest import ImportConfig, run_import
    from pipeline.ingest.config import TransactionColumns
    from tests.rawdata import cdnow_transactions, dbt_build

    frame = cdnow_transactions()
    assert frame.duplicated().sum() > 0  # identical lines: separate orders, all kept
    folder = tmp_path / "import"
    folder.mkdir()
    frame.to_csv(folder / "transactions_cdnow.csv", index=False)
    warehouse = tmp_path / "warehouse.duckdb"
    config = ImportConfig(
        directory=folder,
        as_of=CDNOW_AS_OF,
        layout="transactions",
        date_formats=("%Y%m%d",),
        columns=TransactionColumns(customer="client", date="day", amount="total", quantity="cds"),
    )
    with duckdb.connect(str(warehouse)) as conn:
        report = run_import(conn, config)
    assert (report.input_rows, report.loaded_rows, report.reasons) == (len(frame), len(frame), {})

    dbt_build(
        warehouse,
        tmp_path / "target",
        ["--select", "+customer_summary +dim_date"],
        {"as_of_date": CDNOW_AS_OF.isoformat()},
    )
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        got = (
            conn.execute(
                "select customer_code, cast(frequency as double) as frequency, cast(recency as double) as recency, "
                "cast(t as double) as T, cast(monetary_value_net_sales as double) as monetary_value "
                "from intermediate.customer_summary where has_orders order by customer_code"
            )
            .df()
            .set_index("customer_code")
        )
        first_day = conn.execute("select min(date) from marts.dim_date").fetchone()[0]
    assert first_day == dt.date(1996, 9, 1)  # the fiscal year of the first order, FY1997

    tx = frame.assign(
        day=pd.to_datetime(frame["day"], format="%Y%m%d"), total=frame["total"].astype(float)
    )
    want = summary_data_from_transaction_data(
        tx,
        "client",
        "day",
        monetary_value_col="total",
        observation_period_end=pd.Timestamp(CDNOW_AS_OF),
        freq="D",
    ).sort_index()
    assert len(got) == len(want) == frame["client"].nunique()
    assert list(got.index) == list(want.index)
    pd.testing.assert_frame_equal(
        got[["frequency", "recency", "T"]],
        want[["frequency", "recency", "T"]].astype(float),
        check_names=False,
    )
    # amounts are cents-exact decimals in the warehouse, floats in lifetimes
    np.testing.assert_allclose(
        got["monetary_value"].to_numpy(), want["monetary_value"].to_numpy(), rtol=0, atol=1e-6
    )

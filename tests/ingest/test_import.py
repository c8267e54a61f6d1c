"""The file import on small real files in a temp dir, against a real DuckDB: exact counts per
quarantine reason, and one readable FileImportError for what cannot be loaded at all."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pandas as pd
import pytest

from pipeline.ingest import FileImportError, ImportConfig, run_import
from pipeline.ingest.config import CsvOptions, TransactionColumns
from pipeline.ingest.importer import unaccounted_files

AS_OF = dt.date(2026, 11, 24)


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "import"
    path.mkdir()
    return path


@pytest.fixture
def conn(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        yield connection


def tx_config(folder, **kwargs) -> ImportConfig:
    return ImportConfig(directory=folder, as_of=AS_OF, layout="transactions", **kwargs)


def reasons(conn) -> dict[str, int]:
    return dict(conn.execute("select reason, count(*) from raw.quarantine group by 1").fetchall())


def test_transactions_every_reason_counted_and_nothing_lost(folder, conn):
    (folder / "transactions_1.csv").write_text(
        "customer_id,order_date,amount\n"
        "A,2024-01-05,10.50\n"  # loaded
        "A,2024-02-05,3\n"  # loaded
        ",2024-01-01,3\n"  # missing_key
        "B,2024-13-01,4\n"  # unparseable_date
        "C,2027-01-01,1\n"  # date_after_as_of
        "D,2024-01-01,x\n"  # non_numeric
        "E,2024-01-01,-1\n"  # negative
        "A,2024-01-05,10.50\n"  # exact_duplicate
    )
    report = run_import(conn, tx_config(folder))
    assert report.reasons == reasons(conn) == {
        "missing_key": 1, "unparseable_date": 1, "date_after_as_of": 1, "non_numeric": 1, "negative": 1, "exact_duplicate": 1,
    }
    assert (report.input_rows, report.loaded_rows, report.quarantined_rows) == (8, 2, 6)
    assert unaccounted_files(conn, "transactions") == []
    lines = conn.execute("select order_date, customer_code, product_code, sold_quantity from raw.order_lines order by 1").fetchall()
    assert lines == [(dt.date(2024, 1, 5), "A", "ALL", 1050), (dt.date(2024, 2, 5), "A", "ALL", 300)]
    row, original = conn.execute("select row_number, original_values from raw.quarantine where reason = 'negative'").fetchone()
    assert row == 7 and json.loads(original) == {"customer_id": "E", "order_date": "2024-01-01", "amount": "-1"}
    # price 0.01 x cents = the amount; no cost, no discount
    assert conn.execute("select distinct cast(gross_price as varchar) from raw.gross_prices").fetchall() == [("0.0100",)]
    assert conn.execute("select customer_code, platform, channel, market, region from raw.customers").fetchall() == [
        ("A", "E-Commerce", "Direct", "Unknown", "APAC")
    ]


def test_csv_options_and_mixed_date_formats(folder, conn):
    (folder / "transactions_eu.csv").write_text("A;01/02/2024;1,5\nB;2024-02-03;2,25\nC;2024.02.03;1\n")
    config = tx_config(
        folder,
        csv=CsvOptions(delimiter=";", header=False, decimal_separator=","),
        date_formats=("%d/%m/%Y", "%Y-%m-%d"),
        columns=TransactionColumns(customer="column0", date="column1", amount="column2"),
    )
    report = run_import(conn, config)
    assert report.reasons == {"unparseable_date": 1}
    assert conn.execute("select customer_code, order_date, sold_quantity from raw.order_lines order by 1").fetchall() == [
        ("A", dt.date(2024, 2, 1), 150), ("B", dt.date(2024, 2, 3), 225)
    ]


def test_encodings(folder, conn):
    (folder / "transactions_l1.csv").write_bytes("customer_id,order_date,amount\nJos\xe9,2024-01-01,5\n".encode("latin-1"))
    with pytest.raises(FileImportError, match=r"transactions_l1.csv: is not valid utf-8 text; set PIPELINE_IMPORT_CSV_ENCODING"):
        run_import(conn, tx_config(folder))
    run_import(conn, tx_config(folder, csv=CsvOptions(encoding="latin-1")))
    assert conn.execute("select customer_code from raw.customers").fetchall() == [("José",)]


def test_header_only_file_loads_zero_rows_and_empty_file_fails(folder, conn):
    (folder / "transactions_a.csv").write_text("customer_id,order_date,amount\nA,2024-01-01,1\n")
    (folder / "transactions_b.csv").write_text("customer_id,order_date,amount\n")
    report = run_import(conn, tx_config(folder))
    assert [(f["file_name"], f["rows"], f["loaded"]) for f in report.files] == [("transactions_a.csv", 1, 1), ("transactions_b.csv", 0, 0)]
    (folder / "transactions_c.csv").write_bytes(b"")
    with pytest.raises(FileImportError, match=r"^transactions_c.csv: the file is empty \(0 bytes\)$"):
        run_import(conn, tx_config(folder))


def test_missing_folder_file_column_and_mapping(folder, conn, tmp_path):
    with pytest.raises(FileImportError, match="does not exist"):
        run_import(conn, tx_config(tmp_path / "nowhere"))
    with pytest.raises(FileImportError, match=r"missing file: no file matching transactions\*"):
        run_import(conn, tx_config(folder))
    (folder / "transactions_1.csv").write_text("customer_id,day,amount\nA,2024-01-01,1\n")
    with pytest.raises(FileImportError, match=r"PIPELINE_IMPORT_COLUMN_DATE names the column 'order_date', which is not in the file; columns found: \['customer_id', 'day', 'amount'\]"):
        run_import(conn, tx_config(folder))


def test_hostile_column_name_is_just_a_name(folder, conn):
    hostile = 'x"; drop table raw.orders; --'
    pd.DataFrame({"customer_id": ["A"], hostile: ["2024-01-01"], "amount": ["2"]}).to_csv(folder / "transactions_h.csv", index=False)
    run_import(conn, tx_config(folder, columns=TransactionColumns(date=hostile)))
    assert conn.execute("select count(*) from raw.order_lines").fetchone() == (1,)
    original = json.loads(conn.execute("select original from raw.import_transactions").fetchone()[0])
    assert original[hostile] == "2024-01-01"


def test_incremental_files_and_changed_content(folder, conn):
    (folder / "transactions_1.csv").write_text("customer_id,order_date,amount\nA,2024-01-01,1\n")
    run_import(conn, tx_config(folder))
    (folder / "transactions_2.csv").write_text("customer_id,order_date,amount\nB,2024-01-02,2\nA,2024-01-01,1\n")
    report = run_import(conn, tx_config(folder))
    assert report.new_files == ["transactions_2.csv"] and report.known_files == ["transactions_1.csv"]
    assert conn.execute("select count(*) from raw.order_lines").fetchone() == (2,)
    assert report.reasons == {"exact_duplicate": 1}
    again = run_import(conn, tx_config(folder))
    assert again.new_files == [] and conn.execute("select count(*) from raw.order_lines").fetchone() == (2,)
    (folder / "transactions_1.csv").write_text("customer_id,order_date,amount\nA,2024-01-01,9\n")
    with pytest.raises(FileImportError, match=r"transactions_1.csv: its content changed since it was loaded"):
        run_import(conn, tx_config(folder))
    assert conn.execute("select count(*) from raw.order_lines").fetchone() == (2,)  # rolled back


def write_atliq(folder, sales: str, monthly: bool = False) -> None:
    (folder / "dim_customer.csv").write_text(
        "customer_code,customer,platform,channel,market,sub_zone,region\n"
        "C1,Croma,Brick & Mortar,Retailer,India,India,APAC\nC2,Amazon,E-Commerce,Retailer,USA,NA,NA\n"
        ",Nobody,E-Commerce,Direct,USA,NA,NA\nC1,Croma again,E-Commerce,Direct,India,India,APAC\n"
    )
    with duckdb.connect() as c:  # Parquet written by DuckDB
        c.execute(
            "copy (select 'P1' as product_code, 'PC' as division, 'Notebook' as segment, 'Personal Laptop' as category, "
            "'AQ Velocity' as product, 'Standard' as variant) to '" + str(folder / "dim_product.parquet") + "' (format parquet)"
        )
    (folder / "fact_gross_price.csv").write_text("product_code,fiscal_year,gross_price\nP1,2024,100\nP1,2025,abc\nP9,2024,5\n")
    (folder / "fact_manufacturing_cost.csv").write_text("product_code,cost_year,manufacturing_cost\nP1,2024,30\n")
    (folder / "fact_pre_discount.csv").write_text("customer_code,fiscal_year,pre_invoice_discount_pct\nC1,2024,0.1\nC2,2024,0.2\nC3,2024,0.1\n")
    name = "fact_sales_monthly.csv" if monthly else "fact_sales.csv"
    (folder / name).write_text("date,product_code,customer_code,sold_quantity\n" + sales)


def test_atliq_layout_counts_per_reason(folder, conn):
    write_atliq(folder, "2024-01-05,P1,C1,2\n2024-01-05,P1,C1,3\n2024-01-06,P1,C2,-1\n2024-01-06,P9,C2,1\n2024-01-06,P1,C9,1\n")
    report = run_import(conn, ImportConfig(directory=folder, as_of=AS_OF))
    by_file = {f["file_name"]: (f["rows"], f["loaded"], f["reasons"]) for f in report.files}
    assert by_file == {
        "dim_customer.csv": (4, 2, {"missing_key": 1, "duplicate_key": 1}),
        "dim_product.parquet": (1, 1, {}),
        "fact_gross_price.csv": (3, 1, {"non_numeric": 1, "unknown_product": 1}),
        "fact_manufacturing_cost.csv": (1, 1, {}),
        "fact_pre_discount.csv": (3, 2, {"unknown_customer": 1}),
        "fact_sales.csv": (5, 2, {"negative": 1, "unknown_product": 1, "unknown_customer": 1}),
    }
    assert conn.execute("select order_id, line_number, sold_quantity from raw.order_lines order by 2").fetchall() == [
        ("C1-2024-01-05", 1, 2), ("C1-2024-01-05", 2, 3)
    ]
    assert conn.execute("select city from raw.customers").fetchall() == [(None,), (None,)]


def test_atliq_monthly_grain_orders_on_the_first(folder, conn):
    write_atliq(folder, "2024-01-01,P1,C1,2\n2024-02-15,P1,C1,3\n", monthly=True)
    run_import(conn, ImportConfig(directory=folder, as_of=AS_OF))
    assert conn.execute("select order_date, order_id from raw.order_lines order by 1").fetchall() == [
        (dt.date(2024, 1, 1), "C1-2024-01-M"), (dt.date(2024, 2, 1), "C1-2024-02-M")
    ]


def test_atliq_missing_file_and_column(folder, conn):
    write_atliq(folder, "2024-01-05,P1,C1,2\n")
    (folder / "fact_manufacturing_cost.csv").unlink()
    with pytest.raises(FileImportError, match=r"missing file: no fact_manufacturing_cost.csv or fact_manufacturing_cost.parquet"):
        run_import(conn, ImportConfig(directory=folder, as_of=AS_OF))
    (folder / "fact_manufacturing_cost.csv").write_text("product_code,year,manufacturing_cost\nP1,2024,30\n")
    with pytest.raises(FileImportError, match=r"fact_manufacturing_cost.csv: missing required column\(s\) \['cost_year'\]; columns found: \['product_code', 'year', 'manufacturing_cost'\]"):
        run_import(conn, ImportConfig(directory=folder, as_of=AS_OF))

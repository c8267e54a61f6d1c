"""The file import on small real files in a temp dir, against a real DuckDB: exact counts per
quarantine reason, and one readable FileImportError for what cannot be loaded at all."""

from __future__ import annotations

import dataclasses
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
        "A,2024-01-05,10.50\n"  # loaded: without an order column every row is an order
        "F,2024-01-02,1,200.00\n"  # wrong_field_count (an unquoted thousands separator)
        "G,2024-01-02\n"  # wrong_field_count
        "H,2024-01-03,7\n"  # loaded, and numbered past the rejected lines
    )
    report = run_import(conn, tx_config(folder))
    assert (
        report.reasons
        == reasons(conn)
        == {
            "missing_key": 1,
            "unparseable_date": 1,
            "date_after_as_of": 1,
            "non_numeric": 1,
            "negative": 1,
            "wrong_field_count": 2,
        }
    )
    assert (report.input_rows, report.loaded_rows, report.quarantined_rows) == (11, 4, 7)
    assert unaccounted_files(conn, "transactions") == []
    lines = conn.execute(
        "select order_id, order_date, customer_code, product_code, sold_quantity from raw.order_lines order by 1"
    ).fetchall()
    assert lines == [
        ("transactions_1.csv:1", dt.date(2024, 1, 5), "A", "ALL", 1050),
        ("transactions_1.csv:11", dt.date(2024, 1, 3), "H", "ALL", 700),
        ("transactions_1.csv:2", dt.date(2024, 2, 5), "A", "ALL", 300),
        ("transactions_1.csv:8", dt.date(2024, 1, 5), "A", "ALL", 1050),
    ]
    row, original = conn.execute(
        "select row_number, original_values from raw.quarantine where reason = 'negative'"
    ).fetchone()
    assert row == 7 and json.loads(original) == {
        "customer_id": "E",
        "order_date": "2024-01-01",
        "amount": "-1",
    }
    assert conn.execute(
        "select row_number, original_values from raw.quarantine where reason = 'wrong_field_count' order by 1"
    ).fetchall() == [(9, "F,2024-01-02,1,200.00"), (10, "G,2024-01-02")]
    # price 0.01 x cents = the amount; no cost, no discount
    assert conn.execute(
        "select distinct cast(gross_price as varchar) from raw.gross_prices"
    ).fetchall() == [("0.0100",)]
    assert conn.execute(
        "select customer_code, platform, channel, market, region from raw.customers order by 1"
    ).fetchall() == [
        ("A", "E-Commerce", "Direct", "Unknown", "APAC"),
        ("H", "E-Commerce", "Direct", "Unknown", "APAC"),
    ]


def test_csv_options_and_mixed_date_formats(folder, conn):
    (folder / "transactions_eu.csv").write_text(
        "A;01/02/2024;1,5\nB;2024-02-03;2,25\nC;2024.02.03;1\n"
    )
    config = tx_config(
        folder,
        csv=CsvOptions(delimiter=";", header=False, decimal_separator=","),
        date_formats=("%d/%m/%Y", "%Y-%m-%d"),
        columns=TransactionColumns(customer="column0", date="column1", amount="column2"),
    )
    report = run_import(conn, config)
    assert report.reasons == {"unparseable_date": 1}
    assert conn.execute(
        "select customer_code, order_date, sold_quantity from raw.order_lines order by 1"
    ).fetchall() == [("A", dt.date(2024, 2, 1), 150), ("B", dt.date(2024, 2, 3), 225)]


def test_encodings(folder, conn):
    (folder / "transactions_l1.csv").write_bytes(
        "customer_id,order_date,amount\nJos\xe9,2024-01-01,5\n".encode("latin-1")
    )
    with pytest.raises(
        FileImportError,
        match=r"transactions_l1.csv: is not valid utf-8 text; set PIPELINE_IMPORT_CSV_ENCODING",
    ):
        run_import(conn, tx_config(folder))
    run_import(conn, tx_config(folder, csv=CsvOptions(encoding="latin-1")))
    assert conn.execute("select customer_code from raw.customers").fetchall() == [("José",)]


def test_header_only_file_loads_zero_rows_and_empty_file_fails(folder, conn):
    (folder / "transactions_a.csv").write_text("customer_id,order_date,amount\nA,2024-01-01,1\n")
    (folder / "transactions_b.csv").write_text("customer_id,order_date,amount\n")
    report = run_import(conn, tx_config(folder))
    assert [(f["file_name"], f["rows"], f["loaded"]) for f in report.files] == [
        ("transactions_a.csv", 1, 1),
        ("transactions_b.csv", 0, 0),
    ]
    (folder / "transactions_c.csv").write_bytes(b"")
    with pytest.raises(
        FileImportError, match=r"^transactions_c.csv: the file is empty \(0 bytes\)$"
    ):
        run_import(conn, tx_config(folder))


def test_missing_folder_file_column_and_mapping(folder, conn, tmp_path):
    with pytest.raises(FileImportError, match="does not exist"):
        run_import(conn, tx_config(tmp_path / "nowhere"))
    with pytest.raises(FileImportError, match=r"missing file: no file matching transactions\*"):
        run_import(conn, tx_config(folder))
    (folder / "transactions_1.csv").write_text("customer_id,day,amount\nA,2024-01-01,1\n")
    with pytest.raises(
        FileImportError,
        match=r"PIPELINE_IMPORT_COLUMN_DATE names the column 'order_date', which is not in the file; columns found: \['customer_id', 'day', 'amount'\]",
    ):
        run_import(conn, tx_config(folder))


def test_hostile_column_name_is_just_a_name(folder, conn):
    hostile = 'x"; drop table raw.orders; --'
    pd.DataFrame(
        {"customer_id": ["A", "B"], hostile: ["2024-01-01", "x"], "amount": ["2", "3"]}
    ).to_csv(folder / "transactions_h.csv", index=False)
    run_import(conn, tx_config(folder, columns=TransactionColumns(date=hostile)))
    assert conn.execute("select count(*) from raw.order_lines").fetchone() == (1,)
    original = json.loads(conn.execute("select original_values from raw.quarantine").fetchone()[0])
    assert original[hostile] == "x"


def test_incremental_files_and_changed_content(folder, conn):
    (folder / "transactions_1.csv").write_text("customer_id,order_date,amount\nA,2024-01-01,1\n")
    run_import(conn, tx_config(folder))
    (folder / "transactions_2.csv").write_text(
        "customer_id,order_date,amount\nB,2024-01-02,2\nA,2024-01-01,1\n"
    )
    report = run_import(conn, tx_config(folder))
    assert report.new_files == ["transactions_2.csv"] and report.known_files == [
        "transactions_1.csv"
    ]
    # an identical row in another file is another order (no order id says otherwise)
    assert conn.execute("select count(*) from raw.order_lines").fetchone() == (3,)
    assert report.reasons == {}
    again = run_import(conn, tx_config(folder))
    assert again.new_files == [] and conn.execute(
        "select count(*) from raw.order_lines"
    ).fetchone() == (3,)
    (folder / "transactions_1.csv").write_text("customer_id,order_date,amount\nA,2024-01-01,9\n")
    with pytest.raises(
        FileImportError, match=r"transactions_1.csv: its content changed since it was loaded"
    ):
        run_import(conn, tx_config(folder))
    assert conn.execute("select count(*) from raw.order_lines").fetchone() == (3,)  # rolled back


def test_an_order_keeps_the_customer_and_date_of_its_first_line(folder, conn):
    """Every model that counts orders takes an order to have one customer and one date: a line
    naming another one under the same order id (here, or in a later file) is quarantined, not
    loaded as a second order under that id."""
    header = "customer_id,order_date,amount,order_id\n"
    (folder / "transactions_1.csv").write_text(
        header
        + "A,2024-01-05,10,O1\n"  # loaded: O1's first line
        + "A,2024-01-05,4,O1\n"  # loaded: another line of O1
        + "B,2024-01-05,5,O1\n"  # conflicting_order: another customer
        + "A,2024-01-06,6,O1\n"  # conflicting_order: another date
        + "A,2024-01-05,10,O1\n"  # exact_duplicate: the first line again
        + "B,2024-02-01,7,O2\n"  # loaded
    )
    (folder / "transactions_2.csv").write_text(
        header + "C,2024-02-01,7,O2\n" + "C,2024-03-01,8,O3\n"  # O2 is B's: conflicting_order
    )
    config = tx_config(folder, columns=TransactionColumns(order="order_id"))
    report = run_import(conn, config)
    by_file = {f["file_name"]: (f["rows"], f["loaded"], f["reasons"]) for f in report.files}
    assert by_file == {
        "transactions_1.csv": (6, 3, {"conflicting_order": 2, "exact_duplicate": 1}),
        "transactions_2.csv": (2, 1, {"conflicting_order": 1}),
    }
    quarantined = conn.execute(
        "select file_name, row_number, original_values from raw.quarantine "
        "where reason = 'conflicting_order' order by 1, 2"
    ).fetchall()
    assert [
        (file, row, json.loads(values)["customer_code"]) for file, row, values in quarantined
    ] == [
        ("transactions_1.csv", 3, "B"),
        ("transactions_1.csv", 4, "A"),
        ("transactions_2.csv", 1, "C"),
    ]
    assert conn.execute(
        "select count(*), count(distinct (order_id, customer_code, order_date)), "
        "count(distinct order_id) from raw.order_lines"
    ).fetchone() == (4, 3, 3)


def write_atliq(folder, sales: str, monthly: bool = False) -> None:
    (folder / "dim_customer.csv").write_text(
        "customer_code,customer,platform,channel,market,sub_zone,region\n"
        "C1,Croma,Brick & Mortar,Retailer,India,India,APAC\nC2,Amazon,E-Commerce,Retailer,USA,NA,NA\n"
        ",Nobody,E-Commerce,Direct,USA,NA,NA\nC1,Croma again,E-Commerce,Direct,India,India,APAC\n"
    )
    with duckdb.connect() as c:  # Parquet written by DuckDB
        c.execute(
            "copy (select 'P1' as product_code, 'PC' as division, 'Notebook' as segment, 'Personal Laptop' as category, "
            "'AQ Velocity' as product, 'Standard' as variant) to '"
            + str(folder / "dim_product.parquet")
            + "' (format parquet)"
        )
    (folder / "fact_gross_price.csv").write_text(
        "product_code,fiscal_year,gross_price\nP1,2024,100\nP1,2025,abc\nP9,2024,5\n"
    )
    (folder / "fact_manufacturing_cost.csv").write_text(
        "product_code,cost_year,manufacturing_cost\nP1,2024,30\n"
    )
    (folder / "fact_pre_discount.csv").write_text(
        "customer_code,fiscal_year,pre_invoice_discount_pct\nC1,2024,0.1\nC2,2024,0.2\nC3,2024,0.1\n"
    )
    name = "fact_sales_monthly.csv" if monthly else "fact_sales.csv"
    (folder / name).write_text("date,product_code,customer_code,sold_quantity\n" + sales)


def test_atliq_layout_counts_per_reason(folder, conn):
    write_atliq(
        folder,
        "2024-01-05,P1,C1,2\n2024-01-05,P1,C1,3\n2024-01-06,P1,C2,-1\n2024-01-06,P9,C2,1\n2024-01-06,P1,C9,1\n",
    )
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
    assert conn.execute(
        "select order_id, line_number, sold_quantity from raw.order_lines order by 2"
    ).fetchall() == [("C1-2024-01-05", 1, 2), ("C1-2024-01-05", 2, 3)]
    assert conn.execute("select city from raw.customers").fetchall() == [(None,), (None,)]


def test_atliq_monthly_grain_orders_on_the_first(folder, conn):
    write_atliq(folder, "2024-01-01,P1,C1,2\n2024-02-15,P1,C1,3\n", monthly=True)
    run_import(conn, ImportConfig(directory=folder, as_of=AS_OF))
    assert conn.execute(
        "select order_date, order_id from raw.order_lines order by 1"
    ).fetchall() == [(dt.date(2024, 1, 1), "C1-2024-01-M"), (dt.date(2024, 2, 1), "C1-2024-02-M")]


def test_atliq_missing_file_and_column(folder, conn):
    write_atliq(folder, "2024-01-05,P1,C1,2\n")
    (folder / "fact_manufacturing_cost.csv").unlink()
    with pytest.raises(
        FileImportError,
        match=r"missing file: no fact_manufacturing_cost.csv or fact_manufacturing_cost.parquet",
    ):
        run_import(conn, ImportConfig(directory=folder, as_of=AS_OF))
    (folder / "fact_manufacturing_cost.csv").write_text(
        "product_code,yr,manufacturing_cost\nP1,2024,30\n"
    )
    with pytest.raises(
        FileImportError,
        match=r"fact_manufacturing_cost.csv: missing required column\(s\) \['cost_year'\]; columns found: \['product_code', 'yr', 'manufacturing_cost'\]",
    ):
        run_import(conn, ImportConfig(directory=folder, as_of=AS_OF))


# --- issue 16: strict numbers, aliases, frozen validation, reprocess ----------------------------


def test_decimal_comma_grouping_dot_understood_or_quarantined(folder, conn):
    (folder / "transactions_eu.csv").write_text(
        "customer_id;order_date;amount\n"
        "A;2024-01-01;1.234,50\n"  # 1234.50
        "B;2024-01-01;1.234\n"  # 1234: a grouping dot, never a decimal point
        "C;2024-01-01;1.23\n"  # non_numeric: neither a group of three nor a decimal comma
        "D;2024-01-01;12,5\n"  # 12.5
        "E;2024-01-01;1.2345,5\n"  # non_numeric
    )
    report = run_import(
        conn, tx_config(folder, csv=CsvOptions(delimiter=";", decimal_separator=","))
    )
    assert report.reasons == {"non_numeric": 2}
    assert conn.execute(
        "select customer_code, sold_quantity from raw.order_lines order by 1"
    ).fetchall() == [("A", 123450), ("B", 123400), ("D", 1250)]
    assert conn.execute("select row_number from raw.quarantine order by 1").fetchall() == [
        (3,),
        (5,),
    ]


def test_fractional_quantities_kept_or_quarantined_never_rounded(folder, conn, tmp_path):
    write_atliq(folder, "2024-01-05,P1,C1,2\n2024-01-05,P1,C1,51.5\n2024-01-06,P1,C1,3.0\n")
    report = run_import(conn, ImportConfig(directory=folder, as_of=AS_OF))
    assert report.reasons["not_integer"] == 1
    assert conn.execute("select sold_quantity from raw.order_lines order by 1").fetchall() == [
        (2,),
        (3,),
    ]
    # the transactions layout validates the quantity as a decimal: 1.5 CDs is kept as it is
    tx = tmp_path / "tx"
    tx.mkdir()
    (tx / "transactions_q.csv").write_text(
        "customer_id,order_date,amount,qty\nA,2024-01-01,3,1.5\nB,2024-01-01,3,x\n"
    )
    with duckdb.connect() as memory:
        report = run_import(memory, tx_config(tx, columns=TransactionColumns(quantity="qty")))
        assert report.reasons == {"non_numeric": 1}
        assert memory.execute(
            "select cast(quantity as varchar) from raw.import_transactions where reason is null"
        ).fetchall() == [("1.5000",)]


def test_atliq_real_spellings_and_column_map(folder, conn):
    write_atliq(folder, "2024-01-05,P1,C1,2\n")
    # AtliQ's own export: fiscal_year in the cost table, and sales with an extra year column
    (folder / "fact_manufacturing_cost.csv").write_text(
        "product_code,fiscal_year,manufacturing_cost\nP1,2024,30\n"
    )
    (folder / "fact_sales.csv").write_text(
        "date,product_code,customer_code,sold_quantity,year\n2024-01-05,P1,C1,2,2024\n"
    )
    (folder / "fact_pre_discount.csv").rename(folder / "fact_pre_invoice_deductions.csv")
    run_import(conn, ImportConfig(directory=folder, as_of=AS_OF))
    assert conn.execute(
        "select product_code, cost_year, cast(manufacturing_cost as double) from raw.manufacturing_costs"
    ).fetchall() == [("P1", 2024, 30.0)]
    assert conn.execute("select count(*) from raw.pre_invoice_deductions").fetchone() == (2,)
    other = folder.parent / "other"
    other.mkdir()
    write_atliq(other, "2024-01-05,P1,C1,2\n")
    (other / "fact_pre_discount.csv").write_text("Customer Code,FY,Rate\nC1,2024,0.1\n")
    config = ImportConfig(
        directory=other,
        as_of=AS_OF,
        column_map=(
            ("pre_invoice_deductions", "customer_code", "customer code"),
            ("pre_invoice_deductions", "fiscal_year", "FY"),
        ),
    )
    with duckdb.connect() as memory:
        with pytest.raises(
            FileImportError,
            match=r"fact_pre_discount.csv: missing required column\(s\) \['pre_invoice_discount_pct'\]; columns found: \['Customer Code', 'FY', 'Rate'\]",
        ):
            run_import(memory, config)
        config = dataclasses.replace(
            config,
            column_map=config.column_map
            + (("pre_invoice_deductions", "pre_invoice_discount_pct", "Rate"),),
        )
        run_import(memory, config)
        assert memory.execute(
            "select customer_code, fiscal_year from raw.pre_invoice_deductions"
        ).fetchall() == [("C1", 2024)]
        with pytest.raises(
            FileImportError,
            match=r"PIPELINE_IMPORT_COLUMN_MAP names sales.qty, which is not a column",
        ):
            run_import(memory, dataclasses.replace(config, column_map=(("sales", "qty", "x"),)))


def test_format_change_applies_to_new_files_only_and_reprocess_shows_then_commits(folder, conn):
    from pipeline.ingest.reprocess import changes, reprocess

    (folder / "transactions_1.csv").write_text(
        "customer_id,order_date,amount\nA,2024-01-05,1\nB,2024-01-06,2\n"
    )
    run_import(conn, tx_config(folder))
    (folder / "transactions_2.csv").write_text("customer_id,order_date,amount\nC,07.01.2024,3\n")
    german = tx_config(folder, date_formats=("%d.%m.%Y",))
    report = run_import(conn, german)
    assert [(f["file_name"], f["loaded"], f["quarantined"]) for f in report.files] == [
        ("transactions_1.csv", 2, 0),
        ("transactions_2.csv", 1, 0),
    ]
    assert [f["settings"]["date_formats"] for f in report.files] == [["%Y-%m-%d"], ["%d.%m.%Y"]]
    assert report.fewer_loaded == []

    # the dry run shows what re-reading everything with today's settings would do, and keeps it
    dry = reprocess(conn, german, apply=False)
    assert (
        changes(dry)[0]
        == "transactions_1.csv: loaded 2 -> 0, quarantined 0 -> 2 (reasons: unparseable_date: 2)"
    )
    assert conn.execute("select count(*) from raw.order_lines").fetchone() == (3,)
    assert run_import(conn, german).files[0]["loaded"] == 2
    applied = reprocess(conn, tx_config(folder, date_formats=("%Y-%m-%d", "%d.%m.%Y")), apply=True)
    assert [f["loaded"] for f in applied.files] == [2, 1]


def test_a_file_loading_fewer_rows_than_before_is_named(folder, conn):
    (folder / "transactions_1.csv").write_text(
        "customer_id,order_date,amount\nA,2024-01-05,1\nB,2024-01-06,2\n"
    )
    run_import(conn, tx_config(folder))
    conn.execute(
        "delete from raw.import_transactions where row_number = 2"
    )  # rows lost, whatever the cause
    report = run_import(conn, tx_config(folder))
    assert report.fewer_loaded == [("transactions_1.csv", 2, 1)]
    assert run_import(conn, tx_config(folder)).fewer_loaded == [
        ("transactions_1.csv", 2, 1)
    ]  # until accepted
    # a backfill to an earlier as-of date sees fewer orders by design
    backfill = run_import(conn, dataclasses.replace(tx_config(folder), as_of=dt.date(2024, 1, 5)))
    assert backfill.fewer_loaded == []


def test_earlier_staging_layout_asks_for_reprocess(folder, conn):
    from pipeline.ingest.reprocess import reprocess

    (folder / "transactions_1.csv").write_text("customer_id,order_date,amount\nA,2024-01-05,1\n")
    conn.execute("create schema raw")
    conn.execute(
        "create table raw.import_transactions (file_name varchar, customer_code varchar, original varchar)"
    )
    with pytest.raises(
        FileImportError,
        match=r"raw.import_transactions was staged by an earlier version.*python -m pipeline.cli reprocess",
    ):
        run_import(conn, tx_config(folder))
    assert reprocess(conn, tx_config(folder), apply=True).loaded_rows == 1


def test_memory_limit_applies_during_the_import_only(folder, conn):
    (folder / "transactions_1.csv").write_text("customer_id,order_date,amount\nA,2024-01-05,1\n")
    before = conn.execute("select current_setting('memory_limit')").fetchone()[0]
    run_import(conn, tx_config(folder, memory_limit="300MB"))
    assert conn.execute("select current_setting('memory_limit')").fetchone()[0] == before
    conn.execute("set memory_limit = '3GB'")
    run_import(conn, tx_config(folder, memory_limit="300MB"))
    # a limit set by hand comes back to DuckDB's display precision (0.1 GiB)
    restored = conn.execute("select current_setting('memory_limit')").fetchone()[0]
    assert restored.endswith(" GiB") and 2.6 <= float(restored.split()[0]) <= 2.8


def test_import_settings_and_the_simulator_start_date(tmp_path):
    from pipeline import settings

    env = {"PIPELINE_AS_OF": "1998-06-30", "PIPELINE_DATA_DIR": str(tmp_path)}
    with pytest.raises(settings.SettingsError, match="before the start of history"):
        settings.load(env)
    loaded = settings.load(
        {
            **env,
            "PIPELINE_SOURCE": "files",
            "PIPELINE_IMPORT_COLUMN_MAP": "manufacturing_costs.cost_year=Cost Year; customers.customer_code=id",
        }
    )
    assert loaded.as_of == dt.date(1998, 6, 30)
    assert loaded.imports.column_map == (
        ("manufacturing_costs", "cost_year", "Cost Year"),
        ("customers", "customer_code", "id"),
    )
    assert ImportConfig.from_settings(loaded).memory_limit == "192MB"
    with pytest.raises(
        settings.SettingsError,
        match="PIPELINE_IMPORT_COLUMN_MAP: 'cost_year=Year' is not table.column=file column",
    ):
        settings.load(
            {**env, "PIPELINE_SOURCE": "files", "PIPELINE_IMPORT_COLUMN_MAP": "cost_year=Year"}
        )
    with pytest.raises(
        settings.SettingsError, match="PIPELINE_IMPORT_MEMORY_LIMIT='lots' is not a size"
    ):
        settings.load({**env, "PIPELINE_SOURCE": "files", "PIPELINE_IMPORT_MEMORY_LIMIT": "lots"})

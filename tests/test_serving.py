"""The BI snapshot: complete, PII-free, swapped in atomically, never moved back in time."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from pipeline import serving


@pytest.fixture
def warehouse(tmp_path):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    conn.execute("create schema marts")
    conn.execute(
        "create table marts.dim_customer as select 'C' || range as customer_code, 'Jane' as customer, "
        "'j@x.com' as email, date '1990-01-01' as date_of_birth, 'India' as market from range(5)"
    )
    conn.execute("create table marts.fact_sales as select range as id, range * 1.5 as amount from range(7)")
    conn.execute("create schema staging")
    conn.execute("create table staging.not_published as select 1 as x")
    yield conn
    conn.close()


def publish(conn, serve_dir, as_of="2026-11-24", run_id="run00001"):
    return serving.publish(conn, serve_dir, dt.date.fromisoformat(as_of), run_id, "abc123")


def open_current(serve_dir):
    return duckdb.connect(str(serve_dir / "current" / serving.SNAPSHOT_FILE), read_only=True)


def test_snapshot_holds_every_mart_without_pii_and_its_manifest(warehouse, tmp_path):
    serve_dir = tmp_path / "serve"
    manifest = publish(warehouse, serve_dir)
    assert manifest.row_counts == {"dim_customer": 5, "fact_sales": 7}
    assert manifest.promoted and manifest.code_version == "abc123"
    with open_current(serve_dir) as snapshot:
        tables = snapshot.execute(
            "select table_schema || '.' || table_name from information_schema.tables order by 1"
        ).fetchall()
        columns = [r[0] for r in snapshot.execute("describe marts.dim_customer").fetchall()]
        inside = dict(snapshot.execute("select table_name, row_count from main.snapshot_manifest").fetchall())
    assert [t for (t,) in tables] == ["main.snapshot_manifest", "marts.dim_customer", "marts.fact_sales"]
    assert columns == ["customer_code", "market"]
    assert inside == {"marts.dim_customer": 5, "marts.fact_sales": 7}
    on_disk = json.loads((serve_dir / "current" / "manifest.json").read_text())
    assert on_disk["as_of"] == "2026-11-24" and on_disk["row_counts"] == manifest.row_counts
    parquet = serve_dir / "current" / "parquet" / "fact_sales.parquet"
    assert duckdb.execute(f"select count(*) from '{parquet}'").fetchall() == [(7,)]


def test_a_new_snapshot_is_swapped_in_while_an_open_reader_keeps_the_old_one(warehouse, tmp_path):
    serve_dir = tmp_path / "serve"
    first = publish(warehouse, serve_dir, run_id="run00001")
    reader = open_current(serve_dir)
    warehouse.execute("insert into marts.fact_sales select 100 + range, 0.0 from range(3)")
    second = publish(warehouse, serve_dir, as_of="2026-12-09", run_id="run00002")
    assert (serve_dir / "current").resolve().name == second.build_id != first.build_id
    assert reader.execute("select count(*) from marts.fact_sales").fetchone()[0] == 7
    reader.close()
    with open_current(serve_dir) as fresh:
        assert fresh.execute("select count(*) from marts.fact_sales").fetchone()[0] == 10
    assert not list(serve_dir.glob("builds/.*")) and not list(serve_dir.glob(".current*"))


def test_a_backfill_of_an_older_as_of_is_built_but_not_promoted(warehouse, tmp_path):
    serve_dir = tmp_path / "serve"
    latest = publish(warehouse, serve_dir, as_of="2026-11-24", run_id="run00001")
    backfill = publish(warehouse, serve_dir, as_of="2026-10-25", run_id="run00002")
    assert not backfill.promoted
    assert (serve_dir / "builds" / backfill.build_id / serving.SNAPSHOT_FILE).exists()
    assert serving.current_manifest(serve_dir).build_id == latest.build_id


def test_old_builds_are_pruned(warehouse, tmp_path):
    serve_dir = tmp_path / "serve"
    builds = [publish(warehouse, serve_dir, run_id=f"run{i:05d}") for i in range(5)]
    kept = sorted(p.name for p in (serve_dir / "builds").iterdir())
    assert kept == sorted(b.build_id for b in builds[-3:])


def test_history_tables_are_published_up_to_the_snapshots_as_of(warehouse, tmp_path):
    warehouse.execute(
        "create table marts.customer_segment_history as select * from (values "
        "(date '2026-10-25', 'C1'), (date '2026-11-09', 'C1'), (date '2026-11-24', 'C1')) "
        "t(as_of_date, customer_code)"
    )
    backfill = publish(warehouse, tmp_path / "serve", as_of="2026-11-09")
    assert backfill.row_counts["customer_segment_history"] == 2


def test_backfills_never_push_out_a_promoted_snapshot(warehouse, tmp_path):
    serve_dir = tmp_path / "serve"
    promoted = [publish(warehouse, serve_dir, as_of="2026-11-24", run_id=f"run{i:05d}") for i in range(3)]
    for i in range(3):
        publish(warehouse, serve_dir, as_of="2026-10-01", run_id=f"old{i:05d}")
    kept = {p.name for p in (serve_dir / "builds").iterdir()}
    assert {b.build_id for b in promoted} <= kept
    assert len(kept) == 6


def test_hugeint_counts_are_published_as_bigint(warehouse, tmp_path):
    warehouse.execute(
        "create table marts.counts as select sum(range) as n from range(10)"  # sum -> HUGEINT
    )
    assert warehouse.execute("describe marts.counts").fetchall()[0][1] == "HUGEINT"
    publish(warehouse, tmp_path / "serve")
    with open_current(tmp_path / "serve") as snapshot:
        assert snapshot.execute("describe marts.counts").fetchall()[0][1] == "BIGINT"
        assert snapshot.execute("select n from marts.counts").fetchall() == [(45,)]

"""The BI snapshot: complete, PII-free, swapped in atomically, never moved back in time."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipeline import warehouse as warehouse_module
from pipeline.publish import snapshot


@pytest.fixture
def warehouse(tmp_path):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    conn.execute("create schema marts")
    conn.execute(
        "create table marts.dim_customer as select 'C' || range as customer_code, 'Jane' as customer, "
        "'j@x.com' as email, date '1990-01-01' as date_of_birth, 'India' as market from range(5)"
    )
    conn.execute(
        "create table marts.fact_sales as select range as id, range * 1.5 as amount from range(7)"
    )
    conn.execute("create schema staging")
    conn.execute("create table staging.not_published as select 1 as x")
    yield conn
    conn.close()


def publish(conn, serve_dir, as_of="2026-11-24", run_id="run00001", marts=None):
    return snapshot.publish(
        conn, serve_dir, dt.date.fromisoformat(as_of), run_id, "abc123", marts=marts
    )


def open_current(serve_dir):
    return duckdb.connect(str(serve_dir / "current" / snapshot.SNAPSHOT_FILE), read_only=True)


def test_snapshot_holds_every_mart_without_pii_and_its_manifest(warehouse, tmp_path):
    serve_dir = tmp_path / "serve"
    # as the pipeline passes them from dbt's meta: the published marts and their PII columns
    marts = {"dim_customer": {"customer", "email", "date_of_birth"}, "fact_sales": set()}
    manifest = publish(warehouse, serve_dir, marts=marts)
    assert manifest.row_counts == {"dim_customer": 5, "fact_sales": 7}
    assert manifest.promoted and manifest.code_version == "abc123"
    with open_current(serve_dir) as snapshot:
        tables = snapshot.execute(
            "select table_schema || '.' || table_name from information_schema.tables order by 1"
        ).fetchall()
        columns = [r[0] for r in snapshot.execute("describe marts.dim_customer").fetchall()]
        inside = dict(
            snapshot.execute("select table_name, row_count from main.snapshot_manifest").fetchall()
        )
    assert [t for (t,) in tables] == [
        "main.snapshot_manifest",
        "marts.dim_customer",
        "marts.fact_sales",
    ]
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
    assert (serve_dir / "builds" / backfill.build_id / snapshot.SNAPSHOT_FILE).exists()
    assert snapshot.current_manifest(serve_dir).build_id == latest.build_id


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
    promoted = [
        publish(warehouse, serve_dir, as_of="2026-11-24", run_id=f"run{i:05d}") for i in range(3)
    ]
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


# --- issue 17, item 5: a publish leaves nothing behind, and writes the same bytes twice ---------

KILL_PUBLISH = """
import datetime as dt, sys
from pathlib import Path
import duckdb
from pipeline.publish import snapshot
conn = duckdb.connect(sys.argv[1])
snapshot.publish(conn, Path(sys.argv[2]), dt.date(2026, 11, 24), "killed01", "abc123")
"""


def test_the_next_publish_removes_what_a_killed_publish_left(tmp_path):
    """A publish SIGKILLed while it writes its staging folder leaves ``builds/.<id>.tmp``; the
    next publish deletes it, and its own snapshot is complete."""
    path = tmp_path / "warehouse.duckdb"
    serve_dir = tmp_path / "serve"
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema marts")
        # big enough that the publish spends a while inside its staging folder
        conn.execute(
            "create table marts.fact_sales as select range as id, hash(range) as h, "
            "cast(range % 997 as string) as s from range(3000000)"
        )
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_PUBLISH, str(path), str(serve_dir)],
        cwd=Path(snapshot.__file__).parents[2],
    )
    try:
        deadline = time.monotonic() + 120
        while not list(serve_dir.glob("builds/.*.tmp/parquet")):
            assert process.poll() is None, "the publish ended before it could be killed"
            assert time.monotonic() < deadline, "the publish never started its staging folder"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    (leftover,) = serve_dir.glob("builds/.*.tmp")
    assert not (serve_dir / "current").exists()

    with duckdb.connect(str(path)) as conn:
        # the next refresh's marts: small, the size only mattered for catching the kill
        conn.execute("create or replace table marts.fact_sales as select * from range(1000) t(id)")
        manifest = publish(conn, serve_dir, run_id="run00002")
    assert not leftover.exists()
    assert [p.name for p in (serve_dir / "builds").iterdir()] == [manifest.build_id]
    assert manifest.row_counts == {"fact_sales": 1000}


def test_a_leftover_link_of_a_killed_swap_is_removed(warehouse, tmp_path):
    serve_dir = tmp_path / "serve"
    first = publish(warehouse, serve_dir, run_id="run00001")
    # killed between creating the new link and renaming it onto `current`
    stray = serve_dir / ".current.somebuild.tmp"
    stray.symlink_to(f"builds/{first.build_id}", target_is_directory=True)
    publish(warehouse, serve_dir, run_id="run00002")
    assert not stray.is_symlink()
    assert (serve_dir / "current" / snapshot.MANIFEST_FILE).exists()


def parquet_digests(serve_dir, build_id):
    folder = serve_dir / "builds" / build_id / "parquet"
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_identical_refreshes_write_byte_identical_parquet(tmp_path):
    """The same rows stored in another order (as parallel queries do from run to run) publish
    byte-identical Parquet files, and the snapshot tables read back in that fixed order."""
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    conn.execute("create schema marts")
    rows = (
        "select range % 1000 as customer, cast(range % 7 as string) as segment, "
        "range * 0.25 as amount, sum(range) over () as n from range(300000)"
    )
    serve_dir = tmp_path / "serve"
    builds = []
    for order in ("range", "range desc", "hash(range)"):
        conn.execute(f"create or replace table marts.sales as {rows} order by {order}")
        builds.append(publish(conn, serve_dir, run_id=f"run{len(builds):05d}"))
    # the warehouse really held the rows in different orders
    first_rows = conn.execute("select customer from marts.sales limit 3").fetchall()
    assert first_rows != [(0,), (1,), (2,)]
    digests = [parquet_digests(serve_dir, b.build_id) for b in builds]
    assert digests[0] == digests[1] == digests[2]
    assert set(digests[0]) == {"sales.parquet"}
    with open_current(serve_dir) as snapshot:
        published = snapshot.execute("select customer, segment, amount from marts.sales").fetchall()
    assert published == sorted(published)
    conn.close()


def test_a_table_keyed_by_its_first_column_is_written_in_the_same_order_as_by_every_column(
    tmp_path,
):
    """Sorted by the key alone when the first column is one (issue 18: cheaper on wide tables):
    the same order as ``order by all``, so the same bytes; a null or a duplicate in that column
    falls back to every column."""
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    conn.execute("create schema marts")
    wide = ", ".join(f"cast(hash(range + {i}) % 97 as string) as c{i}" for i in range(12))
    keyed = f"select range as id, {wide} from range(20000)"
    not_keyed = f"select case when range = 7 then null else range % 16000 end as id, {wide} from range(20000)"
    serve_dir = tmp_path / "serve"
    digests = []
    for rows in (keyed, not_keyed):
        for order in ("range desc", "hash(range)"):
            conn.execute(f"create or replace table marts.wide as {rows} order by {order}")
            build = publish(conn, serve_dir, run_id=f"run{len(digests):05d}")
            digests.append(parquet_digests(serve_dir, build.build_id))
            with open_current(serve_dir) as snapshot:
                published = snapshot.execute("select * from marts.wide").fetchall()
            expected = conn.execute(f"select * from ({rows}) order by all").fetchall()
            assert published == expected
    assert digests[0] == digests[1] and digests[2] == digests[3]
    conn.close()


def test_a_failed_parquet_copy_fails_the_export_and_leaves_the_warehouse_usable(
    warehouse, tmp_path
):
    """Parquet files are written on a thread beside the next table's sort (issue 18): a copy
    that fails still fails the export, naming the file, and the snapshot file is detached."""
    columns = {"dim_customer": ["customer_code", "market"], "fact_sales": ["id", "amount"]}
    missing = tmp_path / "no such folder"
    with pytest.raises(duckdb.Error, match="no such folder"):
        warehouse_module.export_tables(
            warehouse, "marts", columns, str(tmp_path / "s.duckdb"), str(missing), dt.date.today()
        )
    attached = {
        name
        for (name,) in warehouse.execute("select database_name from duckdb_databases()").fetchall()
    }
    assert "snapshot" not in attached
    # and the next export works
    (tmp_path / "parquet").mkdir()
    counts = warehouse_module.export_tables(
        warehouse,
        "marts",
        columns,
        str(tmp_path / "t.duckdb"),
        str(tmp_path / "parquet"),
        dt.date.today(),
    )
    assert counts == {"dim_customer": 5, "fact_sales": 7}
    assert sorted(p.name for p in (tmp_path / "parquet").iterdir()) == [
        "dim_customer.parquet",
        "fact_sales.parquet",
    ]

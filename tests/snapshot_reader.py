"""A BI reader, run as its own process by the tests: it opens the published snapshot read-only
again and again while refreshes run, and checks each snapshot against its own manifest.

    python -m tests.snapshot_reader <serve_dir> <stop_file> <result_json> [duckdb|sqlalchemy]

``duckdb`` (the default) uses DuckDB's Python API; ``sqlalchemy`` goes through duckdb-engine,
the SQLAlchemy driver Superset and similar BI tools use, with the README's connection string and,
like Superset, no connection pool (each query opens the snapshot that is current).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import duckdb

# A read takes ~50 ms of CPU. The reader reads as often as it can while a publish is under way
# (a staging folder in builds/, or the link swapped less than SWAP_WINDOW seconds ago, when old
# builds are pruned), with READ_PAUSE between reads; and once every IDLE_READ_EVERY seconds the
# rest of the refresh (dbt and the models write the warehouse, not the snapshot). Reading as often
# for the whole refresh kept each reader busy ~30% of a core (~6 s of CPU a refresh).
READ_PAUSE = 0.15
IDLE_READ_EVERY = 1.0
SWAP_WINDOW = 2.0
POLL = 0.02  # how often it looks for a publish (a directory listing)
MANIFEST_SQL = "select table_name, row_count, build_id from main.snapshot_manifest"


def check(manifest: list, count) -> str:
    """Verify every table's row count against the snapshot's manifest; return its build id."""
    if not manifest:
        raise AssertionError("empty manifest")
    for table, expected, _ in manifest:
        actual = count(table)
        if actual != expected:
            raise AssertionError(f"{table}: {actual} rows, manifest says {expected}")
    return manifest[0][2]


def duckdb_reader(snapshot: Path):
    def read_once() -> str:
        with duckdb.connect(str(snapshot), read_only=True) as conn:
            manifest = conn.execute(MANIFEST_SQL).fetchall()
            return check(
                manifest, lambda table: conn.execute(f"select count(*) from {table}").fetchone()[0]
            )

    return read_once


def sqlalchemy_url(snapshot: Path) -> str:
    """The README's connection string for SQLAlchemy-based BI tools (duckdb-engine)."""
    return f"duckdb:///{snapshot}?access_mode=read_only"


def sqlalchemy_reader(snapshot: Path):
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(sqlalchemy_url(snapshot), poolclass=NullPool)

    def read_once() -> str:
        with engine.connect() as conn:
            manifest = [tuple(row) for row in conn.execute(sa.text(MANIFEST_SQL)).fetchall()]
            return check(
                manifest,
                lambda table: conn.execute(sa.text(f"select count(*) from {table}")).scalar_one(),
            )

    return read_once


READERS = {"duckdb": duckdb_reader, "sqlalchemy": sqlalchemy_reader}


def publishing(serve: Path) -> bool:
    """A publish is writing its staging folder or swapping the link (pipeline/publish)."""
    return any((serve / "builds").glob(".*.tmp")) or any(serve.glob(".current.*.tmp"))


def link_of(serve: Path) -> str | None:
    try:
        return os.readlink(serve / "current")
    except OSError:
        return None


def main(serve_dir: str, stop_file: str, result_json: str, client: str = "duckdb") -> None:
    serve = Path(serve_dir)
    snapshot = serve / "current" / "customer_analytics.duckdb"
    read_once = READERS[client](snapshot)
    builds, errors, reads, publish_reads = [], [], 0, 0
    last_read = swapped = -float("inf")
    link = link_of(serve)
    while True:
        # read once more after the stop signal, so the last published snapshot is seen too
        stopping = Path(stop_file).exists()
        now = time.monotonic()
        if link_of(serve) != link:
            link, swapped = link_of(serve), now
        busy = publishing(serve) or now - swapped < SWAP_WINDOW
        if stopping or busy or now - last_read >= IDLE_READ_EVERY:
            try:
                build = read_once()
                reads += 1
                publish_reads += busy
                if not builds or builds[-1] != build:
                    builds.append(build)
            except Exception as error:  # the test asserts there are none
                errors.append(f"{type(error).__name__}: {error}")
            last_read = now
            if stopping:
                break
            time.sleep(READ_PAUSE if busy else POLL)
        else:
            time.sleep(POLL)
    Path(result_json).write_text(
        json.dumps(
            {
                "builds": builds,
                "errors": errors,
                "reads": reads,
                "publish_reads": publish_reads,
                "client": client,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])

"""A BI reader, run as its own process by the tests: it opens the published snapshot read-only
again and again while refreshes run, and checks each snapshot against its own manifest.

    python -m tests.snapshot_reader <serve_dir> <stop_file> <result_json> [duckdb|sqlalchemy]

``duckdb`` (the default) uses DuckDB's Python API; ``sqlalchemy`` goes through duckdb-engine,
the SQLAlchemy driver Superset and similar BI tools use, with the README's connection string and,
like Superset, no connection pool (each query opens the snapshot that is current).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

# Between two reads: a read takes 20-40 ms of CPU, so a reader stays busy a fraction of a
# core for the whole refresh while still reading several times during its publish step.
READ_PAUSE = 0.15
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


def main(serve_dir: str, stop_file: str, result_json: str, client: str = "duckdb") -> None:
    snapshot = Path(serve_dir) / "current" / "customer_analytics.duckdb"
    read_once = READERS[client](snapshot)
    builds, errors, reads = [], [], 0
    while True:
        # read once more after the stop signal, so the last published snapshot is seen too
        stopping = Path(stop_file).exists()
        try:
            build = read_once()
            reads += 1
            if not builds or builds[-1] != build:
                builds.append(build)
        except Exception as error:  # the test asserts there are none
            errors.append(f"{type(error).__name__}: {error}")
        if stopping:
            break
        time.sleep(READ_PAUSE)
    Path(result_json).write_text(
        json.dumps({"builds": builds, "errors": errors, "reads": reads, "client": client})
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])

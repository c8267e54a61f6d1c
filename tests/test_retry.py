"""A DuckDB lock held by another process turns into a Dagster retry; other errors do not."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import dagster as dg
import duckdb
import pytest

from pipeline.retry import retry_on_duckdb_lock


@pytest.fixture
def locked_warehouse(tmp_path):
    """Another process holds the warehouse open for writing until the test ends."""
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys
            conn = duckdb.connect({str(path)!r})
            print("locked", flush=True)
            sys.stdin.read()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    yield path
    holder.communicate("")


def test_a_lock_conflict_requests_a_retry(locked_warehouse):
    with pytest.raises(dg.RetryRequested) as raised:
        with retry_on_duckdb_lock():
            duckdb.connect(str(locked_warehouse))
    assert raised.value.max_retries == 3
    assert "Conflicting lock" in str(raised.value.__cause__)


def test_other_errors_fail_at_once(tmp_path):
    with pytest.raises(duckdb.CatalogException):
        with retry_on_duckdb_lock(), duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
            conn.execute("select * from missing_table")

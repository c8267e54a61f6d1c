"""The standard seeded refresh that several test modules read: two full refreshes into one
warehouse 30 days apart, BI readers running during the second.

It runs once per test session (the ``standard_refresh`` fixture in tests/conftest.py): each full
refresh costs ~15 s of CPU, so modules that only read its results share it instead of refreshing.
Its first refresh is also where tests/test_operations.py starts: ``first_refresh_copy`` runs it
once per test run, whichever worker asks first, and gives each scenario a copy of its data folder.
(Re-running an as-of date is tested there, by the backfill of the first refresh's date.)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import duckdb
import pytest

from pipeline import settings
from pipeline.defs.definitions import build_definitions
from pipeline.defs.schedules import refresh_run_config

CUSTOMERS = "1500"
FIRST_AS_OF = "2026-10-25"
AS_OF = "2026-11-24"  # 30 days later: two 15-day refreshes apart


class Refresh(NamedTuple):
    result: dg.ExecuteInProcessResult
    settings: settings.Settings
    defs: dg.Definitions
    reader: dict
    bi_tool_reader: dict  # the same, through duckdb-engine (SQLAlchemy), as BI tools connect


def quiet_run_config(as_of: dt.date | str) -> dict:
    """The refresh's run config for an in-process run in a test. Dagster's console logger would
    print every event at DEBUG (about 700 lines a refresh, 2 s of CPU); tests read the events
    from the run's result, so the console shows warnings and errors only."""
    as_of = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    return {
        **refresh_run_config(as_of),
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }


def run_refresh(defs: dg.Definitions, as_of: str) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("refresh").execute_in_process(
        run_config=quiet_run_config(as_of),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def history_counts(warehouse) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(
            "select cast(as_of_date as string), count(*), sum(total_net_sales) "
            "from marts.customer_segment_history group by 1 order by 1"
        ).fetchall()


@contextmanager
def seeded_environment(data_dir: Path):
    """The settings of the seeded refreshes (1,500 customers) with their files under data_dir."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIPELINE_DATA_DIR", str(data_dir))
        mp.setenv("PIPELINE_CUSTOMERS", CUSTOMERS)
        mp.setenv("DBT_TARGET_PATH", str(data_dir.parent / "dbt_target"))
        mp.delenv("PIPELINE_WAREHOUSE", raising=False)
        yield settings.load(as_of=dt.date.fromisoformat(AS_OF))


def first_refresh_copy(tmp_path_factory, data_dir: Path) -> None:
    """Copy into data_dir (which must not exist) the data folder of the seeded first refresh: a
    full refresh as of FIRST_AS_OF into an empty data folder, snapshot published. It is the same
    computation wherever it starts a scenario, so it runs once per test run: under pytest-xdist
    the first worker to ask runs it and the others wait for it (a file lock in the run's temp
    dir, which the workers share)."""
    base = tmp_path_factory.getbasetemp()
    shared_root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    shared = shared_root / "first-refresh"
    failed = shared_root / "first-refresh.failed"
    with (shared_root / "first-refresh.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not shared.exists() and not failed.exists():
            staging = shared_root / "first-refresh.tmp"
            shutil.rmtree(staging, ignore_errors=True)  # from a worker interrupted mid-refresh
            with seeded_environment(staging / "data") as current:
                first = run_refresh(build_definitions(current), FIRST_AS_OF)
            if not first.success:
                failed.write_text(failure_summary(first))
            else:
                os.rename(staging, shared)  # complete, or not there at all
    if failed.exists():
        raise AssertionError(f"the first refresh failed: {failed.read_text()}")
    # the snapshot link is relative (builds/<id>), so the copy points into its own builds
    shutil.copytree(shared / "data", data_dir, symlinks=True)


def failure_summary(result: dg.ExecuteInProcessResult) -> str:
    return "; ".join(
        f"{e.step_key}: {e.step_failure_data.error.message.strip()[:400] if e.step_failure_data.error else '?'}"
        for e in result.get_step_failure_events()
    )


def two_refreshes(tmp_path_factory) -> Refresh:
    """Two full refreshes into one warehouse, 30 days apart; the first is a copy of the run's
    seeded first refresh (``first_refresh_copy``)."""
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    first_refresh_copy(tmp_path_factory, data_dir)
    with seeded_environment(data_dir) as current:
        defs = build_definitions(current)
        # a BI reader process queries the published snapshot in a loop during the next refresh
        with (
            snapshot_reader(serve_dir(current)) as reader,
            snapshot_reader(serve_dir(current), client="sqlalchemy") as bi_tool_reader,
        ):
            result = run_refresh(defs, AS_OF)
    return Refresh(result, current, defs, reader, bi_tool_reader)


def serve_dir(current: settings.Settings) -> Path:
    return current.data_dir / "serve"


@contextmanager
def snapshot_reader(serve: Path, client: str = "duckdb"):
    """Run tests/snapshot_reader.py in its own process for the duration of the block."""
    stop, result = serve.parent / f"reader-{client}.stop", serve.parent / f"reader-{client}.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.snapshot_reader", str(serve), str(stop), str(result), client],
        cwd=settings.REPO_ROOT,
    )
    outcome: dict = {}
    try:
        yield outcome
    finally:
        stop.touch()
        process.wait(timeout=60)
        outcome.update(json.loads(result.read_text()))


def snapshot_digest(build: Path) -> dict[str, str]:
    """An md5 per published table of a build (serve/builds/<id>) over its rows in a canonical
    order, every value exact."""
    path = build / "customer_analytics.duckdb"
    digests = {}
    with duckdb.connect(str(path), read_only=True) as conn:
        for (table,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall():
            fields = [name for name, *_ in conn.execute(f"describe marts.{table}").fetchall()]
            row = " || '|' || ".join(f"coalesce(cast({f} as string), '<null>')" for f in fields)
            (digests[table],) = conn.execute(
                f"select md5(string_agg(r, chr(10) order by r)) from (select {row} as r from marts.{table})"
            ).fetchone()
    return digests

"""The command line as a user meets it: a failed import's last lines and settings refused up
front. The README's shell refresh, run as written in a clean environment, and what a successful
run prints are tested in tests/test_operations.py, where that command is the refresh after a
killed one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from pipeline import cli, progress
from pipeline import settings as settings_module

pytestmark = pytest.mark.slow  # dbt or a whole refresh: not in `make test-fast`


def test_a_failed_import_ends_with_its_cause_and_is_recorded(tmp_path, monkeypatch, capfd):
    """Run in this process (`cli.main`, the command's code path) to spare an interpreter start."""
    check_failed_import("duckdb", tmp_path, monkeypatch, capfd)


def check_failed_import(engine: str, tmp_path, monkeypatch, capfd) -> None:
    """A refresh whose import fails, on ``engine`` (tests/spark/test_spark_cli.py: Spark)."""
    imports = tmp_path / "import"
    imports.mkdir()
    (imports / "transactions.csv").write_text("customer_id,order_date,total\nK1,2026-11-01,10\n")
    data_dir = tmp_path / "data"
    for name in [n for n in os.environ if n.startswith(("PIPELINE_", "DAGSTER_"))]:
        monkeypatch.delenv(name)
    for name, value in {
        "PIPELINE_DATA_DIR": str(data_dir),
        "PIPELINE_SOURCE": "files",
        "PIPELINE_IMPORT_LAYOUT": "transactions",
        "PIPELINE_IMPORT_DIR": str(imports),
        "PIPELINE_ENGINE": engine,
    }.items():
        monkeypatch.setenv(name, value)

    assert cli.main(["refresh", "--as-of", "2026-11-24"]) == cli.EXIT_FAILED
    out, err = capfd.readouterr()
    last = err.strip().splitlines()
    assert "Traceback" not in out + err
    cause = next(line for line in last if line.startswith("Cause:"))
    assert (
        "FileImportError" in cause
        and "transactions.csv" in cause
        and "PIPELINE_IMPORT_COLUMN_AMOUNT" in cause
    )
    assert "pipeline.ingest" not in cause  # the class is named once, plainly
    assert last[-1].startswith("Full log: ") and Path(last[-1].split(": ", 1)[1]).exists()
    assert re.search(r"^  imported_raw_data +FAILED .*FileImportError", out, re.MULTILINE)
    # Everything downstream of the import is named, and the count matches the names listed.
    not_run = re.search(
        r"not run: (\d+) steps downstream of the failure \(([^)]*)\)", out.replace("\n    ", " ")
    )
    assert not_run, out
    names = [name.strip() for name in not_run.group(2).split(",")]
    assert int(not_run.group(1)) == len(names)
    assert {
        "star_schema",
        "customer_cltv",
        "customer_marts",
        "serve__bi_snapshot",
        "serve__dashboard",
    } <= set(names)

    # Spark mode has no DuckDB warehouse: ops.run_failures is a file of its own
    database = data_dir / ("spark/failures.duckdb" if engine == "spark" else "warehouse.duckdb")
    assert f"Recorded in ops.run_failures of {database}." in last
    assert (data_dir / "warehouse.duckdb").exists() == (engine == "duckdb")
    # (the resource's own connection settings: the failed step's connection may still be open here)
    with DuckDBResource(database=str(database)).get_connection() as conn:
        rows = conn.execute(
            "select run_id, as_of_date, failed_steps, message from ops.run_failures"
        ).fetchall()
    assert len(rows) == 1
    run_id, as_of, failed_steps, message = rows[0]
    assert (as_of, failed_steps) == ("2026-11-24", "imported_raw_data")
    assert message == cause.removeprefix("Cause: ")
    with dg.DagsterInstance.from_config(str(data_dir / "dagster_home")) as instance:
        run = instance.get_run_by_id(run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert "FileImportError" in run.tags["pipeline/failure"]


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--as-of", "2024-02-30"], {}, "--as-of '2024-02-30' is not a date: use YYYY-MM-DD"),
        (["--as-of", "30/06/2026"], {}, "--as-of '30/06/2026' is not a date"),
        (
            ["--as-of", "2020-01-01"],
            {},
            "--as-of 2020-01-01: as-of date 2020-01-01 is before the start",
        ),
        ([], {"PIPELINE_CUSTOMERS": "lots"}, "PIPELINE_CUSTOMERS='lots' is not an integer"),
        (
            [],
            {"PIPELINE_AS_OF": "2024-02-30"},
            "PIPELINE_AS_OF='2024-02-30' is not a date (YYYY-MM-DD)",
        ),
        ([], {"PIPELINE_API_KEY": "short"}, "PIPELINE_API_KEY must be at least 16"),
    ],
)
def test_bad_settings_stop_before_any_work_in_one_line(
    tmp_path, monkeypatch, capfd, argv, env, named
):
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["refresh", *argv]) == cli.EXIT_BAD_SETTINGS
    out, err = capfd.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("Settings error: ")
    assert named in err
    assert not (tmp_path / "data" / "dagster_home").exists()  # nothing was set up


def test_a_data_folder_that_cannot_be_written_is_refused_up_front(tmp_path, monkeypatch, capfd):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(blocker / "data"))
    assert cli.main(["refresh"]) == cli.EXIT_BAD_SETTINGS
    _, err = capfd.readouterr()
    assert err.count("\n") == 1
    assert f"PIPELINE_DATA_DIR={blocker / 'data'}: the folder cannot be written" in err


def test_the_instance_follows_the_data_folder_unless_dagster_home_is_set(tmp_path):
    current = settings_module.load(environ={"PIPELINE_DATA_DIR": str(tmp_path / "d")})
    assert current.paths.dagster_home(environ={}) == tmp_path / "d" / "dagster_home"
    assert (
        current.paths.dagster_home(environ={"DAGSTER_HOME": str(tmp_path / "h")}) == tmp_path / "h"
    )
    home = progress.prepare_instance(tmp_path / "h")
    (home / "dagster.yaml").write_text("# mine\n")
    progress.prepare_instance(home)
    assert (home / "dagster.yaml").read_text() == "# mine\n"  # an operator's file is kept


def test_the_refresh_time_counts_from_the_process_start():
    """The refresh's "succeeded in" is the command's wall time (issue 18's measure), loading
    Dagster and dbt included: a second slept before the CLI module is imported is counted."""
    script = (
        "import time; time.sleep(1.0); from pipeline import cli; print(cli.seconds_since_start())"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    seconds = float(output.split()[-1])
    assert 1.0 <= seconds < 60
    assert cli.seconds_since_start() > 0

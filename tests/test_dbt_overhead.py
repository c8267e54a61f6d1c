"""What the dbt steps skip at start-up, and that skipping it leaves the builds as they were."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from functools import cached_property
from importlib.metadata import entry_points
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_dbt import DbtCliResource

from pipeline import dbt_runner
from pipeline.defs.assets.dbt import PARSE_CACHE, keep_parse, reuse_parse
from pipeline.defs.resources import DbtCli, build_resources, dbt_executable
from pipeline.paths import WAREHOUSE_ENV
from pipeline.project import dbt_project
from tests.rawdata import random_order_lines, write_raw


def test_the_overridden_dagster_dbt_hooks_still_exist():
    """DbtCli overrides two private hooks of dagster-dbt; an upgrade that renames them would
    silently bring the costs back."""
    assert isinstance(vars(DbtCliResource)["_cli_version"], cached_property)
    assert callable(vars(DbtCliResource)["_initialize_dbt_core_adapter"])


def test_the_dbt_version_is_known_without_running_dbt(capfd):
    """The version the resource assumes is the one its executable reports. The executable is
    pipeline-dbt beside this Python, whose entry point is dbt_runner.main: that function is run
    here, in this process (a dbt process costs ~3 s of CPU to start; the same Python and the
    same installed dbt either way)."""
    dbt = build_resources()["dbt"]
    assert isinstance(dbt, DbtCli)
    assert Path(dbt_executable()) == Path(sys.executable).parent / "pipeline-dbt"
    (script,) = entry_points(group="console_scripts", name="pipeline-dbt")
    assert script.value == "pipeline.dbt_runner:main"
    capfd.readouterr()
    assert dbt_runner.main(["--version"]) == 0
    assert f"installed: {dbt._cli_version}" in capfd.readouterr().out


def test_a_saved_parse_is_handed_to_the_next_build_and_replaced_by_its_own(tmp_path):
    runs = tmp_path / "dbt_runs"
    first, second = runs / "run1-star_schema", runs / "run1-customer_marts"
    reuse_parse(runs / PARSE_CACHE, first)  # nothing saved yet: nothing to hand over
    assert not (first / PARSE_CACHE).exists()
    first.mkdir(parents=True)
    (first / PARSE_CACHE).write_bytes(b"parse of the first build")
    keep_parse(first, runs / PARSE_CACHE)
    reuse_parse(runs / PARSE_CACHE, second)
    assert (second / PARSE_CACHE).read_bytes() == b"parse of the first build"
    shutil.rmtree(first)  # a build killed before dbt wrote its parse keeps the saved one
    first.mkdir()
    keep_parse(first, runs / PARSE_CACHE)
    assert (runs / PARSE_CACHE).read_bytes() == b"parse of the first build"
    assert {p.name for p in runs.iterdir()} == {PARSE_CACHE, first.name, second.name}


def test_the_prepared_parse_is_used_only_while_it_matches_the_project(tmp_path, monkeypatch):
    """pipeline-dbt hands dbt the manifest `make prepare` saved, for the DuckDB target and a
    warehouse named like the one it was parsed for; an edit since then, another target or
    another catalog name make it parse as plain dbt does."""
    monkeypatch.setenv(WAREHOUSE_ENV, str(tmp_path / "data" / "warehouse.duckdb"))
    manifest, why = dbt_runner.prepared_manifest(["build", "--target", "duckdb"])
    assert why is None and "model.customer_analytics.fact_sales" in manifest.nodes

    _, why = dbt_runner.prepared_manifest(["build", "--target", "spark"])
    assert why == "target 'spark' is not the prepared one"

    monkeypatch.setenv(WAREHOUSE_ENV, str(tmp_path / "other.duckdb"))
    _, why = dbt_runner.prepared_manifest(["build"])
    assert "not 'other'" in why
    monkeypatch.setenv(WAREHOUSE_ENV, str(tmp_path / "data" / "warehouse.duckdb"))

    # a copy of the project whose model is edited after its parse was saved
    project = tmp_path / "dbt_project"
    shutil.copytree(
        dbt_runner.PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs")
    )
    prepared = project / "target" / PARSE_CACHE
    prepared.parent.mkdir()
    shutil.copyfile(dbt_runner.PREPARED, prepared)
    manifest, why = dbt_runner.prepared_manifest(["build"], prepared, project)
    assert why is None
    model = project / "models" / "marts" / "core" / "fact_sales.sql"
    model.write_text(model.read_text() + "\n")
    os.utime(model, (prepared.stat().st_mtime + 5,) * 2)
    manifest, why = dbt_runner.prepared_manifest(["build"], prepared, project)
    assert manifest is None
    assert why == "models/marts/core/fact_sales.sql changed after the prepared parse"


def test_pipeline_dbt_names_the_pipelines_project_without_importing_dagster():
    """pipeline-dbt starts before every dbt build: Dagster's import would add 2.8 s to each."""
    assert dbt_runner.PROJECT_DIR == dbt_project.project_dir
    assert dbt_runner.PREPARED_TARGET == dbt_project.target
    # tests/conftest.py finds the manifest through dbt_runner too
    assert dbt_project.manifest_path == dbt_runner.PROJECT_DIR / "target" / "manifest.json"
    modules = subprocess.run(
        [sys.executable, "-c", "import sys, pipeline.dbt_runner; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "dagster" not in modules and "'dbt.cli.main'" not in modules


@pytest.mark.slow
def test_dbt_builds_in_this_process_and_lets_go_of_the_warehouse(tmp_path, monkeypatch):
    """The DuckDB target's builds run in this process (no dbt start-up per build): one after
    another on two warehouse files, each free for this process's own connections at once, and
    a failed build names dbt's error."""
    from pipeline.defs.resources import DbtCli

    children_before = set(multiprocessing.active_children())
    for name in ("first", "second"):
        database = tmp_path / name / "warehouse.duckdb"
        write_raw(database, random_order_lines(20, dt.date(2026, 11, 24)))
        monkeypatch.setenv(WAREHOUSE_ENV, str(database))
        dbt = DbtCli(
            project_dir=dbt_project, dbt_executable=dbt_executable(), warehouse=str(database)
        )
        build = dbt.build(
            ["build", "--select", "stg_raw__customers", "--indirect-selection", "cautious"],
            target_path=tmp_path / name / "target",
        )
        assert build.is_successful(), build.error
        with duckdb.connect(str(database), read_only=True) as conn:  # another configuration
            (rows,) = conn.execute("select count(*) from staging.stg_raw__customers").fetchone()
        assert rows == 20
        results = build.get_artifact("run_results.json")["results"]
        assert {r["unique_id"].split(".")[-1] for r in results} >= {"stg_raw__customers"}
        assert not (tmp_path / name / "target" / "manifest.json").exists()  # the prepared one
        log = (tmp_path / name / "target" / "dbt.log").read_text().splitlines()
        assert json.loads(log[0])["info"]["name"]  # JSON lines, as the benchmark reads them
    assert set(multiprocessing.active_children()) == children_before

    empty = tmp_path / "empty" / "warehouse.duckdb"
    empty.parent.mkdir()
    duckdb.connect(str(empty)).close()
    monkeypatch.setenv(WAREHOUSE_ENV, str(empty))
    dbt = DbtCli(project_dir=dbt_project, dbt_executable=dbt_executable(), warehouse=str(empty))
    failed = dbt.build(
        ["build", "--select", "stg_raw__customers"], target_path=tmp_path / "empty" / "target"
    )
    assert not failed.is_successful()
    cause = str(failed.error).split("Errors parsed from dbt logs:", 1)[1]  # what the CLI shows
    assert 'Table with name "raw.customers" does not exist' in cause


@pytest.mark.slow
def test_the_duckdb_memory_limit_holds_for_the_pipelines_connections_and_dbts(
    tmp_path, monkeypatch
):
    """PIPELINE_DUCKDB_MEMORY_LIMIT: DuckDB's own default (80% of the machine) counts only
    DuckDB, and a 10M-customer refresh, with its pandas frames in the same process, was killed
    for lack of memory. Both the warehouse resource and dbt's connection use the setting. Both
    also switch DuckDB's progress bar off: a query over 2 s printed one into the refresh's log."""
    from pipeline import settings as settings_module

    monkeypatch.setenv("PIPELINE_DUCKDB_MEMORY_LIMIT", "1GB")
    current = settings_module.load()
    current.data_dir.mkdir(parents=True)
    resources = build_resources(current)
    with resources["duckdb"].get_connection() as conn:
        limit, progress_bar = conn.execute(
            "select current_setting('memory_limit'), current_setting('enable_progress_bar')"
        ).fetchone()
    assert (limit, progress_bar) == ("953.6 MiB", False)  # 10**9 bytes

    monkeypatch.delenv("PIPELINE_DUCKDB_MEMORY_LIMIT")  # the dbt resource sets it for dbt
    dbt = resources["dbt"]
    dbt.setup_for_execution(dg.build_init_resource_context())
    finished = dbt_runner.run_in_process(
        [
            "show",
            "--inline",
            "select current_setting('memory_limit') as memory_limit, "
            "current_setting('enable_progress_bar') as progress_bar",
            *("--project-dir", str(dbt_project.project_dir)),
            *("--profiles-dir", str(dbt_project.profiles_dir)),
            *("--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "target")),
        ]
    )
    assert finished.success, finished.errors
    (shown,) = finished.result.results
    assert [tuple(row) for row in shown.agate_table.rows] == [("953.6 MiB", False)]

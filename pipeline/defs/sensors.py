"""Failed runs are recorded where a person sees them: a table in the warehouse
(ops.run_failures) and the failed run's own tags in the Dagster UI.

Two paths write them, with the same message (the root cause in plain words): this sensor, for
runs launched by the daemon or the UI, and the CLI (``pipeline.cli``) for the refreshes it runs
itself, killed ones included, so the record does not depend on the daemon running.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb as duckdb_module
from dagster_duckdb import DuckDBResource

from pipeline import progress, warehouse
from pipeline.defs.jobs import refresh_job
from pipeline.defs.resources import run_config_as_of

FAILURE_TAG = "pipeline/failure"


def run_as_of(run: dg.DagsterRun) -> str | None:
    return run.tags.get("pipeline/as_of") or run_config_as_of(run.run_config)


def record_failure(
    conn: duckdb_module.DuckDBPyConnection,
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    failed_steps: list[str],
    message: str,
) -> None:
    """One row in ops.run_failures (re-recording a run replaces its row) and the run's tag."""
    warehouse.append_run_failure(
        conn,
        run_id=run.run_id,
        job_name=run.job_name,
        as_of=run_as_of(run),
        failed_at=dt.datetime.now(dt.timezone.utc),
        failed_steps=", ".join(failed_steps),
        message=message,
    )
    instance.add_run_tags(run.run_id, {FAILURE_TAG: message[:250]})


def record_failure_safely(
    database: Path,
    instance: dg.DagsterInstance,
    run: dg.DagsterRun | None,
    failed_steps: list[str],
    message: str,
) -> str:
    """``record_failure`` from the CLI, after its run: a held warehouse lock or a missing run must
    not hide the failure being reported. Returns a line saying where it was recorded."""
    if run is None:
        return "Not recorded in ops.run_failures: the run is not in the Dagster instance."
    try:
        database.parent.mkdir(parents=True, exist_ok=True)  # Spark mode's file, before its folder
        # the run's own resource: DuckDB refuses a second connection to a file this process still
        # has open with another configuration
        with DuckDBResource(database=str(database)).get_connection() as conn:
            record_failure(conn, instance, run, failed_steps, message)
    except (duckdb_module.Error, OSError) as error:
        return f"Not recorded in ops.run_failures ({type(error).__name__}: {str(error).splitlines()[0]})."
    return f"Recorded in ops.run_failures of {database}."


def unfinished_steps(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Steps of a run that started and never ended (what a killed run was doing)."""
    started, ended = [], set()
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started.append(event.step_key)
        elif event.event_type in (
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        ):
            ended.add(event.step_key)
    return [step for step in started if step not in ended]


@dg.run_failure_sensor(
    name="record_run_failures",
    monitored_jobs=[refresh_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes every failed refresh to ops.run_failures and tags the run with the reason.",
)
def record_run_failures(context: dg.RunFailureSensorContext, duckdb: DuckDBResource):
    run = context.dagster_run
    events = [
        entry.dagster_event
        for entry in context.instance.all_logs(run.run_id)
        if entry.dagster_event
    ]
    failed_steps, cause = progress.describe_failure(events)
    if not failed_steps:  # failed before any step (or killed): the run's own message says why
        cause = context.failure_event.message or cause
        failed_steps = unfinished_steps(context.instance, run.run_id)
    with duckdb.get_connection() as conn:
        record_failure(conn, context.instance, run, failed_steps, cause)

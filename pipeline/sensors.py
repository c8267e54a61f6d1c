"""Failed runs are recorded where a person sees them: a table in the warehouse
(ops.run_failures) and the failed run's own tags in the Dagster UI."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline import warehouse
from pipeline.jobs import refresh_job

FAILURE_TAG = "pipeline/failure"


@dg.run_failure_sensor(
    name="record_run_failures",
    monitored_jobs=[refresh_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes every failed refresh to ops.run_failures and tags the run with the reason.",
)
def record_run_failures(context: dg.RunFailureSensorContext, duckdb: DuckDBResource):
    run = context.dagster_run
    message = context.failure_event.message or "unknown failure"
    failed_steps = sorted({e.step_key for e in context.get_step_failure_events() if e.step_key})
    with duckdb.get_connection() as conn:
        warehouse.append_run_failure(
            conn,
            run_id=run.run_id,
            job_name=run.job_name,
            as_of=run.tags.get("pipeline/as_of")
            or (run.run_config.get("resources", {}).get("settings", {}).get("config", {}).get("as_of")),
            failed_at=dt.datetime.now(dt.timezone.utc),
            failed_steps=", ".join(failed_steps),
            message=message,
        )
    context.instance.add_run_tags(run.run_id, {FAILURE_TAG: message[:250]})

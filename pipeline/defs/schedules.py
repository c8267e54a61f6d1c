"""Exactly every 15 days. Cron cannot say it ("*/15" restarts every month), so the schedule ticks
daily and skips unless the tick date is a multiple of 15 days from the anchor date."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipeline.defs.freshness import REFRESH_EVERY_DAYS
from pipeline.defs.jobs import refresh_job
from pipeline.defs.resources import refresh_run_config


def is_refresh_day(day: dt.date, anchor: dt.date) -> bool:
    return (day - anchor).days % REFRESH_EVERY_DAYS == 0


def build_refresh_schedule(anchor: dt.date) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="refresh_every_15_days",
        cron_schedule="0 6 * * *",
        execution_timezone="UTC",
        job=refresh_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"The full refresh every {REFRESH_EVERY_DAYS} days from {anchor.isoformat()}, "
        "as of the tick date.",
    )
    def refresh_every_15_days(context: dg.ScheduleEvaluationContext):
        day = context.scheduled_execution_time.date()
        if not is_refresh_day(day, anchor):
            return dg.SkipReason(
                f"{day} is not a refresh day ({REFRESH_EVERY_DAYS}-day cadence from {anchor})"
            )
        # The tick date is both the run key (one run per tick, even if evaluated twice) and the
        # as-of date, so a run started late still refreshes as of its own tick.
        return dg.RunRequest(
            run_key=day.isoformat(),
            run_config=refresh_run_config(day),
            tags={"pipeline/as_of": day.isoformat()},
        )

    return refresh_every_15_days

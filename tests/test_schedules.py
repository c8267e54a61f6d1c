"""The 15-day schedule evaluated over a year of daily ticks."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from pipeline.defs.schedules import build_refresh_schedule

ANCHOR = dt.date(2026, 1, 1)


def evaluate(schedule: dg.ScheduleDefinition, day: dt.date):
    tick = dt.datetime.combine(day, dt.time(6), tzinfo=dt.timezone.utc)
    return schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=tick))


@pytest.fixture(scope="module")
def year_of_ticks():
    schedule = build_refresh_schedule(ANCHOR)
    days = [ANCHOR + dt.timedelta(days=i) for i in range(-20, 366)]
    return schedule, {day: evaluate(schedule, day) for day in days}


def test_runs_exactly_every_15_days_across_month_and_year_ends(year_of_ticks):
    _, ticks = year_of_ticks
    run_days = sorted(day for day, result in ticks.items() if result.run_requests)
    gaps = {(b - a).days for a, b in zip(run_days, run_days[1:])}
    assert gaps == {15}
    assert ANCHOR in run_days
    assert dt.date(2025, 12, 17) in run_days  # before the anchor too
    assert dt.date(2026, 12, 27) in run_days  # 360 days on: crosses the year end on cadence
    assert len(run_days) == 26


def test_other_days_skip_with_a_reason(year_of_ticks):
    _, ticks = year_of_ticks
    skipped = {day: r for day, r in ticks.items() if not r.run_requests}
    assert len(skipped) == len(ticks) - 26
    message = skipped[dt.date(2026, 1, 2)].skip_message
    assert "2026-01-02 is not a refresh day" in message


def test_run_key_and_as_of_are_the_tick_date(year_of_ticks):
    _, ticks = year_of_ticks
    [request] = ticks[dt.date(2026, 3, 2)].run_requests
    assert request.run_key == "2026-03-02"
    assert request.run_config == {"resources": {"settings": {"config": {"as_of": "2026-03-02"}}}}
    assert request.tags["pipeline/as_of"] == "2026-03-02"


def test_schedule_is_on_by_default_and_targets_the_refresh(year_of_ticks):
    schedule, _ = year_of_ticks
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "refresh"

"""How fresh the published marts must be: the pipeline refreshes every 15 days, so a mart older
than that shows WARN in the UI, and FAIL a day later (a missed refresh)."""

import datetime as dt

import dagster as dg

REFRESH_EVERY_DAYS = 15

REFRESH_FRESHNESS = dg.FreshnessPolicy.time_window(
    warn_window=dt.timedelta(days=REFRESH_EVERY_DAYS, hours=6),
    fail_window=dt.timedelta(days=REFRESH_EVERY_DAYS + 1),
)

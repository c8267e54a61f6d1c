"""The one Definitions object: assets, checks, jobs, schedules, sensors and resources.

``build_definitions`` binds everything to a given set of settings; the module-level ``defs``
(what ``dagster dev`` and ``make run`` load) uses the environment at import.
"""

from __future__ import annotations

import dagster as dg

from pipeline import settings as settings_module
from pipeline.defs.assets.cltv import cltv_evaluation, cltv_model_selection, customer_cltv
from pipeline.defs.assets.clusters import customer_clusters
from pipeline.defs.assets.customers import customer_rfm
from pipeline.defs.assets.dbt import customer_marts, star_schema
from pipeline.defs.assets.publish import bi_snapshot
from pipeline.defs.assets.raw import raw_assets_for, synthetic_raw_data
from pipeline.defs.assets.report import dashboard
from pipeline.defs.checks import clusters_were_found, customer_rfm_checks
from pipeline.defs.jobs import refresh_job
from pipeline.defs.resources import build_resources
from pipeline.defs.schedules import build_refresh_schedule
from pipeline.defs.sensors import record_run_failures

ASSETS = [
    synthetic_raw_data,
    star_schema,
    customer_rfm,
    cltv_model_selection,
    customer_cltv,
    cltv_evaluation,
    customer_clusters,
    customer_marts,
    bi_snapshot,
    dashboard,
]
CHECKS = [customer_rfm_checks, clusters_were_found]


def build_definitions(current: settings_module.Settings | None = None) -> dg.Definitions:
    current = current or settings_module.load()
    return dg.Definitions(
        assets=raw_assets_for(ASSETS, current.source),  # the simulator or the file import
        asset_checks=CHECKS,
        jobs=[refresh_job],
        schedules=[build_refresh_schedule(current.run.schedule_anchor)],
        sensors=[record_run_failures],
        resources=build_resources(current),
        # DuckDB allows one writer process: run steps one after another in the run's process.
        executor=dg.in_process_executor,
    )


defs = build_definitions()

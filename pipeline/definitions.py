"""The one Definitions object: assets, checks, jobs and resources.

``build_definitions`` binds the resources to a given set of settings; the module-level ``defs``
(what ``dagster dev`` and ``make run`` load) uses the environment at import.
"""

from __future__ import annotations

import dagster as dg

from pipeline import settings as settings_module
from pipeline.assets.customers import customer_rfm
from pipeline.assets.dbt import customer_marts, star_schema
from pipeline.assets.raw import synthetic_raw_data
from pipeline.checks import customer_rfm_checks
from pipeline.resources import build_resources

ASSETS = [synthetic_raw_data, star_schema, customer_rfm, customer_marts]
CHECKS = [customer_rfm_checks]

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all(),
    description="The full refresh: raw data, the star schema and everything downstream.",
)


def build_definitions(current: settings_module.Settings | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[refresh_job],
        resources=build_resources(current or settings_module.load()),
        # DuckDB allows one writer process: run steps one after another in the run's process.
        executor=dg.in_process_executor,
    )


defs = build_definitions()

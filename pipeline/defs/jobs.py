"""Jobs: one full refresh of every asset."""

import dagster as dg

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all(),
    description="The full refresh: raw data, star schema, customer models, marts and the BI snapshot.",
    tags={"pipeline/kind": "refresh"},
)

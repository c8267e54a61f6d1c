"""Dagster wiring: definitions, resources, assets, checks, jobs, schedules and sensors. The logic
they call lives in pipeline.analytics, pipeline.ingest, pipeline.synthetic and pipeline.publish."""

"""Benchmarks of the full refresh, run by hand (``make bench``); never by the test suite.

- ``run``: the command line; runs a refresh in a temporary directory and the comparisons.
- ``refresh``: runs ``pipeline.cli refresh`` as a child process and reads its Dagster event log.
- ``rss``: peak resident memory of a process tree, sampled from /proc.
- ``stages``: maps Dagster steps and dbt nodes to the stages of the report.
- ``compare``: lifetimes' own CLTV path and the bare DuckDB floor, on the refreshed warehouse.
- ``report``: the printed table, the machine description and the JSON file.
"""

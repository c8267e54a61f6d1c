"""Command line entry points behind the Makefile: ``python -m pipeline.cli refresh``."""

from __future__ import annotations

import argparse
import os
import sys

import dagster as dg
import duckdb

from pipeline import settings as settings_module

SUMMARY_TABLES = ["marts.dim_customer", "marts.dim_product", "marts.fact_sales", "marts.fact_sales_monthly"]
PID_TAG = "pipeline/pid"


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the refreshes this command started whose process is gone.

    A run executed in process has no run monitor: if its process is killed, the instance keeps
    it STARTED forever, the UI shows it running and the failure sensor never sees it. Reporting
    it failed writes the failure event both need.
    """
    abandoned = []
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name="refresh", statuses=[dg.DagsterRunStatus.STARTED])
    )
    for run in runs:
        pid = run.tags.get(PID_TAG)
        if pid and pid.isdigit() and not _process_alive(int(pid)):
            instance.report_run_failed(
                run, message=f"The refresh process (pid {pid}) ended before the run finished."
            )
            abandoned.append(run.run_id)
    return abandoned


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def refresh(as_of: str | None) -> int:
    """Run the full refresh job in this process, recorded in the Dagster instance (DAGSTER_HOME)
    so the run shows in the UI afterwards."""
    from pipeline.definitions import build_definitions

    current = settings_module.load()
    defs = build_definitions(current)
    run_config = {"resources": {"settings": {"config": {"as_of": as_of}}}} if as_of else None
    instance = dg.DagsterInstance.get()
    for run_id in fail_abandoned_runs(instance):
        print(f"Run {run_id} was interrupted earlier; marked failed.", file=sys.stderr)
    result = defs.resolve_job_def("refresh").execute_in_process(
        instance=instance,
        run_config=run_config,
        raise_on_error=False,
        tags={PID_TAG: str(os.getpid())},
    )
    if not result.success:
        print(f"Refresh failed (run {result.run_id}); see `make ui` for the logs.", file=sys.stderr)
        return 1
    with duckdb.connect(str(current.warehouse), read_only=True) as conn:
        print(f"\nRefresh {result.run_id} succeeded.")
        for table in SUMMARY_TABLES:
            (n,) = conn.execute(f"select count(*) from {table}").fetchone()
            print(f"  {table:<28} {n:>12,} rows")
    print(f"\nWarehouse: {current.warehouse}")
    print("Open the Dagster UI with `make ui` (http://127.0.0.1:3000).")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("refresh", help="materialize every asset")
    run.add_argument("--as-of", help="as-of date YYYY-MM-DD (default: PIPELINE_AS_OF or today)")
    reprocess = commands.add_parser(
        "reprocess", help="re-read every imported file with today's settings (a dry run unless --apply)"
    )
    reprocess.add_argument("--apply", action="store_true", help="commit the changes the dry run shows")
    args = parser.parse_args(argv)
    if args.command == "refresh":
        return refresh(args.as_of)
    if args.command == "reprocess":
        from pipeline.ingest.reprocess import run_command

        return run_command(args.apply)
    return 2


if __name__ == "__main__":
    sys.exit(main())

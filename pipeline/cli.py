"""Command line entry points behind the Makefile:

    python -m pipeline.cli refresh [--as-of YYYY-MM-DD]   one full refresh (make run)
    python -m pipeline.cli ui [--port 3000]              the Dagster UI on the same instance (make ui)

Both validate the settings before any work and use the Dagster instance in
``<data_dir>/dagster_home`` (or DAGSTER_HOME if set), so the UI shows the CLI's runs. A refresh
prints one line per step; Dagster's full log goes to ``<data_dir>/logs/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

# before the imports below (Dagster, dbt, scikit-learn: seconds of the command's time)
IMPORTED = time.monotonic()

from pipeline import progress  # noqa: E402
from pipeline import settings as settings_module  # noqa: E402

PID_TAG = "pipeline/pid"
AS_OF_TAG = "pipeline/as_of"
EXIT_FAILED = 1
EXIT_BAD_SETTINGS = 2


class UsageError(Exception):
    """A setting or flag the command cannot use: printed as one line, exit code 2."""


# --- settings, checked before any work --------------------------------------------------------


def parse_as_of(raw: str | None) -> dt.date | None:
    if raw is None:
        return None
    try:
        return settings_module.parse_date("--as-of", raw)  # the rules of PIPELINE_AS_OF
    except settings_module.SettingsError:
        raise UsageError(
            f"--as-of {raw!r} is not a date: use YYYY-MM-DD (a real calendar day) or 'today'"
        ) from None


def load_settings(as_of_flag: str | None) -> settings_module.Settings:
    as_of = parse_as_of(as_of_flag)
    try:
        current = settings_module.load(**({"as_of": as_of} if as_of else {}))
    except settings_module.SettingsError as error:
        message = str(error)
        if as_of and message.startswith("as-of date"):
            message = f"--as-of {as_of_flag}: {message}"
        raise UsageError(message) from None
    check_writable(current.data_dir, "PIPELINE_DATA_DIR")
    return current


def check_writable(folder: Path, variable: str) -> None:
    """Create the folder if needed and write a file in it: a read-only data folder is found
    here, not half way through a run."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UsageError(
            f"{variable}={folder}: the folder cannot be written ({reason}); "
            f"set {variable} to a folder this user can write"
        ) from None


def check_engine(current: settings_module.Settings) -> None:
    """PIPELINE_ENGINE=spark needs the spark extra and Java: said before the run, not by its
    first Spark step."""
    if current.engine.engine != "spark":
        return
    from pipeline.engine import EngineError
    from pipeline.engine.spark_tables import check_spark_available

    try:
        check_spark_available()
    except EngineError as error:
        raise UsageError(str(error)) from None


def instance_for(current: settings_module.Settings):
    from pipeline import event_log

    home = progress.prepare_instance(current.paths.dagster_home())
    return event_log.open_instance(home)


# --- runs killed earlier ----------------------------------------------------------------------


def fail_abandoned_runs(instance, database: Path) -> list[tuple[str, str]]:
    """Mark failed the refreshes this command started whose process is gone, and record them
    in ops.run_failures of ``database``: each run's id and the line saying where it is recorded.

    A run executed in process has no run monitor: if its process is killed, the instance keeps
    it STARTED forever, the UI shows it running and the failure sensor never sees it. Reporting
    it failed writes the failure event both need.
    """
    import dagster as dg

    from pipeline.defs import sensors

    abandoned = []
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name="refresh", statuses=[dg.DagsterRunStatus.STARTED])
    )
    for run in runs:
        pid = run.tags.get(PID_TAG)
        if pid and pid.isdigit() and not _process_alive(int(pid)):
            running = sensors.unfinished_steps(instance, run.run_id)
            during = f" during {', '.join(running)}" if running else ""
            message = f"The refresh process (pid {pid}) ended{during} before the run finished (killed or crashed)."
            instance.report_run_failed(run, message=message)
            recorded = sensors.record_failure_safely(database, instance, run, running, message)
            abandoned.append((run.run_id, recorded))
    return abandoned


def seconds_since_start() -> float:
    """Wall seconds since this process started, as ``time`` would report them: the refresh's
    time includes loading Python, Dagster and dbt. From /proc on Linux, else since this module
    was imported."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            # the fields after the command name, which is in parentheses: starttime is the 22nd
            started = int(stat.read().rpartition(")")[2].split()[19]) / os.sysconf("SC_CLK_TCK")
            return float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return time.monotonic() - IMPORTED


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


# --- refresh ----------------------------------------------------------------------------------


def refresh(as_of_flag: str | None) -> int:
    """Run the full refresh job in this process, recorded in the Dagster instance so the run
    shows in the UI afterwards."""
    current = load_settings(as_of_flag)
    check_engine(current)
    import dagster as dg

    from pipeline.defs import sensors
    from pipeline.defs.definitions import build_definitions
    from pipeline.defs.resources import refresh_run_config

    instance = instance_for(current)
    for run_id, recorded in fail_abandoned_runs(instance, _failure_database(current)):
        print(f"Run {run_id[:8]} was interrupted earlier; marked failed. {recorded}")
    run_id = str(uuid.uuid4())
    log_path = progress.new_log_path(current, run_id)
    as_of = current.as_of.isoformat()
    source = (
        f"{current.simulation.customers:,} customers, synthetic data (seed {current.simulation.seed})"
        if current.source == "synthetic"
        else f"files from {current.imports.dir} ({current.imports.layout} layout)"
    )
    print(f"Refresh as of {as_of}: {source}")
    print(f"Run {run_id[:8]}, full log: {log_path}")
    print()

    # as under make: dbt sends no usage statistics, and its output (in the log file) has no colours
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DBT_USE_COLORS", "false")
    job = build_definitions(current).resolve_job_def("refresh")
    width = progress.step_width(job.graph.node_dict)
    print(progress.header_line(width))
    with progress.output_to(log_path) as out:
        reporter = progress.Progress(out, width)
        job = job.with_logger_defs(
            {"console": dg.colored_console_logger, "progress": progress.progress_logger(reporter)}
        )
        try:
            result = job.execute_in_process(
                instance=instance,
                run_config={
                    **refresh_run_config(current.as_of),
                    # Dagster's own console log, in full, goes to the log file (see output_to)
                    "loggers": {"console": {"config": {"log_level": "DEBUG"}}, "progress": {}},
                },
                raise_on_error=False,
                run_id=run_id,
                tags={PID_TAG: str(os.getpid()), AS_OF_TAG: as_of},
            )
        except KeyboardInterrupt:
            result = None
    seconds = seconds_since_start()
    if result is None:
        print(
            f"\nRefresh {run_id[:8]} interrupted after {progress.duration(seconds)}.",
            file=sys.stderr,
        )
        print(f"Full log: {log_path}", file=sys.stderr)
        return 130
    if not result.success:
        steps, cause = progress.describe_failure(reporter.events or result.all_events)
        run = instance.get_run_by_id(run_id)
        recorded = sensors.record_failure_safely(
            _failure_database(current), instance, run, steps, cause
        )
        not_run = sorted(
            set(job.graph.node_dict) - {k for k, step in reporter.steps.items() if step.started}
        )
        if not_run:
            names = (
                f"not run: {len(not_run)} steps downstream of the failure ({', '.join(not_run)})"
            )
            print(textwrap.fill(names, width=100, initial_indent="  ", subsequent_indent="    "))
        print(
            f"\nRefresh FAILED after {progress.duration(seconds)} (run {run_id[:8]}).",
            file=sys.stderr,
        )
        print(f"Cause: {cause}", file=sys.stderr)
        print(_snapshot_note(current, failed=True), file=sys.stderr)
        print(recorded, file=sys.stderr)
        print(f"Full log: {log_path}", file=sys.stderr)
        return EXIT_FAILED
    print(f"\nRefresh succeeded in {progress.duration(seconds)} (run {run_id[:8]}).")
    print(f"  warehouse    {_warehouse_note(current)}")
    print(f"  {_snapshot_note(current, failed=False)}")
    print(f"  full log     {log_path}")
    print("  Dagster UI   make ui (http://127.0.0.1:3000)")
    return 0


def _failure_database(current: settings_module.Settings) -> Path:
    """Where ops.run_failures lives: the DuckDB warehouse; in Spark mode a file of its own."""
    from pipeline.engine import failures_database

    return failures_database(current)


def _warehouse_note(current: settings_module.Settings) -> str:
    """Where the tables are: the DuckDB file, or Spark's Parquet folders."""
    if current.engine.engine == "spark":
        return (
            f"{current.paths.spark / 'warehouse'} (Spark, Parquet; the Python steps' tables in "
            f"{current.paths.spark_tables})"
        )
    return str(current.warehouse)


def _snapshot_note(current: settings_module.Settings, failed: bool) -> str:
    from pipeline.publish import snapshot

    link = current.paths.serve / snapshot.CURRENT_LINK
    try:
        manifest = snapshot.Manifest.read(link.resolve(strict=True) / snapshot.MANIFEST_FILE)
    except (OSError, ValueError, TypeError):
        return "Nothing is published yet." if failed else "BI snapshot  none published"
    if failed:
        return f"Nothing was published: BI keeps the snapshot as of {manifest.as_of} ({manifest.build_id})."
    return f"BI snapshot  {link} (as of {manifest.as_of})"


# --- ui ---------------------------------------------------------------------------------------


def ui(port: int, host: str) -> int:
    """`dagster dev` on the CLI's instance (same settings, same DAGSTER_HOME): the UI shows the
    runs of `make run` and `python -m pipeline.cli refresh`."""
    current = load_settings(None)
    home = progress.prepare_instance(current.paths.dagster_home())
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    workspace = settings_module.REPO_ROOT / "workspace.yaml"
    command = [dagster, "dev", "-w", str(workspace), "-h", host, "-p", str(port)]
    print(f"Dagster instance: {home}")
    sys.stdout.flush()
    os.chdir(settings_module.REPO_ROOT)
    os.execve(command[0], command, {**os.environ, "DAGSTER_HOME": str(home)})
    return 0  # not reached


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("refresh", help="materialize every asset")
    run.add_argument(
        "--as-of", help="as-of date YYYY-MM-DD or 'today' (default: PIPELINE_AS_OF, else today)"
    )
    dev = commands.add_parser("ui", help="the Dagster UI (dagster dev) on the CLI's instance")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--host", default="127.0.0.1")
    reprocess = commands.add_parser(
        "reprocess",
        help="re-read every imported file with today's settings (a dry run unless --apply)",
    )
    reprocess.add_argument(
        "--apply", action="store_true", help="commit the changes the dry run shows"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "refresh":
            return refresh(args.as_of)
        if args.command == "ui":
            return ui(args.port, args.host)
        if args.command == "reprocess":
            from pipeline.ingest.reprocess import run_command

            return run_command(args.apply)
    except UsageError as error:
        print(f"Settings error: {error}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    return 2


def exit_now(code: int) -> None:
    """Leave without the interpreter's teardown: freeing the objects of Dagster, dbt, pandas and
    scikit-learn module by module took 2-3 s after every refresh. Nothing is left to finish by
    then: the event log commits each write, the warehouse connections are closed and the
    snapshot is published; only the output streams need flushing, and the semaphores of a dbt
    run in this process need freeing."""
    dbt_runner = sys.modules.get("pipeline.dbt_runner")
    if dbt_runner is not None:
        dbt_runner.release_semaphores()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())

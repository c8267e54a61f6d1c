"""What a person running a refresh from the shell sees (``python -m pipeline.cli refresh``,
``make run``): one line per step on the terminal, Dagster's full log in a file under the data
folder, and on failure the root cause in plain words.

Also where the Dagster instance of the CLI and of ``make ui`` lives, so both show the same runs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import dagster as dg

from pipeline.settings import Settings

DAGSTER_YAML = """\
# Written by `python -m pipeline.cli` (make run / make ui); edit freely, it is not overwritten.
# Storage is Dagster's default: SQLite files in this folder.
telemetry:
  enabled: false
"""
KEEP_LOGS = 30

# The table of each step's headline figure, when the step materializes it; otherwise the first
# table with a row count.
# (the star schema step's is the priced order lines: marts.fact_sales is a view of them)
HEADLINE_ASSETS = (
    "raw/order_lines",
    "intermediate/int_order_lines_priced",
    "marts/customer_single_view",
    "analytics/cltv_model_selection",  # not the backtest's per-customer predictions
)
# Exception classes that only wrap the real error.
WRAPPER_ERRORS = (
    "DagsterExecutionStepExecutionError",
    "DagsterUserCodeExecutionError",
    "RetryRequested",
)
DBT_ERRORS_MARKER = "Errors parsed from dbt logs:"
MAX_CAUSE_LINES = 8


# --- the Dagster instance -------------------------------------------------------------------


def prepare_instance(home: Path) -> Path:
    """Create the instance folder with a dagster.yaml (telemetry off, so no banner) unless the
    operator already wrote one."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


# --- the log file ---------------------------------------------------------------------------


def new_log_path(settings: Settings, run_id: str) -> Path:
    folder = settings.paths.logs
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    prune_logs(folder)
    return folder / f"refresh-{stamp}-{run_id[:8]}.log"


def prune_logs(folder: Path, keep: int = KEEP_LOGS) -> None:
    """Keep the newest ``keep - 1`` refresh logs (the next run adds one)."""
    logs = sorted(folder.glob("refresh-*.log"))
    for old in logs[: max(0, len(logs) - keep + 1)]:
        old.unlink(missing_ok=True)


@contextlib.contextmanager
def output_to(log_path: Path) -> Iterator[TextIO]:
    """Send everything printed during the block to the log: Dagster's console logger, dbt's
    output, warnings and whatever child processes write (file descriptors 1 and 2 are
    redirected, not only Python's streams). Yields a stream to the original stdout, for the
    progress lines."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        fds = sorted({sys.stdout.fileno(), sys.stderr.fileno()})
    except (AttributeError, OSError, io.UnsupportedOperation):
        fds = []
    with open(log_path, "a", buffering=1, encoding="utf-8") as log:
        if not fds:  # Python-level streams only (e.g. an in-memory stdout)
            original = sys.stdout
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield original
            return
        saved = {fd: os.dup(fd) for fd in fds}
        progress = os.fdopen(os.dup(saved[sys.stdout.fileno()]), "w", buffering=1, encoding="utf-8")
        try:
            for fd in fds:
                os.dup2(log.fileno(), fd)
            yield progress
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            progress.close()


# --- what each step did ---------------------------------------------------------------------


@dataclass
class Step:
    key: str
    started: float | None = None
    seconds: float | None = None
    status: str = "running"  # ok, FAILED, skipped
    rows: dict[str, int] = field(default_factory=dict)  # asset path -> row count
    figures: list[str] = field(default_factory=list)
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    warnings: int = 0
    retries: int = 0

    def result(self) -> str:
        """The step's key figure: its headline table's rows, checks, and what else matters."""
        parts = []
        tables = [
            a for a in self.rows if not a.startswith("serve/")
        ]  # the snapshot says more below
        headline = next((a for a in HEADLINE_ASSETS if a in tables), next(iter(tables), None))
        if headline is not None:
            parts.append(f"{headline.replace('/', '.')} {self.rows[headline]:,} rows")
        parts += self.figures
        if self.checks_failed:
            total = self.checks_passed + len(self.checks_failed)
            parts.append(f"{len(self.checks_failed)} of {total} checks FAILED")
        elif self.checks_passed:
            parts.append(
                f"{self.checks_passed} check{'s' if self.checks_passed > 1 else ''} passed"
            )
        if self.retries:
            parts.append(f"{self.retries} retries")
        if self.warnings:
            parts.append(f"{self.warnings} warning{'s' if self.warnings > 1 else ''} in the log")
        return "; ".join(parts)


def _metadata_value(value):
    return getattr(value, "value", value)


def apply_event(steps: dict[str, Step], event: dg.DagsterEvent, timestamp: float) -> Step | None:
    """Fold one Dagster event into the per-step summary; return the step if it just ended."""
    key = event.step_key
    if key is None:
        return None
    step = steps.setdefault(key, Step(key))
    kind = event.event_type
    data = event.event_specific_data
    if kind == dg.DagsterEventType.STEP_START:
        step.started = step.started or timestamp
    elif kind == dg.DagsterEventType.STEP_SUCCESS:
        step.status = "ok"
        step.seconds = data.duration_ms / 1000 if data is not None else _since(step, timestamp)
        return step
    elif kind == dg.DagsterEventType.STEP_FAILURE:
        step.status = "FAILED"
        step.seconds = _since(step, timestamp)
        if data is not None and data.error is not None and not step.checks_failed:
            step.figures.append(_root_error(data.error)[0])
        return step
    elif kind == dg.DagsterEventType.STEP_SKIPPED:
        step.status = "skipped"
        return step
    elif kind == dg.DagsterEventType.STEP_UP_FOR_RETRY:
        step.retries += 1
    elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
        materialization = data.materialization
        path = "/".join(materialization.asset_key.path)
        metadata = {k: _metadata_value(v) for k, v in materialization.metadata.items()}
        if isinstance(metadata.get("dagster/row_count"), int):
            step.rows[path] = metadata["dagster/row_count"]
        if "k" in metadata:
            step.figures.append(f"k = {metadata['k']}")
        if path == "raw/quarantine" and metadata.get("dagster/row_count"):
            step.figures.append(f"{metadata['dagster/row_count']:,} rows quarantined")
        if "build_id" in metadata:
            promoted = (
                "promoted" if metadata.get("promoted") else "built, not promoted (older as-of date)"
            )
            step.figures.append(f"snapshot {metadata['build_id']} {promoted}")
        if path == "serve/dashboard" and "bytes" in metadata:
            step.figures.append(f"{metadata['bytes'] / 1e6:.1f} MB")
    elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        if data.passed:
            step.checks_passed += 1
        else:
            step.checks_failed.append(f"{data.check_name} on {'.'.join(data.asset_key.path)}")
    return None


def _since(step: Step, timestamp: float) -> float | None:
    return timestamp - step.started if step.started else None


# Width of the step column: the job's longest step name (an asset check's step is named after its
# asset and check), and at least this.
STEP_WIDTH = 28


def step_width(step_keys) -> int:
    return max([STEP_WIDTH, *(len(key) for key in step_keys)])


def step_line(step: Step, width: int = STEP_WIDTH) -> str:
    seconds = f"{step.seconds:7.1f} s" if step.seconds is not None else " " * 9
    return f"  {step.key:<{width}} {step.status:<7} {seconds}  {step.result()}".rstrip()


# --- the root cause of a failure ------------------------------------------------------------


def _root_error(error) -> tuple[str, str]:
    """(class name, message) of the outermost error that is not Dagster's wrapper: the one our
    code raised, which says what went wrong in plain words (its own cause is detail)."""
    chosen = error
    while chosen is not None and chosen.cls_name in WRAPPER_ERRORS:
        chosen = chosen.cause or chosen.context
    chosen = chosen or error
    # the message starts with the (qualified) class name, which is shown once, unqualified
    message = re.sub(
        rf"^([\w.]*\.)?{re.escape(chosen.cls_name or '')}: ", "", chosen.message.strip()
    )
    if DBT_ERRORS_MARKER in message:
        message = "dbt failed: " + message.split(DBT_ERRORS_MARKER, 1)[1].strip()
    lines = [line for line in message.splitlines() if line.strip()]
    if len(lines) > MAX_CAUSE_LINES:
        lines = lines[:MAX_CAUSE_LINES] + ["..."]
    return chosen.cls_name or "Error", "\n".join(lines)


def describe_failure(events: Iterable[dg.DagsterEvent]) -> tuple[list[str], str]:
    """(failed steps, the cause in plain words) of a failed run, from its events: failed checks
    by name, else the innermost error of each failed step, else the run's own error."""
    events = list(events)
    failed_checks: dict[str, list[str]] = {}
    errors: dict[str, object] = {}
    run_error = None
    for event in events:
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not data.passed:
            failed_checks.setdefault(event.step_key or "?", []).append(
                f"{data.check_name} on {'.'.join(data.asset_key.path)}"
            )
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE and data is not None:
            errors[event.step_key] = data.error
        elif (
            event.event_type
            in (
                dg.DagsterEventType.RUN_FAILURE,
                dg.DagsterEventType.RESOURCE_INIT_FAILURE,
            )
            and getattr(data, "error", None) is not None
        ):
            run_error = run_error or data.error
    causes = []
    for step, error in errors.items():
        checks = failed_checks.get(step)
        if checks:
            shown = ", ".join(checks[:5]) + (
                f" and {len(checks) - 5} more" if len(checks) > 5 else ""
            )
            causes.append(f"{step}: check{'s' if len(checks) > 1 else ''} failed: {shown}")
        elif error is not None:
            name, message = _root_error(error)
            causes.append(f"{step}: {name}: {message}")
        else:
            causes.append(f"{step}: failed (no error recorded)")
    if not causes and run_error is not None:
        name, message = _root_error(run_error)
        causes.append(f"{name}: {message}")
    return sorted(errors), "\n".join(causes) or "the run failed without an error message"


# --- the progress lines ---------------------------------------------------------------------


class Progress(logging.Handler):
    """Receives every Dagster log record of the run and prints a line when a step ends."""

    def __init__(self, out: TextIO, width: int = STEP_WIDTH):
        super().__init__(level=logging.DEBUG)
        self.out = out
        self.width = width
        self.steps: dict[str, Step] = {}
        self.events: list[dg.DagsterEvent] = []
        self._tty = hasattr(out, "isatty") and out.isatty()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            meta = getattr(record, "dagster_meta", None) or {}
            event = meta.get("dagster_event")
            if event is None:
                step = self.steps.get(meta.get("step_key") or "")
                # (steps that never started get "not executed" errors: those are not warnings)
                if step is not None and step.started and record.levelno >= logging.WARNING:
                    step.warnings += 1
                return
            self.events.append(event)
            ended = apply_event(self.steps, event, record.created)
            if ended is not None:
                self.write(step_line(ended, self.width))
            elif event.event_type == dg.DagsterEventType.STEP_START and self._tty:
                self.out.write(f"  {event.step_key:<{self.width}} running\r")
                self.out.flush()
        except Exception:  # never let the report break the run
            self.handleError(record)

    def write(self, line: str) -> None:
        self.out.write(("\x1b[2K" if self._tty else "") + line + "\n")
        self.out.flush()


def progress_logger(handler: Progress) -> dg.LoggerDefinition:
    def make(_context) -> logging.Logger:
        logger = logging.Logger("pipeline.progress", level=logging.DEBUG)
        logger.addHandler(handler)
        return logger

    return dg.LoggerDefinition(make, description="One line per step on the CLI's terminal.")


def header_line(width: int = STEP_WIDTH) -> str:
    return f"  {'step':<{width}} {'status':<7} {'time':>9}  result"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"

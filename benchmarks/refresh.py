"""Run one full refresh in a temporary directory, as ``make run`` does, and read back what it did.

The refresh is ``python -m pipeline.cli refresh`` in a child process (``benchmarks.child`` adds
timing marks), with its own data dir and Dagster instance::

    PIPELINE_DATA_DIR=<tmp>/data PIPELINE_CUSTOMERS=<n> PIPELINE_AS_OF=<date> DAGSTER_HOME=<tmp>/dagster_home

Every other ``PIPELINE_*`` setting comes from the caller's environment. While it runs, a thread
samples the RSS of the child's process tree. Afterwards the run's event log (from the
instance in ``DAGSTER_HOME``) gives each step's window and row counts, and dbt's
``run_results.json`` (under ``<data>/dbt_runs/``) and the manifest give each dbt node's window.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.child import MARKS_ENV
from benchmarks.rss import Sample, TreeSampler, children_cpu_seconds, self_max_rss_children
from benchmarks.stages import Carve, Step

REPO_ROOT = Path(__file__).resolve().parent.parent
PREPARED_MANIFEST = REPO_ROOT / "dbt_project" / "target" / "manifest.json"


@dataclass
class RefreshRun:
    """What one benchmarked refresh recorded."""

    returncode: int
    process_start: float
    process_end: float
    workdir: Path
    env: dict[str, str]
    samples: list[Sample]
    kernel_max_rss: int  # bytes: the largest single descendant's peak RSS, per the kernel
    run_id: str | None = None
    run_status: str | None = None
    first_event: float | None = None  # the run's first event (its creation)
    run_start: float | None = None
    run_end: float | None = None
    steps: list[Step] = field(default_factory=list)
    carves: list[Carve] = field(default_factory=list)
    dbt_nodes: list[dict] = field(default_factory=list)
    dbt_logs: dict[str, tuple[float, float]] = field(
        default_factory=dict
    )  # step -> dbt.log first/last
    retried_steps: list[str] = field(default_factory=list)
    cpu_seconds: float | None = None  # user + system CPU of the refresh's process tree

    @property
    def data_dir(self) -> Path:
        return Path(self.env["PIPELINE_DATA_DIR"])

    @property
    def warehouse(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "refresh.stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "refresh.stderr.log"

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and self.run_status == "SUCCESS"


def refresh_env(
    workdir: Path, customers: int, as_of: str, base: dict[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(
        PIPELINE_DATA_DIR=str(workdir / "data"),
        PIPELINE_CUSTOMERS=str(customers),
        PIPELINE_AS_OF=as_of,
        DAGSTER_HOME=str(workdir / "dagster_home"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        PYTHONUNBUFFERED="1",
    )
    env[MARKS_ENV] = str(workdir / "marks.jsonl")
    # dbt is looked up beside the interpreter (pipeline.defs.resources); keep the venv first on PATH
    # anyway, as the Makefile does.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_refresh(
    workdir: Path, customers: int, as_of: str, interval: float = 0.2, echo=print
) -> RefreshRun:
    """Run the refresh child under the RSS sampler; then read its event log and dbt artifacts."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = refresh_env(workdir, customers, as_of)
    (workdir / "dagster_home").mkdir(exist_ok=True)
    # an empty dagster.yaml is Dagster's defaults (SQLite storage in DAGSTER_HOME), without the
    # warning Dagster prints when the file is missing
    (workdir / "dagster_home" / "dagster.yaml").touch()
    command = [sys.executable, "-m", "benchmarks.child", "refresh"]
    cpu_before = children_cpu_seconds()
    with (
        open(workdir / "refresh.stdout.log", "wb") as out,
        open(workdir / "refresh.stderr.log", "wb") as err,
    ):
        start = time.time()
        child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=err)
        sampler = TreeSampler(child.pid, interval=interval)
        with sampler:
            last = start
            while child.poll() is None:
                time.sleep(interval)
                if time.time() - last >= 30:
                    last = time.time()
                    current = sampler.samples[-1] if sampler.samples else None
                    rss = (
                        f", {current.rss / 2**20:,.0f} MiB in {current.processes} processes"
                        if current
                        else ""
                    )
                    echo(f"  ... refresh running for {last - start:,.0f} s{rss}")
        end = time.time()
    run = RefreshRun(
        returncode=child.returncode,
        process_start=start,
        process_end=end,
        workdir=workdir,
        env=env,
        samples=sampler.samples,
        kernel_max_rss=self_max_rss_children(),
        cpu_seconds=children_cpu_seconds() - cpu_before,
    )
    read_event_log(run)
    read_marks(run)
    read_dbt_nodes(run)
    return run


def _asset_key(key) -> str:
    return "/".join(key.path)


def read_event_log(run: RefreshRun) -> None:
    """Fill the run's id, status, window and steps from the Dagster instance it wrote."""
    import dagster as dg

    home = Path(run.env["DAGSTER_HOME"])
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        runs = instance.get_runs(limit=1)
        if not runs:
            return
        dagster_run = runs[0]
        run.run_id = dagster_run.run_id
        run.run_status = dagster_run.status.value
        steps: dict[str, Step] = {}
        ended: set[str] = set()
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None:
                if entry.step_key in steps and steps[entry.step_key].attempts:
                    steps[entry.step_key].events += 1
                continue
            kind = event.event_type.name  # (its .value says PIPELINE_* for runs)
            t = entry.timestamp
            run.first_event = t if run.first_event is None else min(run.first_event, t)
            if kind == "RUN_START":
                run.run_start = t
            elif kind in ("RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED"):
                run.run_end = t
            key = event.step_key
            if key is None:
                continue
            step = steps.get(key)
            if step is None:
                # planned materializations are logged for every step when the run starts:
                # a step's window opens at its first STEP_START, not at its first event
                step = steps[key] = Step(key, t, t, status="planned", attempts=0)
            if kind == "STEP_START":
                if step.attempts == 0:
                    step.start = step.end = t
                step.attempts += 1
                step.status = "started"
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
                step.status = {"STEP_SUCCESS": "success", "STEP_FAILURE": "failure"}.get(
                    kind, "skipped"
                )
                step.end = t
                ended.add(key)
            elif kind == "STEP_UP_FOR_RETRY":
                if key not in run.retried_steps:
                    run.retried_steps.append(key)
            elif kind == "ASSET_MATERIALIZATION":
                materialization = entry.asset_materialization
                value = materialization.metadata.get("dagster/row_count")
                rows = getattr(value, "value", value)
                step.materializations[_asset_key(materialization.asset_key)] = (
                    int(rows) if rows is not None else None
                )
            elif kind == "ASSET_CHECK_EVALUATION":
                evaluation = entry.asset_check_evaluation
                if evaluation is not None:
                    name = _asset_key(evaluation.asset_key)
                    if name not in step.checked:
                        step.checked.append(name)
            if step.attempts:  # not the planned events logged when the run was created
                step.events += 1
            if step.attempts and key not in ended:
                step.end = max(step.end, t)
        # a step that never started (skipped after a failure upstream) has no window
        run.steps = sorted((s for s in steps.values() if s.attempts), key=lambda s: s.start)
    finally:
        instance.dispose()


def read_marks(run: RefreshRun) -> None:
    path = Path(run.env[MARKS_ENV])
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        if line.strip():
            mark = json.loads(line)
            run.carves.append(Carve("mark", mark["name"], mark["start"], mark["end"]))


def _epoch(text: str) -> float:
    return (
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        .replace(tzinfo=dt.timezone.utc)
        .timestamp()
    )


def dbt_nodes_of(run_results: dict, manifest: dict | None, step: str) -> list[dict]:
    """Each executed node of one ``dbt build``: window, status, and the model it belongs to
    (itself for a model, the model a test is attached to, else None)."""
    nodes = (manifest or {}).get("nodes", {})
    out = []
    for result in run_results.get("results", []):
        timing = [
            t for t in result.get("timing", []) if t.get("started_at") and t.get("completed_at")
        ]
        if not timing:
            continue
        unique_id = result["unique_id"]
        resource_type = unique_id.split(".", 1)[0]
        model = None
        if resource_type in ("model", "seed", "snapshot"):
            model = unique_id.split(".")[2]
        elif resource_type == "test":
            node = nodes.get(unique_id, {})
            parent = node.get("attached_node") or next(
                (n for n in node.get("depends_on", {}).get("nodes", []) if n.startswith("model.")),
                None,
            )
            model = parent.split(".")[2] if parent else None
        out.append(
            {
                "unique_id": unique_id,
                "resource_type": resource_type,
                "model": model,
                "step": step,
                "status": result.get("status"),
                "start": min(_epoch(t["started_at"]) for t in timing),
                "end": max(_epoch(t["completed_at"]) for t in timing),
                "execution_time": result.get("execution_time"),
                "thread": result.get("thread_id"),
            }
        )
    return out


def dbt_log_window(path: Path) -> tuple[float, float] | None:
    """Times of the first and last line of a JSON dbt.log (dbt's process start and end, near
    enough); None when the log is missing or not JSON lines."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        first, last = (json.loads(lines[i])["info"]["ts"] for i in (0, -1))
        return _epoch(first), _epoch(last)
    except (OSError, IndexError, KeyError, ValueError):
        return None


def dbt_phases(
    step: Step, nodes: list[dict], log_window: tuple[float, float] | None
) -> dict | None:
    """Where a dbt step's wall time goes: before dbt logs its first line (dagster-dbt, the
    subprocess and dbt's imports), dbt's start-up (project parse, manifest) until the first
    node, the nodes themselves, and everything after the last node (dbt's exit, dagster-dbt's
    events, row counts, the event log)."""
    nodes = [n for n in nodes if n["step"] == step.key]
    if not nodes:
        return None
    first_node = min(n["start"] for n in nodes)
    last_node = max(n["end"] for n in nodes)
    dbt_start = log_window[0] if log_window else first_node
    phases = {
        "before dbt starts": dbt_start - step.start,
        "dbt start-up and parse": first_node - dbt_start,
        "nodes": last_node - first_node,
        "after the last node": step.end - last_node,
    }
    # after dbt exits, the step replays dbt's events into Dagster: one output per node, one
    # asset check evaluation per test, each written to the event log
    return {
        "step": step.key,
        "seconds": step.end - step.start,
        "phases": phases,
        "nodes": len(nodes),
        "dagster_events": step.events,
        "node_seconds_by_type": {
            kind: sum(n["end"] - n["start"] for n in nodes if n["resource_type"] == kind)
            for kind in sorted({n["resource_type"] for n in nodes})
        },
    }


def read_dbt_nodes(run: RefreshRun) -> None:
    """dbt's per-node timings of the run's dbt steps, as carve-outs (see ``pipeline.defs.assets.dbt``:
    each build writes to ``<data>/dbt_runs/<run id[:8]>-<op name>/``)."""
    if not run.run_id:
        return
    root = run.data_dir / "dbt_runs"
    for folder in sorted(root.glob(f"{run.run_id[:8]}-*")):
        results_path = folder / "run_results.json"
        if not results_path.exists():
            continue
        step = folder.name.split("-", 1)[1]
        # in-process builds write no manifest of their own: theirs is the prepared one
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            manifest_path = PREPARED_MANIFEST
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
        nodes = dbt_nodes_of(json.loads(results_path.read_text()), manifest, step)
        run.dbt_nodes.extend(nodes)
        window = dbt_log_window(folder / "dbt.log")
        if window:
            run.dbt_logs[step] = window
        for node in nodes:
            if node["model"]:
                run.carves.append(
                    Carve(
                        "dbt",
                        node["model"],
                        node["start"],
                        node["end"],
                        step=step,
                        detail=node["unique_id"],
                    )
                )


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""

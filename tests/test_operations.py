"""Operations, end to end, with real processes: what happens to the BI snapshot when a refresh is
killed, when a blocking check fails, when a run fails (the failure sensor) and on a backfill.

One warehouse under a temp dir goes through a fixed sequence of operations, each a module-scoped
fixture that asks for the one before it, so the order holds whichever tests are selected:

    first_refresh      full refresh as of FIRST_AS_OF (in-process), publishes snapshot 1: a copy
                       of the run's seeded first refresh (tests/standard_refresh.py), the same
                       settings and computation as the standard refresh's first
    bad_data_run       a negative sold_quantity in raw.order_lines, refresh downstream of raw: fails
    killed_refresh     `python -m pipeline.cli refresh --as-of LATER_AS_OF`, SIGKILLed during dbt
    recovered_refresh  the README's refresh command, exactly as written, in a clean environment
                       (a shell at the repository root, no DAGSTER_HOME, no venv on PATH), to
                       completion: snapshot 2, and what the README promises a user
    backfill           full refresh as of BACKFILL_AS_OF, in-process: the first refresh's date
                       again (older than LATER_AS_OF), so it is also the re-run of an as-of date

Fixtures only act and record; the tests assert.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from pipeline import cli
from pipeline import settings as settings_module
from pipeline.defs.assets.raw import synthetic_raw_data
from pipeline.defs.definitions import build_definitions
from pipeline.defs.sensors import FAILURE_TAG, record_run_failures
from tests.standard_refresh import (
    CUSTOMERS,
    failure_summary,
    first_refresh_copy,
    history_counts,
    quiet_run_config,
    snapshot_digest,
)

pytestmark = pytest.mark.slow  # dbt or a whole refresh: not in `make test-fast`

FIRST_AS_OF = "2026-10-25"
LATER_AS_OF = "2026-11-24"  # the as-of date of the README's refresh command
# A backfill of a date refreshed before: older than the later refresh, so not promoted, and a
# re-run of the first refresh, so it must publish what that one did, byte for byte.
BACKFILL_AS_OF = FIRST_AS_OF

BI_SNAPSHOT = dg.AssetKey(["serve", "bi_snapshot"])
BAD_ORDER_ID = "SO-TEST-NEGATIVE-QTY"
# fact_sales's column tests run as one scan (row_rules); the failure names the single test
NEGATIVE_QUANTITY_CHECK = "row_rules_fact_sales"
NEGATIVE_QUANTITY_TEST = "not_negative_fact_sales_sold_quantity"

DBT_START_TIMEOUT = 180  # seconds for the CLI to import, simulate and get dbt building
REFRESH_TIMEOUT = 600

README = settings_module.REPO_ROOT / "README.md"
VENV_PYTHON = settings_module.REPO_ROOT / ".venv" / "bin" / "python"
README_COMMAND = re.compile(r"^\.venv/bin/python -m pipeline\.cli refresh.*$", re.MULTILINE)


# --- the pipeline's environment ---------------------------------------------------------------


@dataclass
class World:
    root: Path
    env: dict[str, str]  # the PIPELINE_* / dbt variables of every run
    settings: settings_module.Settings
    defs: dg.Definitions

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def serve(self) -> Path:
        return self.data_dir / "serve"

    @property
    def warehouse(self) -> Path:
        return self.settings.warehouse

    def subprocess_env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "DAGSTER_"))}
        venv_bin = str(Path(sys.executable).parent)
        return {**base, **self.env, "PATH": venv_bin + os.pathsep + base.get("PATH", "")}


def refresh_in_process(
    world: World,
    as_of: str,
    instance: dg.DagsterInstance | None = None,
    asset_selection: list[dg.AssetKey] | None = None,
) -> dg.ExecuteInProcessResult:
    """The refresh job in this process. The settings resource reads the environment when the
    run starts, so the run's environment is set for its duration."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in world.env.items():
            mp.setenv(name, value)
        mp.delenv("PIPELINE_WAREHOUSE", raising=False)
        return world.defs.resolve_job_def("refresh").execute_in_process(
            run_config=quiet_run_config(as_of),
            instance=instance or dg.DagsterInstance.ephemeral(),
            asset_selection=asset_selection,
            raise_on_error=False,
        )


def cli_refresh(world: World, as_of: str, log: Path) -> subprocess.Popen:
    """`python -m pipeline.cli refresh --as-of ...` in its own session (process group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "refresh", "--as-of", as_of],
        cwd=settings_module.REPO_ROOT,
        env=world.subprocess_env(),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- processes ------------------------------------------------------------------------------


def group_members(pgid: int) -> dict[int, list[str]]:
    """The live processes of a process group, with their command lines (Linux /proc)."""
    members = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.getpgid(pid) != pgid:
                continue
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ProcessLookupError):
            continue
        if state != "Z":  # a zombie is dead; it only waits for its parent to reap it
            members[pid] = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    return members


def wait_for_dbt_mid_build(process: subprocess.Popen, dbt_runs: Path, known: set[str]) -> Path:
    """Wait until the star-schema `dbt build` of this run is executing models (in the refresh's
    own process, pipeline.dbt_runner.run_in_process): its target folder
    (<data_dir>/dbt_runs/<run>-star_schema) has compiled SQL under run/, and no run results."""
    deadline = time.monotonic() + DBT_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the refresh exited ({process.returncode}) before dbt was caught")
        new = [p for p in dbt_runs.glob("*-star_schema") if p.name not in known]
        if new and (new[0] / "run").is_dir() and not (new[0] / "run_results.json").exists():
            return new[0]
        time.sleep(0.05)
    raise AssertionError(f"dbt did not start building within {DBT_START_TIMEOUT}s")


def wait_for_group_to_die(pgid: int, timeout: float = 15) -> dict[int, list[str]]:
    deadline = time.monotonic() + timeout
    while (members := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return members


# --- the snapshot ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeState:
    link: str | None  # what serve/current points at, as written
    target: Path | None  # serve/current resolved
    manifest: str | None  # serve/current/manifest.json, verbatim
    hashes: dict[str, str] = field(default_factory=dict)  # sha256 of every file of the snapshot
    builds: frozenset[str] = frozenset()  # every entry of serve/builds, hidden ones included
    serve_entries: frozenset[str] = frozenset()  # every entry of serve/


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def serve_state(serve: Path) -> ServeState:
    current = serve / "current"
    if not current.is_symlink():
        return ServeState(None, None, None)
    target = current.resolve()
    return ServeState(
        link=os.readlink(current),
        target=target,
        manifest=(target / "manifest.json").read_text(),
        hashes={
            str(p.relative_to(target)): sha256(p) for p in sorted(target.rglob("*")) if p.is_file()
        },
        builds=frozenset(p.name for p in (serve / "builds").iterdir()),
        serve_entries=frozenset(p.name for p in serve.iterdir()),
    )


def same_snapshot(a: ServeState, b: ServeState) -> bool:
    """Same published snapshot: link, target, manifest and the bytes of every file."""
    return (a.link, a.target, a.manifest, a.hashes) == (b.link, b.target, b.manifest, b.hashes)


def manifest_of(state: ServeState) -> dict:
    assert state.manifest is not None, "no snapshot is published"
    return json.loads(state.manifest)


def leftovers(serve: Path) -> list[str]:
    """Temporary build folders or links that a publish left behind."""
    return sorted(
        str(p.relative_to(serve)) for p in [*serve.glob(".*"), *(serve / "builds").glob(".*")]
    )


# --- the sequence of operations -------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("operations")
    # no DAGSTER_HOME: the CLI's runs go to <data_dir>/dagster_home, as for a user
    env = {
        "PIPELINE_DATA_DIR": str(root / "data"),
        "PIPELINE_CUSTOMERS": CUSTOMERS,  # the seeded first refresh's, which this world copies
        "PIPELINE_AS_OF": FIRST_AS_OF,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_TARGET_PATH": str(root / "dbt_target"),
    }
    current = settings_module.load(environ=env)
    assert current.warehouse.is_relative_to(root)
    return World(root=root, env=env, settings=current, defs=build_definitions(current))


@pytest.fixture(scope="module")
def first_refresh(world, tmp_path_factory) -> ServeState:
    assert not world.data_dir.exists()
    first_refresh_copy(tmp_path_factory, world.data_dir)
    state = serve_state(world.serve)
    assert manifest_of(state)["as_of"] == FIRST_AS_OF
    return state


@dataclass
class BadDataRun:
    result: dg.ExecuteInProcessResult
    instance: dg.DagsterInstance
    selection: list[dg.AssetKey]
    before: ServeState
    after: ServeState


@pytest.fixture(scope="module")
def bad_data_run(world, first_refresh):
    """A realistic bad row: an order line with a negative quantity (a return booked as a sale)
    lands in raw.order_lines; then everything downstream of raw is refreshed (re-simulating raw
    would overwrite the row)."""
    with duckdb.connect(str(world.warehouse)) as conn:
        conn.execute(
            "insert into raw.order_lines "
            "select ?, 1, order_date, customer_code, product_code, -3 "
            "from raw.order_lines order by order_date desc, order_id, line_number limit 1",
            [BAD_ORDER_ID],
        )
    before = serve_state(world.serve)
    raw_keys = set(synthetic_raw_data.keys)
    selection = [k for k in world.defs.resolve_all_asset_keys() if k not in raw_keys]
    instance = dg.DagsterInstance.ephemeral()
    result = refresh_in_process(world, FIRST_AS_OF, instance=instance, asset_selection=selection)
    yield BadDataRun(result, instance, selection, before, serve_state(world.serve))
    instance.dispose()


@dataclass
class KilledRefresh:
    before: ServeState
    after: ServeState
    leftovers: list[str]
    dbt_target: Path  # the star-schema build's target folder at the kill
    returncode: int
    survivors: dict[int, list[str]]
    log: Path


@pytest.fixture(scope="module")
def killed_refresh(world, first_refresh, bad_data_run) -> KilledRefresh:
    before = serve_state(world.serve)
    dbt_runs = world.data_dir / "dbt_runs"
    known = {p.name for p in dbt_runs.glob("*")}
    log = world.root / "killed_refresh.log"
    process = cli_refresh(world, LATER_AS_OF, log)
    try:
        dbt_target = wait_for_dbt_mid_build(process, dbt_runs, known)
        os.killpg(process.pid, signal.SIGKILL)
        returncode = process.wait(timeout=30)
        survivors = wait_for_group_to_die(process.pid)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    return KilledRefresh(
        before,
        serve_state(world.serve),
        leftovers(world.serve),
        dbt_target,
        returncode,
        survivors,
        log,
    )


@dataclass
class RecoveredRefresh:
    command: str  # the README's, as written
    returncode: int
    stdout: str
    stderr: str
    log: Path  # both, for failure messages
    before: ServeState
    after: ServeState
    runs: list[dg.DagsterRun]
    order_lines: int  # raw.order_lines after it, before anything else writes the warehouse


def readme_refresh_commands() -> list[str]:
    return README_COMMAND.findall(README.read_text())


@pytest.fixture(scope="module")
def recovered_refresh(world, killed_refresh) -> RecoveredRefresh:
    """The README's shell refresh, exactly as written, from the repository root, in a clean
    environment: no DAGSTER_HOME, no venv on PATH, nothing the Makefile would export; only the
    scale and the data folder are the world's. Its as-of date is the killed refresh's, so it is
    also the refresh after the kill."""
    commands = readme_refresh_commands()
    assert commands, "the README shows no `.venv/bin/python -m pipeline.cli refresh` command"
    command = commands[0]
    assert f"--as-of {LATER_AS_OF}" in command, (
        f"the README's refresh {command!r} must be as of {LATER_AS_OF}: this sequence runs it "
        "as the refresh after the killed one (change LATER_AS_OF with it)"
    )
    if not VENV_PYTHON.exists():
        pytest.skip("no .venv in the repository (make setup creates it)")
    (world.root / "home").mkdir(exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(world.root / "home"),
        "PIPELINE_DATA_DIR": world.env["PIPELINE_DATA_DIR"],
        "PIPELINE_CUSTOMERS": world.env["PIPELINE_CUSTOMERS"],
    }
    before = serve_state(world.serve)
    process = subprocess.run(
        ["bash", "-c", command],
        cwd=settings_module.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=REFRESH_TIMEOUT,
    )
    log = world.root / "recovered_refresh.log"
    log.write_text(process.stdout + process.stderr)
    # Both CLI runs were recorded in the instance under the data folder (newest first).
    with dg.DagsterInstance.from_config(str(world.data_dir / "dagster_home")) as instance:
        runs = list(instance.get_runs())
    with duckdb.connect(str(world.warehouse), read_only=True) as conn:
        (order_lines,) = conn.execute("select count(*) from raw.order_lines").fetchone()
    return RecoveredRefresh(
        command,
        process.returncode,
        process.stdout,
        process.stderr,
        log,
        before,
        serve_state(world.serve),
        runs,
        order_lines,
    )


@dataclass
class Backfill:
    result: dg.ExecuteInProcessResult
    before: ServeState
    after: ServeState
    new_builds: list[Path]
    history_before: list[tuple]  # marts.customer_segment_history per as-of date, in the warehouse
    history_after: list[tuple]


@pytest.fixture(scope="module")
def backfill(world, recovered_refresh) -> Backfill:
    assert recovered_refresh.returncode == 0, (
        "the backfill needs the later refresh to have succeeded"
    )
    before = serve_state(world.serve)
    history_before = history_counts(world.warehouse)
    result = refresh_in_process(world, BACKFILL_AS_OF)
    after = serve_state(world.serve)
    builds = world.serve / "builds"
    new = sorted(builds / name for name in after.builds - before.builds)
    return Backfill(result, before, after, new, history_before, history_counts(world.warehouse))


# --- 1. a refresh killed during dbt -----------------------------------------------------------


def test_a_refresh_killed_during_dbt_leaves_the_snapshot_untouched(killed_refresh, first_refresh):
    killed = killed_refresh
    # It really was killed mid-build, as a whole: dbt with it.
    assert killed.returncode == -signal.SIGKILL
    assert not (killed.dbt_target / "run_results.json").exists(), "dbt had already finished"
    assert killed.survivors == {}, f"processes outlived the kill: {killed.survivors}"
    assert "succeeded" not in killed.log.read_text(errors="replace")

    # The snapshot BI reads is byte for byte the one before: same link, manifest and files.
    assert killed.before.target is not None
    assert killed.after == killed.before
    assert manifest_of(killed.after)["as_of"] == FIRST_AS_OF
    assert killed.after.target == first_refresh.target
    # Nothing half-built was promoted, and no temporary build or link was left behind.
    assert killed.leftovers == []
    assert not any(name.startswith(LATER_AS_OF) for name in killed.after.builds)


def test_the_refresh_after_a_killed_one_succeeds_and_publishes(
    world, killed_refresh, recovered_refresh
):
    recovered = recovered_refresh
    assert recovered.returncode == 0, f"the refresh after the kill failed:\n{tail(recovered.log)}"
    assert recovered.before == killed_refresh.after

    manifest = manifest_of(recovered.after)
    assert manifest["as_of"] == LATER_AS_OF and manifest["promoted"] is True
    assert recovered.after.target != recovered.before.target
    assert recovered.after.target.parent == world.serve / "builds"
    assert manifest["build_id"] == recovered.after.target.name
    assert leftovers(world.serve) == []
    # The new snapshot is complete and readable, and its data is of the later as-of date.
    with duckdb.connect(
        str(recovered.after.target / "customer_analytics.duckdb"), read_only=True
    ) as snap:
        inside = dict(
            snap.execute("select table_name, row_count from main.snapshot_manifest").fetchall()
        )
        (max_date,) = snap.execute(
            "select cast(max(date) as date) from marts.fact_sales"
        ).fetchone()
        (customers,) = snap.execute("select count(*) from marts.customer_single_view").fetchone()
        (negative,) = snap.execute(
            "select count(*) from marts.fact_sales where sold_quantity < 0"
        ).fetchone()
    assert inside == {f"marts.{t}": n for t, n in manifest["row_counts"].items()}
    assert FIRST_AS_OF < max_date.isoformat() <= LATER_AS_OF
    assert customers > 0
    assert negative == 0  # the bad row of the blocking-check run is gone: raw was simulated again

    # The instance holds both CLI runs: the killed one never reached success.
    assert len(recovered.runs) == 2
    latest, killed_run = recovered.runs
    assert latest.status == dg.DagsterRunStatus.SUCCESS
    assert killed_run.status != dg.DagsterRunStatus.SUCCESS
    assert manifest["run_id"] == latest.run_id


def test_a_killed_run_is_reported_failed_by_the_next_refresh(recovered_refresh):
    killed_run = recovered_refresh.runs[-1]
    assert killed_run.status == dg.DagsterRunStatus.FAILURE


def test_the_readme_command_works_as_written_in_a_clean_environment(world, recovered_refresh):
    recovered = recovered_refresh
    assert recovered.returncode == 0, f"{recovered.command!r} failed:\n{tail(recovered.log)}"
    assert "Refresh succeeded" in recovered.stdout
    # the instance lives under the data folder, with the dagster.yaml the CLI wrote, and holds the run
    home = world.data_dir / "dagster_home"
    assert "enabled: false" in (home / "dagster.yaml").read_text()
    latest = recovered.runs[0]
    assert latest.status == dg.DagsterRunStatus.SUCCESS
    assert latest.tags[cli.AS_OF_TAG] == LATER_AS_OF


def test_a_run_prints_one_line_per_step_and_logs_the_rest_to_a_file(world, recovered_refresh):
    out = recovered_refresh.stdout + recovered_refresh.stderr
    lines = out.splitlines()
    assert len(lines) <= 30, out  # one screen
    assert not re.search(r"DEBUG|Telemetry|dagster\.yaml|Traceback|Warning", out), out
    step_lines = [line for line in lines if re.match(r"^  \S+ +ok +\d+\.\d s", line)]
    steps = [line.split()[0] for line in step_lines]
    assert {"synthetic_raw_data", "star_schema", "customer_marts", "serve__bi_snapshot"} <= set(
        steps
    )
    assert len(steps) == len(set(steps))
    # one column per field, also after the long names of asset-check steps
    assert len({re.search(r" ok +\d", line).start() for line in step_lines}) == 1, out
    raw = next(line for line in step_lines if line.split()[0] == "synthetic_raw_data")
    assert f"raw.order_lines {recovered_refresh.order_lines:,} rows" in raw
    assert re.search(
        r"\d+ checks passed", next(line for line in step_lines if " star_schema " in line)
    )
    # the full log is where the output says, with Dagster's events and dbt's output
    (log_path,) = set(re.findall(r"(/\S+/logs/refresh-\S+\.log)", out))
    log = Path(log_path).read_text()
    assert Path(log_path).parent == world.data_dir / "logs"
    assert "STEP_SUCCESS" in log and "DEBUG" in log and "Completed successfully" in log


# --- 2. a failing blocking check --------------------------------------------------------------


def test_a_failing_blocking_check_stops_the_publish(bad_data_run):
    run = bad_data_run
    result = run.result
    # The run really covered the publish, and not the raw layer.
    assert BI_SNAPSHOT in run.selection
    assert BI_SNAPSHOT in result.dagster_run.asset_selection
    assert not set(synthetic_raw_data.keys) & set(result.dagster_run.asset_selection)

    assert not result.success
    # It failed because the dbt test on the bad column failed, not for another reason.
    failed_checks = {
        e.asset_check_key for e in result.get_asset_check_evaluations() if not e.passed
    }
    assert {(k.asset_key.path[-1], k.name) for k in failed_checks} == {
        ("fact_sales", NEGATIVE_QUANTITY_CHECK)
    }, failed_checks
    (failed,) = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed.metadata["failed_tests"].value == f"{NEGATIVE_QUANTITY_TEST} (1 rows)"
    assert result.get_failed_step_keys() == {"star_schema"}, failure_summary(result)

    # Nothing downstream ran: no customer model, no customer mart, no snapshot.
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert BI_SNAPSHOT not in materialized
    assert dg.AssetKey(["analytics", "customer_rfm"]) not in materialized
    assert dg.AssetKey(["marts", "customer_single_view"]) not in materialized
    assert "serve__bi_snapshot" not in {e.step_key for e in result.get_step_success_events()}
    started = {
        e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START
    }
    assert "star_schema" in started and "serve__bi_snapshot" not in started
    assert run.instance.get_latest_materialization_event(BI_SNAPSHOT) is None

    # BI still reads the last good snapshot, byte for byte.
    assert run.before.target is not None
    assert run.after == run.before
    assert manifest_of(run.after)["as_of"] == FIRST_AS_OF


# --- 3. the run-failure sensor ----------------------------------------------------------------


def test_the_failure_sensor_records_the_failed_run(world, bad_data_run):
    instance = bad_data_run.instance
    failed = instance.get_run_by_id(bad_data_run.result.run_id)
    assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
    failure_event = bad_data_run.result.get_run_failure_event()
    assert failure_event.event_type == dg.DagsterEventType.RUN_FAILURE
    assert FAILURE_TAG not in failed.tags

    # The sensor is the one the Definitions deploy, watching the refresh job.
    assert world.defs.resolve_sensor_def("record_run_failures") is record_run_failures

    def evaluate():
        context = dg.build_run_status_sensor_context(
            sensor_name="record_run_failures",
            dagster_instance=instance,
            dagster_run=failed,
            dagster_event=failure_event,
            resources={"duckdb": DuckDBResource(database=str(world.warehouse))},
        )
        record_run_failures(context)

    evaluate()
    evaluate()  # a sensor may see the same failure twice: still one row

    with duckdb.connect(str(world.warehouse), read_only=True) as conn:
        rows = conn.execute(
            "select run_id, job_name, as_of_date, failed_steps, message, failed_at "
            "from ops.run_failures where run_id = ?",
            [failed.run_id],
        ).fetchall()
    assert len(rows) == 1
    run_id, job_name, as_of, failed_steps, message, failed_at = rows[0]
    assert (run_id, job_name, as_of, failed_steps) == (
        failed.run_id,
        "refresh",
        FIRST_AS_OF,
        "star_schema",
    )
    assert "star_schema" in message
    assert failed_at is not None

    tagged = instance.get_run_by_id(failed.run_id)
    assert FAILURE_TAG in tagged.tags
    assert "star_schema" in tagged.tags[FAILURE_TAG]


# --- 4. a backfill ----------------------------------------------------------------------------


def test_a_backfill_is_built_but_not_promoted(world, backfill):
    result = backfill.result
    assert result.success, failure_summary(result)
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == BI_SNAPSHOT]
    metadata = event.materialization.metadata
    assert metadata["as_of"].value == BACKFILL_AS_OF
    assert metadata["promoted"].value is False

    # BI stays on the later snapshot, untouched.
    assert backfill.before.target is not None
    assert same_snapshot(backfill.after, backfill.before)
    assert manifest_of(backfill.after)["as_of"] == LATER_AS_OF
    # the only new entry is the backfill's own dashboard, beside (not over) the current one
    added = backfill.after.serve_entries - backfill.before.serve_entries
    assert added == {f"dashboard-{BACKFILL_AS_OF}.html"}
    assert backfill.before.serve_entries <= backfill.after.serve_entries
    assert leftovers(world.serve) == []

    # The backfill's own build sits beside it, complete, and says what it is.
    assert len(backfill.new_builds) == 1
    (build,) = backfill.new_builds
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["as_of"] == BACKFILL_AS_OF and manifest["promoted"] is False
    assert manifest["build_id"] == build.name == metadata["build_id"].value
    assert manifest["run_id"] == result.run_id


def test_rerunning_an_as_of_publishes_the_same_marts_and_parquet_bytes(first_refresh, backfill):
    """The backfill re-runs the first refresh's date after the later refresh: the same marts,
    every value exact, and Parquet files equal byte for byte (rows are written in a fixed
    order), whatever ran in between (a failed run, a killed one, a later refresh)."""
    (build,) = backfill.new_builds
    first = first_refresh.target
    assert first is not None and first.is_dir() and first != build
    assert len(snapshot_digest(first)) >= 10
    assert snapshot_digest(build) == snapshot_digest(first)

    def parquet_digests(b: Path) -> dict[str, str]:
        return {p.name: sha256(p) for p in (b / "parquet").iterdir()}

    assert len(parquet_digests(first)) >= 10
    assert parquet_digests(build) == parquet_digests(first)


def test_rerunning_an_as_of_replaces_only_its_own_history(backfill):
    assert [row[0] for row in backfill.history_before] == [FIRST_AS_OF, LATER_AS_OF]
    assert backfill.history_after == backfill.history_before


# Columns dating what a row knows of the sales (dim_date is a calendar: it may run past any as-of).
ORDER_DATE_COLUMNS = ("date", "order_date", "first_order_date", "last_order_date")
# Columns dating the refresh a row comes from.
AS_OF_COLUMNS = ("as_of_date", "previous_as_of_date")


def dated_rows_after(
    snapshot: Path, as_of: str, names: tuple[str, ...]
) -> tuple[set[str], dict[str, int]]:
    """The columns called `names` in every published table, and how many rows of each are
    dated after as_of."""
    later = {}
    with duckdb.connect(str(snapshot), read_only=True) as conn:
        columns = conn.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name <> 'dim_date' order by 1, 2"
        ).fetchall()
        checked = {f"{t}.{c}" for t, c in columns if c in names}
        for name in sorted(checked):
            table, column = name.split(".")
            (n,) = conn.execute(
                f"select count(*) from marts.{table} where cast({column} as date) > cast(? as date)",
                [as_of],
            ).fetchone()
            if n:
                later[name] = n
    return checked, later


def test_a_backfill_holds_exactly_the_data_up_to_its_as_of(backfill):
    (build,) = backfill.new_builds
    later = backfill.after.target
    with duckdb.connect(":memory:") as conn:
        conn.execute(f"attach '{build / 'customer_analytics.duckdb'}' as backfill (read_only)")
        conn.execute(f"attach '{later / 'customer_analytics.duckdb'}' as later (read_only)")
        (backfill_max,) = conn.execute(
            "select cast(max(date) as date) from backfill.marts.fact_sales"
        ).fetchone()
        (later_max,) = conn.execute(
            "select cast(max(date) as date) from later.marts.fact_sales"
        ).fetchone()
        (snapshot_as_of,) = conn.execute(
            "select distinct cast(as_of_date as string) from backfill.main.snapshot_manifest"
        ).fetchall()[0]
        # The simulated world does not depend on the as-of date: the backfill sees exactly the
        # later refresh's order lines up to its own as-of date.
        only_backfill, only_later = conn.execute(
            f"""
            with b as (select order_line_id, sold_quantity, round(net_sales_amount, 6) as net
                       from backfill.marts.fact_sales),
                 l as (select order_line_id, sold_quantity, round(net_sales_amount, 6) as net
                       from later.marts.fact_sales where cast(date as date) <= date '{BACKFILL_AS_OF}')
            select (select count(*) from (select * from b except select * from l)),
                   (select count(*) from (select * from l except select * from b))
            """
        ).fetchone()
        (view_as_of,) = conn.execute(
            "select list(distinct cast(as_of_date as string)) from backfill.marts.customer_single_view"
        ).fetchone()
    checked, later_than_as_of = dated_rows_after(
        build / "customer_analytics.duckdb", BACKFILL_AS_OF, ORDER_DATE_COLUMNS
    )
    assert snapshot_as_of == BACKFILL_AS_OF
    assert backfill_max.isoformat() <= BACKFILL_AS_OF
    assert later_max.isoformat() > BACKFILL_AS_OF  # so the bound above is not vacuous
    assert (only_backfill, only_later) == (0, 0)
    assert view_as_of == [BACKFILL_AS_OF]
    # No published table knows of a sale after the as-of date.
    assert {"fact_sales.date", "customer_single_view.last_order_date"} <= checked
    assert later_than_as_of == {}


def test_a_backfill_snapshot_has_its_own_refresh(backfill):
    (build,) = backfill.new_builds
    checked, _ = dated_rows_after(
        build / "customer_analytics.duckdb", BACKFILL_AS_OF, AS_OF_COLUMNS
    )
    assert "customer_segment_history.as_of_date" in checked
    with duckdb.connect(str(build / "customer_analytics.duckdb"), read_only=True) as conn:
        for name in checked:
            table, column = name.split(".")
            if column == "as_of_date":
                (n,) = conn.execute(
                    f"select count(*) from marts.{table} where cast(as_of_date as date) = cast(? as date)",
                    [BACKFILL_AS_OF],
                ).fetchone()
                assert n > 0, f"{name} has no row of the backfill's own refresh"


def test_a_backfill_snapshot_holds_no_refresh_after_its_as_of(backfill):
    """A snapshot as of a past date must not know the later refresh: the same backfill run before
    or after the later refresh must publish the same data."""
    (build,) = backfill.new_builds
    _, later_than_as_of = dated_rows_after(
        build / "customer_analytics.duckdb", BACKFILL_AS_OF, AS_OF_COLUMNS
    )
    assert later_than_as_of == {}


# --- issue 17: the CLI records the failures it sees -------------------------------------------


def test_the_killed_run_is_recorded_in_run_failures_by_the_next_refresh(world, recovered_refresh):
    killed_run = recovered_refresh.runs[-1]
    # the resource's connection settings: this process ran the CLI and may still hold the file
    with DuckDBResource(database=str(world.warehouse)).get_connection() as conn:
        rows = conn.execute(
            "select as_of_date, failed_steps, message from ops.run_failures where run_id = ?",
            [killed_run.run_id],
        ).fetchall()
    assert len(rows) == 1
    as_of, failed_steps, message = rows[0]
    assert (as_of, failed_steps) == (LATER_AS_OF, "star_schema")  # it was killed during dbt
    assert "ended during star_schema before the run finished" in message
    assert killed_run.run_id[:8] in recovered_refresh.log.read_text()

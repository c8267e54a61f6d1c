"""``pipeline-dbt``: dbt's command line, started from the parse that ``make prepare`` saved.

dbt parses the whole project before every command (4-5 s of CPU: every model, test and macro
rendered) unless its partial parse applies, and that is rejected whenever ``--vars`` or the
profile's warehouse path differ from the saved parse's. Every refresh passes its own as-of
date, and every data folder has its own warehouse, so each refresh paid a full parse.

The parse does not depend on either: the vars and the warehouse are read when a node is
compiled at run time, not when the project is parsed. So this command hands dbt the manifest
``make prepare`` saved (``dbt_project/target/partial_parse.msgpack``) and dbt skips parsing.
It does so only when that manifest is known to match:

- it was written by this dbt version;
- it is newer than every file of the project (a model edited since ``make prepare`` would
  otherwise run as it was);
- the target is the DuckDB one it was parsed for, and its nodes name the same DuckDB catalog
  as this warehouse file.

Otherwise it is plain ``dbt``. Either way the arguments, output and exit codes are dbt's.
``pipeline.defs.resources`` makes it the dbt executable of every build.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.paths import WAREHOUSE_ENV

# Not pipeline.project's DbtProject: importing dagster-dbt (and Dagster) would cost this
# command 2.8 s before dbt starts. tests/test_dbt_overhead.py checks both name the same project.
PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
PREPARED_TARGET = "duckdb"
PREPARED = PROJECT_DIR / "target" / "partial_parse.msgpack"
PROJECT_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md"}
SKIPPED_FOLDERS = {"target", "logs", "dbt_packages", "dbt_internal_packages"}
# The commands that read a manifest (others, such as parse, debug or --version, go to dbt as is).
MANIFEST_COMMANDS = {"build", "run", "test", "seed", "compile", "ls", "list", "show"}


def project_files(project_dir: Path) -> list[Path]:
    return [
        path
        for path in project_dir.rglob("*")
        if path.suffix in PROJECT_SUFFIXES
        and not SKIPPED_FOLDERS.intersection(path.relative_to(project_dir).parts)
    ]


def option_of(args: list[str], *names: str) -> str | None:
    """The value of an option given last (the one dbt's command line keeps), or None."""
    value = None
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(tuple(f"{name}=" for name in names)):
            value = arg.split("=", 1)[1]
    return value


def target_of(args: list[str]) -> str | None:
    return option_of(args, "--target", "-t")


def prepared_manifest(args: list[str], prepared: Path = PREPARED, project_dir: Path | None = None):
    """The saved manifest if it matches this project, dbt and target; else None (and why)."""
    project_dir = project_dir or PROJECT_DIR
    if target_of(args) not in (None, PREPARED_TARGET):
        return None, f"target {target_of(args)!r} is not the prepared one"
    # e.g. dagster-dbt's copy of the project with a selectors.yml for a large subset
    named = option_of(args, "--project-dir")
    if named is not None and Path(named).resolve() != project_dir.resolve():
        return None, f"the project is {named}, not {project_dir}"
    try:
        saved = prepared.stat().st_mtime
    except OSError:
        return None, f"no prepared parse at {prepared}"
    stale = [p for p in project_files(project_dir) if p.stat().st_mtime > saved]
    if stale:
        return None, f"{stale[0].relative_to(project_dir)} changed after the prepared parse"

    from dbt.version import __version__

    try:
        manifest = load_manifest(prepared, prepared.stat().st_mtime_ns)
    except Exception as error:  # an unreadable or other-version file: dbt parses instead
        return None, f"the prepared parse cannot be read ({type(error).__name__})"
    if manifest.metadata.dbt_version != __version__:
        return None, f"the prepared parse is from dbt {manifest.metadata.dbt_version}"
    catalog = Path(os.environ.get(WAREHOUSE_ENV, "warehouse.duckdb")).stem
    databases = {node.database for node in manifest.nodes.values() if node.database}
    if databases - {catalog}:
        return None, f"the prepared parse names catalog {sorted(databases)}, not {catalog!r}"
    return manifest, None


@functools.lru_cache(maxsize=1)
def load_manifest(path: Path, mtime_ns: int):
    """The manifest saved at ``path`` (as of ``mtime_ns``), read once per process: the builds
    run in a refresh's process share it, as dbt's documented ``dbtRunner(manifest=...)`` reuse
    does (0.2-0.3 s of CPU to read it)."""
    from dbt.contracts.graph.manifest import Manifest

    return Manifest.from_msgpack(path.read_bytes())


def manifest_for(args: list[str]):
    """The prepared manifest for a command that reads one, if it applies; else None, and dbt
    parses (saying why, in the run's log)."""
    command = next((arg for arg in args if not arg.startswith("-")), None)
    if command not in MANIFEST_COMMANDS:
        return None
    manifest, why = prepared_manifest(args)
    if why:
        print(f"pipeline-dbt: dbt parses the project ({why})", file=sys.stderr)
    return manifest


# dbt's events for a node's result: the ones dagster-dbt turns into materializations and checks.
RESULT_EVENTS = frozenset({"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"})


@dataclass
class Finished:
    """A dbt command run in this process, as far as its caller needs it."""

    success: bool
    exception: BaseException | None
    results: list[dict] = field(default_factory=list)  # result events, as dbt's JSON log lines
    errors: list[str] = field(default_factory=list)  # its error-level messages, in order
    result: Any = None  # dbt's own result object (for build: its run results), if it ran


def run_in_process(args: list[str]) -> Finished:
    """Run a dbt command in this process, from the prepared parse when it applies.

    A dbt process costs 2-2.5 s of CPU before its first node (importing dbt and its adapter,
    which this process pays once). dbt supports running commands in-process one after
    another (``dbtRunner``), not concurrently. The caller gives ``--project-dir``,
    ``--target-path`` and ``--log-path``: nothing is read from the working directory.
    """
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import msg_to_dict

    finished = Finished(success=False, exception=None)

    def collect(msg) -> None:  # called on dbt's worker threads; list.append is atomic
        if msg.info.name in RESULT_EVENTS:
            finished.results.append(msg_to_dict(msg))
        elif msg.info.level == "error":
            finished.errors.append(msg.info.msg)

    try:
        result = dbtRunner(manifest=manifest_for(args), callbacks=[collect]).invoke(args)
    finally:
        release_adapter()
    finished.success, finished.exception = result.success, result.exception
    finished.result = result.result
    return finished


def release_adapter() -> None:
    """Drop dbt's adapter, and close the DuckDB database dbt-duckdb keeps open for the process
    (a class attribute that outlives the command): the warehouse must be free for this
    process's own connections, and the next command may name another file."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.adapters.factory import reset_adapters

    environment = DuckDBConnectionManager._ENV
    DuckDBConnectionManager.close_all_connections()
    if environment is not None and hasattr(environment, "close"):
        environment.close()
    reset_adapters()  # the next command builds its adapter from its own profile


def release_semaphores() -> None:
    """Free the named semaphores (multiprocessing locks) of dbt's adapters and manifests. Python's
    own exit frees them; a process that leaves without its teardown (``cli.exit_now``) calls
    this first, or the multiprocessing resource tracker warns of leaked semaphores.

    Each semaphore registers a finalizer that unlinks it, which Python's exit runs whether the
    lock is still referenced or not; this runs those finalizers, and only those. (A full
    ``gc.collect()`` to free the locks caught in reference cycles cost 0.45 s of CPU over the
    580,000 objects a refresh leaves, and missed the ones still referenced.)"""
    from multiprocessing import synchronize, util

    for finalizer in list(util._finalizer_registry.values()):
        if getattr(finalizer, "_callback", None) is synchronize.SemLock._cleanup:
            finalizer()  # unlinks the semaphore and leaves the registry


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from dbt.cli.main import dbtRunner

    result = dbtRunner(manifest=manifest_for(args)).invoke(args)
    # dbt's own exit codes: 0 success, 1 the command ran and failed, 2 it could not run
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


if __name__ == "__main__":  # dbt starts worker processes with 'spawn', which import __main__
    sys.exit(main())

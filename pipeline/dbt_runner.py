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

import os
import sys
from pathlib import Path

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


def target_of(args: list[str]) -> str | None:
    """The --target given last (the one dbt's command line keeps), or None."""
    target = None
    for i, arg in enumerate(args):
        if arg in ("--target", "-t") and i + 1 < len(args):
            target = args[i + 1]
        elif arg.startswith("--target="):
            target = arg.split("=", 1)[1]
    return target


def prepared_manifest(args: list[str], prepared: Path = PREPARED, project_dir: Path | None = None):
    """The saved manifest if it matches this project, dbt and target; else None (and why)."""
    project_dir = project_dir or PROJECT_DIR
    if target_of(args) not in (None, PREPARED_TARGET):
        return None, f"target {target_of(args)!r} is not the prepared one"
    try:
        saved = prepared.stat().st_mtime
    except OSError:
        return None, f"no prepared parse at {prepared}"
    stale = [p for p in project_files(project_dir) if p.stat().st_mtime > saved]
    if stale:
        return None, f"{stale[0].relative_to(project_dir)} changed after the prepared parse"

    from dbt.contracts.graph.manifest import Manifest
    from dbt.version import __version__

    try:
        manifest = Manifest.from_msgpack(prepared.read_bytes())
    except Exception as error:  # an unreadable or other-version file: dbt parses instead
        return None, f"the prepared parse cannot be read ({type(error).__name__})"
    if manifest.metadata.dbt_version != __version__:
        return None, f"the prepared parse is from dbt {manifest.metadata.dbt_version}"
    catalog = Path(os.environ.get(WAREHOUSE_ENV, "warehouse.duckdb")).stem
    databases = {node.database for node in manifest.nodes.values() if node.database}
    if databases - {catalog}:
        return None, f"the prepared parse names catalog {sorted(databases)}, not {catalog!r}"
    return manifest, None


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from dbt.cli.main import dbtRunner

    command = next((arg for arg in args if not arg.startswith("-")), None)
    manifest = None
    if command in MANIFEST_COMMANDS:
        manifest, why = prepared_manifest(args)
        if why:  # in the run's log: why this build pays for a parse
            print(f"pipeline-dbt: dbt parses the project ({why})", file=sys.stderr)
    result = dbtRunner(manifest=manifest).invoke(args)
    # dbt's own exit codes: 0 success, 1 the command ran and failed, 2 it could not run
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


if __name__ == "__main__":  # dbt starts worker processes with 'spawn', which import __main__
    sys.exit(main())

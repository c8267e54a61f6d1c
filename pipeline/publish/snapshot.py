"""The BI serving snapshot: a copy of the marts that BI reads while the pipeline writes.

DuckDB allows one writer or many readers per file, never both, so BI never opens the working
warehouse. Each publish builds a complete snapshot in its own folder beside the current one,
then swaps a symlink onto it with ``os.replace`` (atomic on POSIX):

    <serve_dir>/builds/<build_id>/customer_analytics.duckdb      the marts, schema ``marts``, read-only for BI
    <serve_dir>/builds/<build_id>/parquet/*.parquet  one Parquet file per mart
    <serve_dir>/builds/<build_id>/manifest.json      as-of date, row counts, build time, code version
    <serve_dir>/current -> builds/<build_id>         what BI opens

A reader that opened the old snapshot keeps reading it (its file handle survives the swap and the
pruning of old builds); new connections see the new one. A refresh that fails before the publish
never touches ``current``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from pipeline import warehouse

SNAPSHOT_FILE = "customer_analytics.duckdb"
MANIFEST_FILE = "manifest.json"
CURRENT_LINK = "current"
PUBLISHED_SCHEMA = "marts"

# Columns that identify a person. They stay in the working warehouse; the snapshot that BI and
# other systems read never carries them (customer_single_view has a masked email instead).


@dataclass(frozen=True)
class Manifest:
    build_id: str
    as_of: str
    built_at: str
    code_version: str
    run_id: str
    row_counts: dict[str, int] = field(default_factory=dict)
    promoted: bool = True

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls(**json.loads(path.read_text()))


def code_version(repo: Path) -> str:
    """The git commit of the code that built the snapshot (with ``-dirty`` for local edits)."""
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def current_manifest(serve_dir: Path) -> Manifest | None:
    path = serve_dir / CURRENT_LINK / MANIFEST_FILE
    return Manifest.read(path) if path.exists() else None


def published_columns(
    conn: duckdb.DuckDBPyConnection, marts: Mapping[str, Collection[str]] | None = None
) -> dict[str, list[str]]:
    """The tables of the marts schema named in ``marts`` (every one when it is None), each with
    the PII columns ``marts`` gives for it left out. The pipeline passes what dbt's YAML declares
    (``meta: {publish: true}`` on a model, ``meta: {pii: true}`` on a column)."""
    tables = {}
    for table in warehouse.list_tables(conn, PUBLISHED_SCHEMA):
        if marts is not None and table not in marts:
            continue
        hidden = set(marts.get(table, ())) if marts is not None else set()
        columns = [c for c, _ in warehouse.table_columns(conn, PUBLISHED_SCHEMA, table)]
        tables[table] = [c for c in columns if c not in hidden]
    return tables


def publish(
    conn: duckdb.DuckDBPyConnection,
    serve_dir: Path,
    as_of: dt.date,
    run_id: str,
    version: str,
    keep_builds: int = 3,
    marts: Mapping[str, Collection[str]] | None = None,
) -> Manifest:
    """Build a snapshot of the marts from ``conn`` (the warehouse) and swap it in.

    A snapshot older than the current one (a backfill of a past as-of date) is built but not
    promoted, so BI never goes back in time by accident.
    """

    def export(staging: Path) -> dict[str, int]:
        return warehouse.export_tables(
            conn,
            PUBLISHED_SCHEMA,
            published_columns(conn, marts),
            str(staging / SNAPSHOT_FILE),
            str(staging / "parquet"),
            as_of,
        )

    return publish_build(serve_dir, as_of, run_id, version, export, keep_builds=keep_builds)


def publish_build(
    serve_dir: Path,
    as_of: dt.date,
    run_id: str,
    version: str,
    export: Callable[[Path], dict[str, int]],
    keep_builds: int = 3,
    finish: Callable[[Path, dict[str, int]], None] | None = None,
) -> Manifest:
    """The life of one build, whatever writes it: ``export(staging)`` fills a fresh staging
    folder (its ``parquet/`` subfolder exists) and returns the row count of each mart; the
    manifest is written, the folder renamed to its build id, ``finish(final, counts)`` completes
    what must name the final path, then ``current`` is swapped onto it (unless it is older than
    the current one) and old builds are pruned. Any failure leaves no build behind."""
    built_at = dt.datetime.now(dt.timezone.utc)
    build_id = f"{as_of.isoformat()}_{built_at:%Y%m%dT%H%M%S%f}_{run_id[:8]}"
    builds = serve_dir / "builds"
    remove_leftovers(serve_dir)
    staging = builds / f".{build_id}.tmp"
    (staging / "parquet").mkdir(parents=True)
    final = builds / build_id
    try:
        counts = export(staging)
        previous = current_manifest(serve_dir)
        manifest = Manifest(
            build_id=build_id,
            as_of=as_of.isoformat(),
            built_at=built_at.isoformat(timespec="seconds"),
            code_version=version,
            run_id=run_id,
            row_counts=counts,
            promoted=previous is None or previous.as_of <= as_of.isoformat(),
        )
        _write_manifest(staging, manifest)
        os.replace(staging, final)
        if finish is not None:
            finish(final, counts)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        raise
    if manifest.promoted:
        _point_current_at(serve_dir, final)
    _prune(builds, keep=keep_builds, protect=(serve_dir / CURRENT_LINK).resolve())
    return manifest


def remove_leftovers(serve_dir: Path) -> list[Path]:
    """Delete what publishes killed part-way left behind: staging folders
    (``builds/.<build_id>.tmp``) and temporary links (``.current.<build_id>.tmp``); return them.

    Only one publish can be running per serve folder, and it is this one: a publish holds the
    write lock of the warehouse the serve folder belongs to (DuckDB admits one writing process)
    from before its staging folder exists until after the swap. So any staging name found here
    belongs to a publish that is gone. Finished builds never carry a dot-name (see ``_prune``).
    """
    leftovers = [
        *(p for p in (serve_dir / "builds").glob(".*.tmp") if p.is_dir() and not p.is_symlink()),
        *(p for p in serve_dir.glob(f".{CURRENT_LINK}.*.tmp") if p.is_symlink()),
    ]
    for path in leftovers:
        if path.is_symlink():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
    return leftovers


def _write_manifest(folder: Path, manifest: Manifest) -> None:
    """The manifest goes both beside the files and inside the DuckDB file, so a reader checks
    the snapshot it has open against the manifest of that very snapshot."""
    (folder / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    with duckdb.connect(str(folder / SNAPSHOT_FILE)) as snapshot:
        snapshot.execute(
            "create table main.snapshot_manifest (table_name string, row_count bigint, "
            "as_of_date date, build_id string, built_at string, code_version string)"
        )
        snapshot.executemany(
            "insert into main.snapshot_manifest values (?, ?, ?, ?, ?, ?)",
            [
                (
                    f"{PUBLISHED_SCHEMA}.{table}",
                    n,
                    manifest.as_of,
                    manifest.build_id,
                    manifest.built_at,
                    manifest.code_version,
                )
                for table, n in manifest.row_counts.items()
            ],
        )


def _point_current_at(serve_dir: Path, build: Path) -> None:
    link = serve_dir / CURRENT_LINK
    temporary = serve_dir / f".{CURRENT_LINK}.{build.name}.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(build.relative_to(serve_dir), target_is_directory=True)
    os.replace(temporary, link)  # atomic: readers see the old or the new target, never neither


def _prune(builds: Path, keep: int, protect: Path) -> None:
    """Keep the newest ``keep`` promoted builds and the newest ``keep`` backfill builds apart, so
    backfills never push out a past snapshot; never delete the current one. Readers with a
    deleted build open keep their files."""
    finished = sorted(
        (p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for promoted in (True, False):
        kind = [p for p in finished if _is_promoted(p) is promoted]
        for old in kind[keep:]:
            if old.resolve() != protect:
                shutil.rmtree(old, ignore_errors=True)


def _is_promoted(build: Path) -> bool:
    try:
        return Manifest.read(build / MANIFEST_FILE).promoted
    except (OSError, ValueError, TypeError):
        return True  # an unreadable build is pruned like a normal one

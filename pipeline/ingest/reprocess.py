"""Read every imported file again with today's settings: the explicit way to apply a changed
format setting (date format, decimal separator, column names) to files loaded before it.

A dry run by default: it shows, per file, the loaded and quarantined rows before and after, and
rolls back. With ``apply`` it commits, and the counts become the baseline the next refresh is
checked against (the refresh itself then publishes the marts).
"""

from __future__ import annotations

import duckdb

from pipeline.ingest.config import FileImportError, ImportConfig
from pipeline.ingest.importer import ImportReport, run_import


def reprocess(conn: duckdb.DuckDBPyConnection, config: ImportConfig, apply: bool) -> ImportReport:
    return run_import(conn, config, reprocess=True, commit=apply)


def changes(report: ImportReport) -> list[str]:
    """One line per file: its loaded / quarantined rows before and after, and why."""
    lines = []
    for f in report.files:
        loaded_before, quarantined_before = report.before.get(f["file_name"], (None, None))
        reasons = ", ".join(f"{k}: {v}" for k, v in f["reasons"].items()) or "none"
        if f["file_name"] in report.new_files:
            status = f"new file: {f['loaded']} loaded, {f['quarantined']} quarantined"
        elif (loaded_before, quarantined_before) == (f["loaded"], f["quarantined"]):
            status = f"unchanged: {f['loaded']} loaded, {f['quarantined']} quarantined"
        else:
            status = f"loaded {loaded_before} -> {f['loaded']}, quarantined {quarantined_before} -> {f['quarantined']}"
        lines.append(f"{f['file_name']}: {status} (reasons: {reasons})")
    return lines


def run_command(apply: bool) -> int:
    """``python -m pipeline.cli reprocess [--apply]``: print what changes; commit with --apply."""
    from pipeline import engine
    from pipeline import settings as settings_module

    current = settings_module.load()
    config = ImportConfig.from_settings(current)
    # on Spark the import's load log and staged rows live in its staging file
    database = engine.import_staging(current) if engine.is_spark(current) else current.warehouse
    if not database.exists():
        print(f"No warehouse at {database}: nothing imported yet.")
        return 1
    try:
        with duckdb.connect(str(database)) as conn:
            report = reprocess(conn, config, apply)
    except FileImportError as error:
        print(f"Cannot reprocess: {error}")
        return 1
    for line in changes(report):
        print(line)
    if apply:
        print("\nApplied. Run a refresh (make run) to publish the marts from the re-read files.")
    else:
        print(
            "\nDry run: nothing changed. Run `python -m pipeline.cli reprocess --apply` to commit."
        )
    return 0

"""Load the import folder into raw.*: stage new files once, validate, rebuild raw.*.

Persistent tables (schema raw):
- import_<kind>: every row of every loaded file, typed, with its file, position, and the reason it
  was refused when the file was read (null if none); the file's own text for refused rows only.
- import_files: the load log, one row per file: name, layout, kind, content hash, rows read, the
  settings the file was read with, and as of the latest refresh the rows loaded, quarantined and
  the count per reason; plus the baseline of loaded rows the next refresh must not fall below.
- quarantine: the rows of the latest refresh that were not loaded, with the reason.
A file is read and validated once, with the settings in force when it arrives; the reasons that
depend on the refresh (as-of date, duplicates, references) are decided again every refresh, so a
backfill to an earlier date sees fewer orders and a customer file that arrives late releases its
orders. ``reprocess=True`` re-reads every logged file with today's settings.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.ingest import layouts, readers, validate
from pipeline.ingest.config import FileImportError, ImportConfig
from pipeline.warehouse import quote_ident as q
from pipeline.warehouse import quote_literal

LOG = "raw.import_files"
REPROCESS_COMMAND = "python -m pipeline.cli reprocess"


@dataclass
class ImportReport:
    new_files: list[str] = field(default_factory=list)
    known_files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)  # raw table -> rows
    reasons: dict[str, int] = field(default_factory=dict)  # reason -> quarantined rows
    files: list[dict] = field(default_factory=list)  # the load log rows of this layout
    # files loading fewer rows than the baseline: (file, baseline loaded, loaded now)
    fewer_loaded: list[tuple[str, int, int]] = field(default_factory=list)
    # reprocess: file -> (loaded, quarantined) before it was re-read
    before: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)

    @property
    def input_rows(self) -> int:
        return sum(f["rows"] for f in self.files)

    @property
    def loaded_rows(self) -> int:
        return sum(f["loaded"] for f in self.files)

    @property
    def quarantined_rows(self) -> int:
        return sum(f["quarantined"] for f in self.files)


def _ensure_tables(conn: duckdb.DuckDBPyConnection, config: ImportConfig, reprocess: bool) -> None:
    conn.execute("create schema if not exists raw")
    conn.execute(
        f"create table if not exists {LOG} (file_name varchar, layout varchar, input_table varchar, "
        "content_hash varchar, size_bytes bigint, file_seq integer, loaded_at timestamp, rows bigint, "
        "loaded bigint, quarantined bigint, reasons varchar, as_of_date date, primary key (file_name, layout))"
    )
    for column, kind in (
        ("settings", "varchar"),
        ("baseline_loaded", "bigint"),
        ("baseline_as_of", "date"),
    ):
        conn.execute(f"alter table {LOG} add column if not exists {column} {kind}")
    for kind, rules in validate.rules_for(config).items():
        table = f"import_{kind}"
        existing = {
            c
            for (c,) in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ?",
                [table],
            ).fetchall()
        }
        if existing and "reason" not in existing:  # staged as text by an earlier version
            if not reprocess:
                raise FileImportError(
                    f"raw.{table} was staged by an earlier version of the import; run `{REPROCESS_COMMAND}` "
                    "to read the files again with the current settings"
                )
            conn.execute(f"drop table raw.{q(table)}")
        columns = ", ".join(f"{q(c)} {t}" for c, t in validate.column_types(rules).items())
        conn.execute(
            f"create table if not exists raw.{q(table)} (file_name varchar, file_seq integer, "
            f"row_number bigint, {columns}, reason varchar, original varchar)"
        )


def _stage(conn, config: ImportConfig, kind: layouts.Kind, path: Path, seq: int) -> int:
    """Read one file into raw.import_<kind>, validated with ``config``; return its rows."""
    columns = readers.file_columns(conn, path, config.csv)
    mapping = layouts.map_columns(config, kind, path.name, columns)
    rules = validate.rules_for(config)[kind.name]
    parquet = path.suffix.lower() == ".parquet"
    sql = validate.stage_sql(
        kind.name,
        rules,
        mapping,
        readers.source(path, config.csv, columns),
        decimal_comma=config.csv.decimal_separator == ",",
        parquet=parquet,
    )
    readers.start(conn)
    try:
        params = {"file": path.name, "seq": seq}
        if "$formats" in sql:
            params["formats"] = list(config.date_formats)
        conn.execute(sql, params)
    except duckdb.Error as error:
        raise FileImportError(readers._readable(path, config.csv, error)) from None
    rejected = readers.rejected_lines(conn, path, config.csv)
    table = f"raw.{q('import_' + kind.name)}"
    if rejected:
        # _pos counts the rows read; move each past the rejected lines before it
        conn.execute(
            "create or replace temp table _import_rejected (data_row bigint, reason varchar, line varchar)"
        )
        conn.executemany("insert into _import_rejected values (?, ?, ?)", rejected)
        conn.execute(
            f"""
            update {table} as s set row_number = s.row_number + (
                select count(*) from (select data_row - row_number() over (order by data_row) as read_before
                                      from _import_rejected) as r
                where r.read_before < s.row_number)
            where s.file_name = ? and s.file_seq = ?
            """,
            [path.name, seq],
        )
        conn.execute(
            f"insert into {table} (file_name, file_seq, row_number, reason, original) "
            "select ?, ?, data_row, reason, line from _import_rejected",
            [path.name, seq],
        )
        conn.execute("drop table _import_rejected")
    (rows,) = conn.execute(
        f"select count(*) from {table} where file_name = ? and file_seq = ?", [path.name, seq]
    ).fetchone()
    return rows


def _limit_memory(conn: duckdb.DuckDBPyConnection, limit: str) -> str:
    """Set DuckDB's memory limit for the import (beyond it, DuckDB spills to its temp directory)
    and return the statement that restores the previous one: RESET when it was the default (exact),
    else the limit as DuckDB reports it (rounded to its display precision)."""
    (previous,) = conn.execute("select current_setting('memory_limit')").fetchone()
    conn.execute("reset memory_limit")
    (default,) = conn.execute("select current_setting('memory_limit')").fetchone()
    conn.execute(f"set memory_limit = {quote_literal(limit)}")
    return (
        "reset memory_limit"
        if previous == default
        else f"set memory_limit = {quote_literal(previous)}"
    )


def _checkpoint(conn: duckdb.DuckDBPyConnection) -> None:
    """Write the new rows into the database file now, under the import's memory limit: left to
    the connection's close, the checkpoint of a large import runs with no limit."""
    try:
        conn.execute("checkpoint")
    except duckdb.Error:  # another connection has a transaction open: it checkpoints later
        pass


def run_import(
    conn: duckdb.DuckDBPyConnection,
    config: ImportConfig,
    *,
    reprocess: bool = False,
    commit: bool = True,
) -> ImportReport:
    """Stage the new files, validate, and rebuild raw.*, all in one transaction: an error leaves
    the warehouse as it was. ``reprocess`` reads the logged files again with ``config`` (they
    must still be in the folder, unchanged); ``commit=False`` rolls everything back (dry run)."""
    files = layouts.input_files(config)
    report = ImportReport()
    matched = {p.name for p, _ in files}
    if config.directory.is_dir():
        report.ignored_files = sorted(
            p.name for p in config.directory.iterdir() if p.name not in matched
        )
    layouts.check_column_map(config)
    restore_limit = _limit_memory(conn, config.memory_limit)
    conn.execute("begin transaction")
    try:
        _ensure_tables(conn, config, reprocess)
        logged = {
            name: (digest, loaded_at, seq, loaded, quarantined)
            for name, digest, loaded_at, seq, loaded, quarantined in conn.execute(
                f"select file_name, content_hash, loaded_at, file_seq, loaded, quarantined from {LOG} where layout = ?",
                [config.layout],
            ).fetchall()
        }
        if reprocess:
            missing = sorted(set(logged) - matched)
            if missing:
                raise FileImportError(
                    f"cannot reprocess: {', '.join(missing)} no longer in {config.directory}; put the "
                    "file(s) back (unchanged) to read them again"
                )
        (seq,) = conn.execute(f"select coalesce(max(file_seq), 0) from {LOG}").fetchone()
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        settings_json = json.dumps(config.file_settings(), sort_keys=True)
        for path, kind in files:
            digest = readers.content_hash(path)
            if path.name in logged:
                if logged[path.name][0] != digest:
                    raise FileImportError(
                        f"{path.name}: its content changed since it was loaded on "
                        f"{logged[path.name][1]:%Y-%m-%d %H:%M} (sha256 {logged[path.name][0][:12]}... -> "
                        f"{digest[:12]}...). Loaded files are never reloaded, to avoid counting rows twice: "
                        "put new rows in a new file, restore the original, or delete the warehouse to "
                        "reload everything from scratch"
                    )
                if not reprocess:
                    report.known_files.append(path.name)
                    continue
                file_seq = logged[path.name][2]
                report.before[path.name] = logged[path.name][3:5]
                conn.execute(
                    f"delete from raw.{q('import_' + kind.name)} where file_name = ? and file_seq = ?",
                    [path.name, file_seq],
                )
                rows = _stage(conn, config, kind, path, file_seq)
                conn.execute(
                    f"update {LOG} set rows = ?, settings = ? where file_name = ? and layout = ?",
                    [rows, settings_json, path.name, config.layout],
                )
                report.known_files.append(path.name)
                continue
            seq += 1
            rows = _stage(conn, config, kind, path, seq)
            conn.execute(
                f"insert into {LOG} (file_name, layout, input_table, content_hash, size_bytes, file_seq, "
                "loaded_at, rows, settings) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    path.name,
                    config.layout,
                    kind.name,
                    digest,
                    path.stat().st_size,
                    seq,
                    now,
                    rows,
                    settings_json,
                ],
            )
            report.new_files.append(path.name)
        present = {
            k
            for (k,) in conn.execute(
                f"select distinct input_table from {LOG} where layout = ?", [config.layout]
            ).fetchall()
        }
        layouts.check_complete(config, present, sorted(p.name for p in config.directory.iterdir()))

        rules = validate.create_views(conn, config)
        report.tables = validate.build_raw_tables(conn, config)
        validate.build_quarantine(conn, config, rules)
        outcomes = validate.file_outcomes(conn, list(rules))
        log = conn.execute(
            f"select file_name, baseline_loaded, baseline_as_of from {LOG} where layout = ? order by file_seq",
            [config.layout],
        ).fetchall()
        comparable = all(b is None or config.as_of >= b for _, _, b in log)
        if comparable and not reprocess:
            report.fewer_loaded = [
                (name, baseline, outcomes.get(name, (0, 0, {}))[0])
                for name, baseline, _ in log
                if baseline is not None and outcomes.get(name, (0, 0, {}))[0] < baseline
            ]
        # the baseline moves only when nothing was lost (or by an explicit reprocess); a backfill
        # to an earlier as-of date sees fewer orders and leaves it alone
        move = comparable and not report.fewer_loaded
        for name, _, _ in log:
            loaded, quarantined, reasons = outcomes.get(name, (0, 0, {}))
            conn.execute(
                f"update {LOG} set loaded = ?, quarantined = ?, reasons = ?, as_of_date = ?, "
                "baseline_loaded = case when ? then ? else baseline_loaded end, "
                "baseline_as_of = case when ? then ? else baseline_as_of end "
                "where file_name = ? and layout = ?",
                [
                    loaded,
                    quarantined,
                    json.dumps(reasons, sort_keys=True),
                    config.as_of,
                    move,
                    loaded,
                    move,
                    config.as_of,
                    name,
                    config.layout,
                ],
            )
        # the simulator's truth describes simulated customers, not these: drop any left behind
        conn.execute("drop schema if exists truth cascade")
        report.files = load_log(conn, config.layout)
        conn.execute("commit" if commit else "rollback")
    except BaseException:
        conn.execute("rollback")
        raise
    else:
        _checkpoint(conn)
    finally:
        conn.execute(restore_limit)
    for f in report.files:
        for reason, n in f["reasons"].items():
            report.reasons[reason] = report.reasons.get(reason, 0) + n
    return report


def load_log(conn: duckdb.DuckDBPyConnection, layout: str) -> list[dict]:
    rows = conn.execute(
        f"select file_name, input_table, content_hash, rows, loaded, quarantined, reasons, settings from {LOG} "
        "where layout = ? order by file_seq",
        [layout],
    ).fetchall()
    return [
        {
            "file_name": n,
            "input_table": t,
            "content_hash": h,
            "rows": r,
            "loaded": loaded,
            "quarantined": qn,
            "reasons": json.loads(rs or "{}"),
            "settings": json.loads(st or "{}"),
        }
        for n, t, h, r, loaded, qn, rs, st in rows
    ]


def unaccounted_files(
    conn: duckdb.DuckDBPyConnection, layout: str
) -> list[tuple[str, int, int, int]]:
    """Files whose rows read differ from loaded + quarantined, or whose quarantined count differs
    from their rows in raw.quarantine: (file, rows, loaded, quarantined). Empty when all is well."""
    return conn.execute(
        f"""
        select f.file_name, f.rows, f.loaded, f.quarantined
        from {LOG} as f
        left join (select file_name, count(*) as n from raw.quarantine group by file_name) as qr
            on qr.file_name = f.file_name
        where f.layout = ? and (f.loaded is null or f.rows <> f.loaded + f.quarantined
            or f.quarantined <> coalesce(qr.n, 0))
        order by f.file_name
        """,
        [layout],
    ).fetchall()


@dataclass(frozen=True)
class ImportRefresh:
    """What one refresh's import did, with what its checks and metadata need."""

    report: ImportReport
    # files whose rows are not all loaded or quarantined (see unaccounted_files)
    unaccounted: list[tuple[str, int, int, int]]
    # input table -> rows of raw.quarantine
    quarantined_by_table: dict[str, int]


def refresh(conn: duckdb.DuckDBPyConnection, config: ImportConfig) -> ImportRefresh:
    """The import step of a refresh: load the new files of ``config.directory`` into raw.*."""
    report = run_import(conn, config)
    return ImportRefresh(
        report=report,
        unaccounted=unaccounted_files(conn, config.layout),
        quarantined_by_table=dict(
            conn.execute(
                "select input_table, count(*) from raw.quarantine group by 1 order by 1"
            ).fetchall()
        ),
    )

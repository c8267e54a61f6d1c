"""Load the import folder into raw.*: stage new files once, validate everything, rebuild raw.*.

Persistent tables (schema raw):
- import_<kind>: every row of every loaded file, as text, with its file, position and original
  values (a JSON object of the file's own columns). Files are staged once: the load log knows them.
- import_files: the load log, one row per file: name, layout, kind, content hash, rows read, and as
  of the latest refresh the rows loaded, quarantined and the count per reason.
- quarantine: the rows of the latest refresh that were not loaded, with the reason.
Validation is re-run on all staged rows each refresh, so the as-of date and references always
apply to the refresh at hand (a backfill to an earlier date sees fewer orders, a customer file
that arrives late releases its orders).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import duckdb

from pipeline.ingest import layouts, readers, validate
from pipeline.ingest.config import FileImportError, ImportConfig
from pipeline.warehouse import quote_ident as q

LOG = "raw.import_files"


@dataclass
class ImportReport:
    new_files: list[str] = field(default_factory=list)
    known_files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)  # raw table -> rows
    reasons: dict[str, int] = field(default_factory=dict)  # reason -> quarantined rows
    files: list[dict] = field(default_factory=list)  # the load log rows of this layout

    @property
    def input_rows(self) -> int:
        return sum(f["rows"] for f in self.files)

    @property
    def loaded_rows(self) -> int:
        return sum(f["loaded"] for f in self.files)

    @property
    def quarantined_rows(self) -> int:
        return sum(f["quarantined"] for f in self.files)


def _ensure_tables(conn: duckdb.DuckDBPyConnection, kinds: tuple[layouts.Kind, ...]) -> None:
    conn.execute("create schema if not exists raw")
    conn.execute(
        f"create table if not exists {LOG} (file_name varchar, layout varchar, input_table varchar, "
        "content_hash varchar, size_bytes bigint, file_seq integer, loaded_at timestamp, rows bigint, "
        "loaded bigint, quarantined bigint, reasons varchar, as_of_date date, primary key (file_name, layout))"
    )
    for kind in kinds:
        columns = ", ".join(f"{q(c)} varchar" for c in kind.columns)
        conn.execute(
            f"create table if not exists raw.{q('import_' + kind.name)} (file_name varchar, file_format varchar, "
            f"file_seq integer, row_number bigint, {columns}, original varchar)"
        )


def _stage(conn, kind: layouts.Kind, path, mapping: dict[str, str | None], seq: int) -> int:
    select = ", ".join(f"t.{q(mapping[c])}" if mapping.get(c) else "null" for c in kind.columns)
    file_format = "parquet" if path.suffix.lower() == ".parquet" else "csv"
    # rowids of a table created inside a transaction start at an offset: count from the first
    conn.execute(
        f"insert into raw.{q('import_' + kind.name)} select ?, ?, ?, "
        f"t.rowid - (select min(rowid) from {readers.FILE_TABLE}) + 1, {select}, "
        f"cast(to_json(t) as varchar) from {readers.FILE_TABLE} as t order by t.rowid",
        [path.name, file_format, seq],
    )
    (rows,) = conn.execute(f"select count(*) from {readers.FILE_TABLE}").fetchone()
    conn.execute(f"drop table {readers.FILE_TABLE}")
    return rows


def run_import(conn: duckdb.DuckDBPyConnection, config: ImportConfig) -> ImportReport:
    """Stage the new files, validate, and rebuild raw.*, all in one transaction: an error leaves
    the warehouse as it was."""
    kinds = layouts.kinds(config)
    files = layouts.input_files(config)
    report = ImportReport()
    matched = {p.name for p, _ in files}
    if config.directory.is_dir():
        report.ignored_files = sorted(p.name for p in config.directory.iterdir() if p.name not in matched)
    conn.execute("begin transaction")
    try:
        _ensure_tables(conn, kinds)
        logged = {
            name: (digest, loaded_at)
            for name, digest, loaded_at in conn.execute(
                f"select file_name, content_hash, loaded_at from {LOG} where layout = ?", [config.layout]
            ).fetchall()
        }
        (seq,) = conn.execute(f"select coalesce(max(file_seq), 0) from {LOG}").fetchone()
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
                report.known_files.append(path.name)
                continue
            columns = readers.read_file(conn, path, config.csv)
            mapping = layouts.map_columns(config, kind, path.name, columns)
            seq += 1
            rows = _stage(conn, kind, path, mapping, seq)
            conn.execute(
                f"insert into {LOG} (file_name, layout, input_table, content_hash, size_bytes, file_seq, "
                "loaded_at, rows) values (?, ?, ?, ?, ?, ?, ?, ?)",
                [path.name, config.layout, kind.name, digest, path.stat().st_size, seq,
                 dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), rows],
            )
            report.new_files.append(path.name)
        present = {k for (k,) in conn.execute(
            f"select distinct input_table from {LOG} where layout = ?", [config.layout]).fetchall()}
        layouts.check_complete(config, present, sorted(p.name for p in config.directory.iterdir()))

        staged = {k.name: k.columns for k in kinds}
        kind_names = list(validate.validate(conn, config, staged))
        report.tables = validate.build_raw_tables(conn, config)
        validate.build_quarantine(conn, config, kind_names)
        outcomes = validate.file_outcomes(conn, kind_names)
        for (name,) in conn.execute(f"select file_name from {LOG} where layout = ?", [config.layout]).fetchall():
            loaded, quarantined, reasons = outcomes.get(name, (0, 0, {}))
            conn.execute(
                f"update {LOG} set loaded = ?, quarantined = ?, reasons = ?, as_of_date = ? "
                "where file_name = ? and layout = ?",
                [loaded, quarantined, json.dumps(reasons, sort_keys=True), config.as_of, name, config.layout],
            )
        # the simulator's truth describes simulated customers, not these: drop any left behind
        conn.execute("drop schema if exists truth cascade")
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    report.files = load_log(conn, config.layout)
    for f in report.files:
        for reason, n in f["reasons"].items():
            report.reasons[reason] = report.reasons.get(reason, 0) + n
    return report


def load_log(conn: duckdb.DuckDBPyConnection, layout: str) -> list[dict]:
    rows = conn.execute(
        f"select file_name, input_table, content_hash, rows, loaded, quarantined, reasons from {LOG} "
        "where layout = ? order by file_seq",
        [layout],
    ).fetchall()
    return [
        {"file_name": n, "input_table": t, "content_hash": h, "rows": r, "loaded": l, "quarantined": qn,
         "reasons": json.loads(rs or "{}")}
        for n, t, h, r, l, qn, rs in rows
    ]


def unaccounted_files(conn: duckdb.DuckDBPyConnection, layout: str) -> list[tuple[str, int, int, int]]:
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

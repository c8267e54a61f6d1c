"""The SQL Python assets run on the warehouse, kept in one place so engine-specific code is
visible and swappable. Identifiers are always quoted; values are always bound parameters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pandas as pd
import pyarrow as pa


def quote_ident(name: str) -> str:
    """Quote a SQL identifier for DuckDB (doubling embedded quotes)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def replace_tables(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    frames: Mapping[str, pd.DataFrame | Iterable[pd.DataFrame]],
) -> dict[str, int]:
    """Replace ``schema.<name>`` with each frame, all or nothing, and return the row counts.

    A table may also come as an iterable of frames with the same columns (blocks of its rows, in
    order; at least one), so that only one block is in memory at a time: the blocks are written
    to a staging table first (``_staged_blocks``), which the transaction then renames.
    One transaction, so a failure half way leaves the previous tables in place.
    """
    conn.execute(f"create schema if not exists {quote_ident(schema)}")
    staged: dict[str, int] = {}
    try:
        for name, frame in frames.items():
            if not isinstance(frame, pd.DataFrame):
                staged[name] = 0  # listed first, so that `finally` drops a half-written one
                staged[name] = _staged_blocks(conn, schema, name, frame)
        conn.execute("begin transaction")
        try:
            counts = {}
            for name, frame in frames.items():
                if name in staged:
                    conn.execute(f"drop table if exists {qualified(schema, name)}")
                    conn.execute(
                        f"alter table {qualified(schema, _staging(name))} "
                        f"rename to {quote_ident(name)}"
                    )
                    counts[name] = staged[name]
                    continue
                conn.register("_frame", scannable(frame))
                conn.execute(
                    f"create or replace table {qualified(schema, name)} as {_select_frame(frame)}"
                )
                conn.unregister("_frame")
                counts[name] = len(frame)
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
    finally:
        for name in staged:
            conn.execute(f"drop table if exists {qualified(schema, _staging(name))}")
    return counts


def _staging(name: str) -> str:
    return f"_staging_{name}"


# Rows written between checkpoints of a table staged block by block (about 4 of the
# simulator's blocks): a checkpoint per block took 3.7 s more of 12 for 6.8M order lines, and
# what waits in the write-ahead log until the next one is a few hundred MiB at most.
CHECKPOINT_ROWS = 1 << 20


def _staged_blocks(
    conn: duckdb.DuckDBPyConnection, schema: str, name: str, blocks: Iterable[pd.DataFrame]
) -> int:
    """Write the blocks into ``schema._staging_<name>``, one commit per block; return the rows.

    A commit per block because DuckDB keeps every row inserted into an uncommitted table in
    memory until the commit, whatever its memory limit (0.14 GiB per million order lines); and a
    checkpoint every ``CHECKPOINT_ROWS``, which writes the rows to the file: otherwise they wait
    in the write-ahead log, and the checkpoint at closing took 0.3 GiB more at 1M customers.
    """
    rows = None
    unchecked = 0
    for block in blocks:
        conn.register("_frame", scannable(block))
        conn.execute(
            f"create or replace table {qualified(schema, _staging(name))} as {_select_frame(block)}"
            if rows is None
            else f"insert into {qualified(schema, _staging(name))} {_select_frame(block)}"
        )
        conn.unregister("_frame")
        rows = (rows or 0) + len(block)
        unchecked += len(block)
        if unchecked >= CHECKPOINT_ROWS:
            conn.execute("checkpoint")
            unchecked = 0
    if rows is None:
        raise ValueError(
            f"{schema}.{name}: no blocks of rows to write (an empty table is one empty block)"
        )
    if unchecked:
        conn.execute("checkpoint")
    return rows


def scannable(frame: pd.DataFrame) -> pd.DataFrame | pa.Table:
    """The frame as DuckDB scans it fastest: an Arrow table (zero-copy for pandas' Arrow-backed
    columns), which DuckDB reads on every thread; pandas' text it reads one Python string at a
    time (the simulator's 6.8M order lines and 1M customers: 16 s to 11.5 s; a model's 1M rows:
    0.8 s to 0.45 s). The same column types either way. A frame with ``object`` columns (mixed
    values Arrow may refuse) is scanned as it is."""
    if any(pd.api.types.is_object_dtype(dtype) for dtype in frame.dtypes):
        return frame
    return pa.Table.from_pandas(frame, preserve_index=False)


def _select_frame(frame: pd.DataFrame) -> str:
    """Select a registered frame, storing ``as_of_date`` as a DATE (pandas only has timestamps)."""
    if "as_of_date" in frame.columns:
        return "select * replace (cast(as_of_date as date) as as_of_date) from _frame"
    return "select * from _frame"


def table_columns(
    conn: duckdb.DuckDBPyConnection, schema: str, table: str
) -> list[tuple[str, str]]:
    """(column name, DuckDB type) of a table, in column order."""
    # duckdb_columns() rather than information_schema.columns: the same rows in half the time
    # (12 vs 28 ms on the warehouse), and a refresh asks about 100 times.
    rows = conn.execute(
        "select column_name, data_type from duckdb_columns() "
        "where database_name = current_database() and schema_name = ? and table_name = ? "
        "order by column_index",
        [schema, table],
    ).fetchall()
    return [(name, dtype) for name, dtype in rows]


def read_table(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    columns: list[str],
    order_by: str = "customer_code",
) -> pd.DataFrame:
    """Selected columns of a table, as a DataFrame in a fixed row order.

    DuckDB scans in parallel, so without an order the rows come back shuffled from run to run;
    models that sample rows must see the same order to give the same answer.
    """
    select = ", ".join(quote_ident(c) for c in columns)
    return conn.execute(
        f"select {select} from {qualified(schema, table)} order by {quote_ident(order_by)}"
    ).df()


def table_exists(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether the warehouse has this table (a table, not a view)."""
    (n,) = conn.execute(
        "select count(*) from duckdb_tables() "
        "where database_name = current_database() and schema_name = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return n > 0


def quote_literal(value: str) -> str:
    """A SQL string literal, for the few statements (ATTACH, COPY) that take no parameters."""
    return "'" + value.replace("'", "''") + "'"


def list_tables(conn: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    """The tables and views of ``schema``: a model's materialization does not decide whether it
    is published (marts.fact_sales is a view of the priced order lines; the snapshot copies it
    as a table)."""
    rows = conn.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? and table_type in ('BASE TABLE', 'VIEW') order by table_name",
        [schema],
    ).fetchall()
    return [name for (name,) in rows]


def _bi_column(name: str, dtype: str) -> str:
    """A column as BI tools can read it: DuckDB sums integers into 128-bit HUGEINTs, which many
    BI drivers and Parquet readers reject; counts and quantities fit a BIGINT."""
    if dtype in ("HUGEINT", "UHUGEINT"):
        return f"cast({quote_ident(name)} as bigint) as {quote_ident(name)}"
    return quote_ident(name)


def export_tables(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    columns_by_table: Mapping[str, list[str]],
    target_database: str,
    parquet_dir: str,
    as_of,
) -> dict[str, int]:
    """Copy the given columns of ``schema.<table>`` into a new DuckDB file (same schema and
    names) and into one Parquet file per table; return the row counts.

    Tables with an ``as_of_date`` column keep history across refreshes; only the rows up to
    ``as_of`` are exported, so the snapshot of a backfill holds nothing from later refreshes.

    Rows are written sorted on every column (``order by all``): the warehouse tables come from
    parallel queries whose row order changes from run to run, and a fixed order makes identical
    refreshes write byte-identical files. Each table is sorted once, into the snapshot file;
    the Parquet file is copied from there, which keeps that order. When the first column is a
    key (no duplicates, no nulls: most marts start with theirs) the rows are sorted by it alone,
    which is the same order for a fraction of the cost on wide tables.
    """
    alias = "snapshot"
    conn.execute(f"attach {quote_literal(target_database)} as {alias}")
    # Each Parquet file is written (on a thread, its own connection) while the next table is
    # sorted: the same bytes, 0.3 s less of a 2 s export at 20,000 customers.
    copier = conn.cursor()
    copies = []
    try:
        # leaving this block waits for every copy, after an error too
        with ThreadPoolExecutor(max_workers=1) as background:
            conn.execute(f"create schema {alias}.{quote_ident(schema)}")
            counts = {}
            for table, columns in columns_by_table.items():
                target = f"{alias}.{qualified(schema, table)}"
                conn.execute(_sorted_copy(conn, schema, table, columns, target, as_of))
                parquet = quote_literal(f"{parquet_dir}/{table}.parquet")
                copies.append(
                    background.submit(
                        copier.execute, f"copy {target} to {parquet} (format parquet)"
                    )
                )
                (counts[table],) = conn.execute(f"select count(*) from {target}").fetchone()
        for copied in copies:
            copied.result()  # a failed copy raises here
        return counts
    finally:
        copier.close()
        conn.execute(f"detach {alias}")


def _sorted_copy(
    conn: duckdb.DuckDBPyConnection, schema: str, table: str, columns: list[str], target: str, as_of
) -> str:
    """The CREATE TABLE of ``export_tables``' sorted copy of ``schema.table`` as ``target``."""
    types = dict(table_columns(conn, schema, table))
    select = ", ".join(_bi_column(c, types[c]) for c in columns)
    source = qualified(schema, table)
    where = ""
    if "as_of_date" in columns:
        where = f" where as_of_date <= cast({quote_literal(as_of.isoformat())} as date)"
    (is_key,) = conn.execute(
        f"select count(*) = count(distinct {quote_ident(columns[0])}) from {source}{where}"
    ).fetchone()
    order = "1" if is_key else "all"
    return f"create table {target} as select {select} from {source}{where} order by {order}"


def append_run_failure(
    conn: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    job_name: str,
    as_of: str | None,
    failed_at,
    failed_steps: str,
    message: str,
) -> None:
    """One row in ops.run_failures per failed run (re-recording a run replaces its row)."""
    conn.execute("create schema if not exists ops")
    conn.execute(
        "create table if not exists ops.run_failures (run_id string primary key, job_name string, "
        "as_of_date string, failed_at timestamptz, failed_steps string, message string)"
    )
    conn.execute(
        "insert or replace into ops.run_failures values (?, ?, ?, ?, ?, ?)",
        [run_id, job_name, as_of, failed_at, failed_steps, message],
    )


def replace_as_of_rows(
    conn: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pd.DataFrame, as_of
) -> int:
    """Keep one set of rows per as-of date in a history table: replace this date's rows (so a
    re-run is idempotent), keep the others. ``frame`` must carry an ``as_of_date`` column."""
    target = qualified(schema, table)
    select = _select_frame(frame)
    # The empty table is created (and committed) before the rows go in: DuckDB 2.0 loses the
    # statistics of a table created and filled with more than one row group (122,880 rows) in
    # one transaction, so that count(*), min() and filters on it read nothing until the file
    # is reopened (every customer's cluster, read back by the same refresh, hit this).
    conn.execute(f"create schema if not exists {quote_ident(schema)}")
    conn.register("_frame", scannable(frame))
    conn.execute(f"create table if not exists {target} as {select} limit 0")
    conn.execute("begin transaction")
    try:
        # a newer release may add columns: older rows get NULL in them
        existing = {name for name, _ in table_columns(conn, schema, table)}
        relation = conn.sql(select)
        for name, dtype in zip(relation.columns, relation.types):
            if name not in existing:
                conn.execute(f"alter table {target} add column {quote_ident(name)} {dtype}")
        conn.execute(f"delete from {target} where as_of_date = ?", [as_of])
        conn.execute(f"insert into {target} by name {select}")
        conn.unregister("_frame")
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return len(frame)


def previous_as_of(conn: duckdb.DuckDBPyConnection, schema: str, table: str, as_of):
    """The latest as-of date before ``as_of`` in a history table, or None."""
    if not table_exists(conn, schema, table):
        return None
    (value,) = conn.execute(
        f"select max(as_of_date) from {qualified(schema, table)} where as_of_date < ?", [as_of]
    ).fetchone()
    return value


def read_as_of_rows(
    conn: duckdb.DuckDBPyConnection, schema: str, table: str, as_of
) -> pd.DataFrame:
    return conn.execute(
        f"select * from {qualified(schema, table)} where as_of_date = ? order by all", [as_of]
    ).df()

"""The SQL Python assets run on the warehouse, kept in one place so engine-specific code is
visible and swappable. Identifiers are always quoted; values are always bound parameters."""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd


def quote_ident(name: str) -> str:
    """Quote a SQL identifier for DuckDB (doubling embedded quotes)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def replace_tables(
    conn: duckdb.DuckDBPyConnection, schema: str, frames: Mapping[str, pd.DataFrame]
) -> dict[str, int]:
    """Replace ``schema.<name>`` with each frame, all or nothing, and return the row counts.

    One transaction, so a failure half way leaves the previous tables in place.
    """
    conn.execute("begin transaction")
    try:
        conn.execute(f"create schema if not exists {quote_ident(schema)}")
        counts = {}
        for name, frame in frames.items():
            conn.register("_frame", frame)
            conn.execute(f"create or replace table {qualified(schema, name)} as select * from _frame")
            conn.unregister("_frame")
            counts[name] = len(frame)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return counts


def table_columns(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    """(column name, DuckDB type) of a table, in column order."""
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return [(name, dtype) for name, dtype in rows]


def read_table(conn: duckdb.DuckDBPyConnection, schema: str, table: str, columns: list[str]) -> pd.DataFrame:
    """Selected columns of a table, as a DataFrame."""
    select = ", ".join(quote_ident(c) for c in columns)
    return conn.execute(f"select {select} from {qualified(schema, table)}").df()


def table_exists(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    (n,) = conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return n > 0


def quote_literal(value: str) -> str:
    """A SQL string literal, for the few statements (ATTACH, COPY) that take no parameters."""
    return "'" + value.replace("'", "''") + "'"


def list_tables(conn: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = conn.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? and table_type = 'BASE TABLE' order by table_name",
        [schema],
    ).fetchall()
    return [name for (name,) in rows]


def export_tables(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    columns_by_table: Mapping[str, list[str]],
    target_database: str,
    parquet_dir: str,
) -> dict[str, int]:
    """Copy the given columns of ``schema.<table>`` into a new DuckDB file (same schema and
    names) and into one Parquet file per table; return the row counts."""
    alias = "snapshot"
    conn.execute(f"attach {quote_literal(target_database)} as {alias}")
    try:
        conn.execute(f"create schema {alias}.{quote_ident(schema)}")
        counts = {}
        for table, columns in columns_by_table.items():
            select = ", ".join(quote_ident(c) for c in columns)
            source = qualified(schema, table)
            target = f"{alias}.{qualified(schema, table)}"
            conn.execute(f"create table {target} as select {select} from {source}")
            parquet = quote_literal(f"{parquet_dir}/{table}.parquet")
            conn.execute(f"copy {target} to {parquet} (format parquet)")
            (counts[table],) = conn.execute(f"select count(*) from {target}").fetchone()
        return counts
    finally:
        conn.execute(f"detach {alias}")


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

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

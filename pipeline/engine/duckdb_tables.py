"""The table store over the DuckDB warehouse: each method is the ``pipeline.warehouse`` function
the assets called before there was a second engine, so DuckDB runs the same SQL as before."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import duckdb
import pandas as pd

from pipeline import warehouse

# Rows per batch of ``map_batches``: DuckDB hands results over in vectors of 2,048 rows.
BATCH_VECTORS = 64  # 131,072 rows


class DuckDBTables:
    engine = "duckdb"

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn = conn

    def query(self, sql: str, params: Sequence | None = None) -> pd.DataFrame:
        """A query in the SQL both engines read (see reference/sql-portability.md)."""
        return self.conn.execute(sql, params or []).df()

    def map_batches(
        self,
        sql: str,
        fn: Callable[[pd.DataFrame], pd.DataFrame],
        schema: Mapping[str, str],
        params: Sequence | None = None,
        order_by: str | None = None,
    ) -> pd.DataFrame:
        """``fn`` over the query's rows, batch by batch, in process (the rows in the query's
        order, so the result is the same on every run); the batches' results concatenated.
        ``schema`` (column -> Spark SQL type) is what Spark needs; DuckDB keeps ``fn``'s types.
        ``order_by`` fixes the batches (and so the result's row order) on every run."""
        if order_by is not None:
            sql = f"{sql} order by {warehouse.quote_ident(order_by)}"
        result = self.conn.execute(sql, params or [])
        parts = []
        while True:
            batch = result.fetch_df_chunk(BATCH_VECTORS)
            if batch.empty and parts:
                break
            parts.append(fn(batch))
            if batch.empty:
                break
        return pd.concat(parts, ignore_index=True)[list(schema)]

    def sum_batches(
        self,
        sql: str,
        fn: Callable[[pd.DataFrame], pd.DataFrame],
        schema: Mapping[str, str],
        by: Sequence[str],
        params: Sequence | None = None,
        order_by: str | None = None,
    ) -> pd.DataFrame:
        """``fn`` gives each batch's partial sums per key ``by``; their totals per key, sorted
        (a small frame: one row per key)."""
        parts = self.map_batches(sql, fn, schema, params, order_by)
        return parts.groupby(list(by), sort=True).sum().reset_index()[list(schema)]

    def read_table(
        self,
        schema: str,
        table: str,
        columns: list[str] | None = None,
        order_by: str = "customer_code",
    ) -> pd.DataFrame:
        if columns is None:
            return self.conn.execute(
                f"select * from {warehouse.qualified(schema, table)} "
                f"order by {warehouse.quote_ident(order_by)}"
            ).df()
        return warehouse.read_table(self.conn, schema, table, columns, order_by=order_by)

    def replace_tables(self, schema: str, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
        return warehouse.replace_tables(self.conn, schema, frames)

    def replace_table_with_query(self, schema: str, table: str, sql: str) -> int:
        """Replace ``schema.table`` with a portable query's rows, inside the warehouse (one
        statement, so readers see the old table or the new one); return its rows."""
        self.conn.execute(f"create schema if not exists {warehouse.quote_ident(schema)}")
        self.conn.execute(f"create or replace table {warehouse.qualified(schema, table)} as {sql}")
        return self.row_count(warehouse.qualified(schema, table))

    def replace_as_of_rows(self, schema: str, table: str, frame: pd.DataFrame, as_of) -> int:
        return warehouse.replace_as_of_rows(self.conn, schema, table, frame, as_of)

    def read_as_of_rows(self, schema: str, table: str, as_of) -> pd.DataFrame:
        return warehouse.read_as_of_rows(self.conn, schema, table, as_of)

    def previous_as_of(self, schema: str, table: str, as_of):
        return warehouse.previous_as_of(self.conn, schema, table, as_of)

    def table_exists(self, schema: str, table: str) -> bool:
        return warehouse.table_exists(self.conn, schema, table)

    def table_columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        return warehouse.table_columns(self.conn, schema, table)

    def add_missing_columns(self, schema: str, table: str, frame: pd.DataFrame) -> None:
        """Add the frame's columns an existing table lacks (a history table whose rows gain a
        column, e.g. one per cluster feature), typed as DuckDB reads the frame."""
        if not warehouse.table_exists(self.conn, schema, table):
            return
        have = {name for name, _ in warehouse.table_columns(self.conn, schema, table)}
        missing = [c for c in frame.columns if c not in have]
        if missing:
            self.conn.register("_new_columns", warehouse.scannable(frame))
            types = dict(
                self.conn.execute(
                    "select column_name, column_type from (describe _new_columns)"
                ).fetchall()
            )
            self.conn.unregister("_new_columns")
            for column in missing:
                self.conn.execute(
                    f"alter table {warehouse.qualified(schema, table)} "
                    f"add column {warehouse.quote_ident(column)} {types[column]}"
                )

    def publish(self, serve_dir, **kwargs):
        """The BI snapshot of the marts (``pipeline.publish.snapshot``)."""
        from pipeline.publish import snapshot

        return snapshot.publish(self.conn, serve_dir, **kwargs)

    @contextmanager
    def marts_reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection that reads ``marts.*`` (the dashboard's input)."""
        yield self.conn

    def row_count(self, relation_name: str) -> int:
        (rows,) = self.conn.execute(f"select count(*) from {relation_name}").fetchone()
        return rows

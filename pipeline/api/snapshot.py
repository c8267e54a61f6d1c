"""Read the published BI snapshot (``<data_dir>/serve/current``), read-only, never the warehouse.

Consistency across snapshot swaps: every request resolves the ``current`` link again (one
readlink). The store keeps one read-only DuckDB connection per build it has seen; when the link
points at a new build, the next request opens that build and the old connection is retired: it
is closed only when the last request still using it finishes, so a request in flight finishes
on the snapshot it started on (its file handle survives the swap and even the pruning of the old
build), and every request that starts after the swap sees the new one, without a restart.

Each request reads through its own cursor of the build's connection (DuckDB connections are not
shared between threads). Every column the API exposes is listed here; user input only ever
reaches the SQL as bound parameters, and identifiers come from these lists, never from a request.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import duckdb

from pipeline.publish import snapshot as published
from pipeline.warehouse import quote_ident as q

SCHEMA = published.PUBLISHED_SCHEMA

# BI-safe columns of customer_single_view exposed by the API (the masked email stays out too).
CUSTOMER_COLUMNS = (
    "customer_code",
    "platform",
    "channel",
    "market",
    "sub_zone",
    "region",
    "city",
    "occupation",
    "age_band",
    "has_orders",
    "first_order_date",
    "last_order_date",
    "order_count",
    "days_since_last_order",
    "total_net_sales",
    "total_gross_margin",
    "avg_order_net_sales",
    "avg_order_gross_margin",
    "frequency",
    "recency",
    "t",
    "r_score",
    "f_score",
    "m_score",
    "rfm_cell",
    "segment",
    "is_pareto",
    "top_category",
    "top_category_share",
    "suggested_action",
    "p_alive",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_order_value",
    "clv_12m",
    "value_tier",
    "cluster_id",
    "cluster_name",
    "next_best_category",
    "next_best_category_score",
    "suggested_discount_pct",
    "discount_reason",
    "as_of_date",
)
HISTORY_COLUMNS = (
    "as_of_date",
    "r_score",
    "f_score",
    "m_score",
    "segment",
    "is_pareto",
    "order_count",
    "days_since_last_order",
    "total_net_sales",
    "total_gross_margin",
    "p_alive",
    "clv_12m",
    "value_tier",
    "cluster_id",
    "cluster_name",
)
SEGMENT_COLUMNS = (
    "priority",
    "segment",
    "customers",
    "customer_share",
    "net_sales",
    "net_sales_share",
    "gross_margin",
    "avg_days_since_last_order",
    "avg_order_count",
    "avg_net_sales",
    "avg_r_score",
    "avg_f_score",
    "avg_m_score",
    "pareto_customers",
    "suggested_action",
    "as_of_date",
)
CLUSTER_COLUMNS = (
    "as_of_date",
    "cluster_id",
    "name",
    "customers",
    "customer_share",
    "revenue",
    "revenue_share",
    "order_count_mean",
    "order_count_median",
    "days_since_last_order_mean",
    "days_since_last_order_median",
    "tenure_days_mean",
    "tenure_days_median",
    "avg_order_net_sales_mean",
    "avg_order_net_sales_median",
    "total_net_sales_mean",
    "total_net_sales_median",
    "margin_rate_mean",
    "margin_rate_median",
    "top_segment",
    "top_segment_share",
    "top_segments",
    "dominant_rfm_segment",
    "dominant_rfm_segment_share",
)
MODEL_PARAMETER_COLUMNS = (
    "as_of_date",
    "model",
    "r",
    "alpha",
    "a",
    "b",
    "p",
    "q",
    "v",
    "penalizer",
    "log_likelihood",
    "n_customers",
    "n_rows",
    "converged",
    "spend_column",
    "frequency_spend_correlation",
    "population_mean_spend",
    "population_mean_defined",
    "time_unit",
)
EVALUATION_COLUMNS = ("as_of_date", "model_family", "evaluation", "metric", "model", "value")

# sort name -> (column, SQL type of its cursor value); "-name" sorts descending. Ties and the
# keyset are broken by customer_code, which is unique, so the order is total and stable.
SORTS = {
    "customer_code": ("customer_code", "varchar"),
    "clv_12m": ("clv_12m", "double"),
    "total_net_sales": ("total_net_sales", "decimal(38, 4)"),
    "order_count": ("order_count", "hugeint"),
    "days_since_last_order": ("days_since_last_order", "bigint"),
    "p_alive": ("p_alive", "double"),
    "last_order_date": ("last_order_date", "date"),
}
MAX_LIMIT = 500


class SnapshotUnavailable(Exception):
    """No snapshot has been published yet (or it cannot be opened)."""


class BadRequest(ValueError):
    """A parameter the API cannot use; the message says why (HTTP 422)."""


@dataclass
class _Build:
    path: Path
    conn: duckdb.DuckDBPyConnection
    manifest: published.Manifest
    columns: dict[str, set[str]]
    users: int = 0
    retired: bool = False


@dataclass
class Reader:
    """One request's view of one snapshot."""

    cursor: duckdb.DuckDBPyConnection
    manifest: published.Manifest
    columns: dict[str, set[str]] = field(repr=False)

    def select_list(self, table: str, wanted: tuple[str, ...]) -> list[str]:
        """The wanted columns the snapshot has (an older snapshot may lack a newer column)."""
        have = self.columns.get(table, set())
        return [c for c in wanted if c in have]

    def rows(self, sql: str, params: list | None = None) -> list[dict[str, Any]]:
        result = self.cursor.execute(sql, params or [])
        names = [d[0] for d in result.description]
        return [{n: _json_value(v) for n, v in zip(names, row)} for row in result.fetchall()]


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class SnapshotStore:
    def __init__(self, serve_dir: Path):
        self.serve_dir = Path(serve_dir)
        self._lock = threading.Lock()
        self._build: _Build | None = None

    def _current_build(self) -> Path:
        link = self.serve_dir / published.CURRENT_LINK
        try:
            return link.resolve(strict=True)
        except (FileNotFoundError, RuntimeError):
            raise SnapshotUnavailable(
                f"no snapshot published yet at {link}; run a refresh"
            ) from None

    def _open(self, path: Path) -> _Build:
        try:
            manifest = published.Manifest.read(path / published.MANIFEST_FILE)
            conn = duckdb.connect(str(path / published.SNAPSHOT_FILE), read_only=True)
        except (OSError, ValueError, TypeError, duckdb.Error) as error:
            raise SnapshotUnavailable(
                f"the snapshot {path.name} cannot be opened: {error}"
            ) from None
        columns: dict[str, set[str]] = {}
        for table, column in conn.execute(
            "select table_name, column_name from information_schema.columns where table_schema = ?",
            [SCHEMA],
        ).fetchall():
            columns.setdefault(table, set()).add(column)
        return _Build(path, conn, manifest, columns)

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        path = self._current_build()
        with self._lock:
            if self._build is None or self._build.path != path:
                fresh = self._open(path)
                old, self._build = self._build, fresh
                if old is not None:
                    old.retired = True
                    if old.users == 0:
                        old.conn.close()
            build = self._build
            build.users += 1
            cursor = build.conn.cursor()
        try:
            yield Reader(cursor, build.manifest, build.columns)
        finally:
            cursor.close()
            with self._lock:
                build.users -= 1
                if build.retired and build.users == 0:
                    build.conn.close()

    def close(self) -> None:
        with self._lock:
            if self._build is not None:
                self._build.retired = True
                if self._build.users == 0:
                    self._build.conn.close()
                self._build = None


def _table(name: str) -> str:
    return f"{q(SCHEMA)}.{q(name)}"


def _columns_sql(columns: list[str]) -> str:
    return ", ".join(q(c) for c in columns)


def customer(reader: Reader, code: str) -> dict[str, Any] | None:
    columns = reader.select_list("customer_single_view", CUSTOMER_COLUMNS)
    found = reader.rows(
        f"select {_columns_sql(columns)} from {_table('customer_single_view')} where customer_code = ?",
        [code],
    )
    if not found:
        return None
    history_columns = reader.select_list("customer_segment_history", HISTORY_COLUMNS)
    history = (
        reader.rows(
            f"select {_columns_sql(history_columns)} from {_table('customer_segment_history')} "
            "where customer_code = ? order by as_of_date",
            [code],
        )
        if history_columns
        else []
    )
    return {**found[0], "history": history}


def encode_cursor(sort: str, value: Any, code: str) -> str:
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    raw = json.dumps({"s": sort, "v": value, "c": code}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, code, made_for = data["v"], data["c"], data["s"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise BadRequest(
            "cursor is not a cursor returned by this API (pass next_cursor as is)"
        ) from None
    if made_for != sort or not isinstance(code, str):
        raise BadRequest(f"cursor was made for sort={made_for!r}; repeat the same sort to page on")
    return value, code


def list_customers(
    reader: Reader,
    *,
    segment: str | None = None,
    tier: str | None = None,
    cluster: int | None = None,
    market: str | None = None,
    min_clv: float | None = None,
    sort: str = "customer_code",
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of customers, keyset-paginated on (sort column, customer_code): nulls last, ties
    by customer_code ascending, so pages never repeat or skip a customer of one snapshot."""
    descending = sort.startswith("-")
    name = sort[1:] if descending else sort
    if name not in SORTS:
        allowed = ", ".join(sorted(SORTS))
        raise BadRequest(
            f"sort={sort!r} is not allowed; use one of {allowed} (prefix '-' for descending)"
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    column, sql_type = SORTS[name]
    where, params = [], []
    for value, col in (
        (segment, "segment"),
        (tier, "value_tier"),
        (cluster, "cluster_id"),
        (market, "market"),
    ):
        if value is not None:
            where.append(f"{q(col)} = ?")
            params.append(value)
    if min_clv is not None:
        where.append(f"{q('clv_12m')} >= ?")
        params.append(min_clv)
    col = q(column)
    if cursor is not None:
        value, code = decode_cursor(cursor, sort)
        if column == "customer_code":
            where.append(f"customer_code {'<' if descending else '>'} ?")
            params.append(code)
        elif value is None:  # the previous page ended among the nulls (sorted last)
            where.append(f"{col} is null and customer_code > ?")
            params.append(code)
        else:
            cmp = "<" if descending else ">"
            where.append(
                f"({col} is null or {col} {cmp} cast(? as {sql_type}) "
                f"or ({col} = cast(? as {sql_type}) and customer_code > ?))"
            )
            params += [value, value, code]
    direction = "desc" if descending else "asc"
    order = (
        f"customer_code {direction}"
        if column == "customer_code"
        else f"{col} {direction} nulls last, customer_code asc"
    )
    columns = reader.select_list("customer_single_view", CUSTOMER_COLUMNS)
    sql = (
        f"select {_columns_sql(columns)} from {_table('customer_single_view')}"
        f"{' where ' + ' and '.join(where) if where else ''} order by {order} limit ?"
    )
    try:
        rows = reader.rows(sql, params + [limit + 1])
    except duckdb.ConversionException:
        raise BadRequest("cursor does not match this sort (pass next_cursor as is)") from None
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        encode_cursor(sort, rows[-1].get(column), rows[-1]["customer_code"]) if more else None
    )
    return {"items": rows, "next_cursor": next_cursor, "limit": limit, "sort": sort}


def segments(reader: Reader) -> list[dict[str, Any]]:
    columns = reader.select_list("customer_segment_summary", SEGMENT_COLUMNS)
    return reader.rows(
        f"select {_columns_sql(columns)} from {_table('customer_segment_summary')} order by priority, segment"
    )


def _latest(
    reader: Reader, table: str, wanted: tuple[str, ...], order: str
) -> list[dict[str, Any]]:
    columns = reader.select_list(table, wanted)
    if not columns:
        return []
    return reader.rows(
        f"select {_columns_sql(columns)} from {_table(table)} "
        f"where as_of_date = (select max(as_of_date) from {_table(table)}) order by {order}"
    )


def clusters(reader: Reader) -> list[dict[str, Any]]:
    return _latest(reader, "cluster_profiles", CLUSTER_COLUMNS, "cluster_id")


def model(reader: Reader) -> dict[str, Any]:
    return {
        "parameters": _latest(reader, "cltv_model_parameters", MODEL_PARAMETER_COLUMNS, "model"),
        "evaluation": _latest(
            reader,
            "model_evaluation",
            EVALUATION_COLUMNS,
            "model_family, evaluation, metric, model",
        ),
    }

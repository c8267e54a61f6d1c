"""The Dagster instance of the CLI (``make run``), with an event log that keeps up with dbt.

A refresh records about 900 events (every dbt node and test, planned and done). Dagster's
default SQLite event log opens a new connection for each one and commits it with a disk flush,
in the run's database and again in the cross-run index, then closes the connection, which
checkpoints the write-ahead log: at 20,000 customers that was over a third of the refresh's
wall time. ``QuickSqliteEventLogStorage`` writes the same files with the same schema, so
``make ui`` and every other reader of the instance see the same runs, but keeps one connection
per database open for the process and commits in WAL mode with ``synchronous=NORMAL``: a commit
is durable once the next checkpoint has run, and a crash of the process loses nothing (only
power loss can lose the last events, never corrupt the database).

It replaces only Dagster's default storage: an instance whose dagster.yaml names its own storage
(Postgres, say) is opened as configured.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import sqlalchemy as db
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import _event_logs_directory

STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage")


class QuickSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log with pooled connections and unflushed WAL commits."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: dict[str, db.engine.Engine] = {}
        self._engines_lock = threading.Lock()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> QuickSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> db.engine.Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is None:
                # the default pool for a SQLite file: connections stay open between events
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                db.event.listen(engine, "connect", _no_flush_per_commit)
                self._engines[shard] = engine
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.engine.Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        # asked once per check event; the base class builds an engine for each question
        engine = self._engine(INDEX_SHARD_NAME)
        with engine.connect() as conn:
            return bool(engine.dialect.has_table(conn, table_name))

    def dispose(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        super().dispose()


def _no_flush_per_commit(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_instance(home: Path) -> dg.DagsterInstance:
    """The instance in ``home`` (its dagster.yaml applies), with the quick event log in place of
    Dagster's default one, in the same files."""
    config, _ = dagster_instance_config(str(home))
    overrides = {}
    if not any(config.get(key) for key in STORAGE_KEYS):
        overrides["event_log_storage"] = {
            "module": __name__,
            "class": QuickSqliteEventLogStorage.__name__,
            "config": {"base_dir": _event_logs_directory(str(home))},
        }
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))

"""Retry the step when DuckDB's file lock is held by another process, and only then: a real
failure (a bad row, a failed test) must fail at once, not three times."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

# DuckDB: "Could not set lock on file ... Conflicting lock is held in ..." (Python and dbt alike).
LOCK_MESSAGES = ("Conflicting lock", "Could not set lock on file")
LOCK_RETRIES = 3
LOCK_RETRY_SECONDS = 30


def is_lock_error(error: BaseException) -> bool:
    return any(message in str(error) for message in LOCK_MESSAGES)


@contextmanager
def retry_on_duckdb_lock() -> Iterator[None]:
    """Turn a DuckDB lock conflict into a Dagster retry of the step, after a pause."""
    try:
        yield
    except Exception as error:
        if is_lock_error(error):
            raise dg.RetryRequested(
                max_retries=LOCK_RETRIES, seconds_to_wait=LOCK_RETRY_SECONDS
            ) from error
        raise

"""A BI reader, run as its own process by the tests: it opens the published snapshot read-only
again and again while refreshes run, and checks each snapshot against its own manifest.

    python -m tests.snapshot_reader <serve_dir> <stop_file> <result_json>
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb


def read_once(snapshot: Path) -> str:
    """Open, verify every table's row count against the snapshot's manifest, return its build id."""
    with duckdb.connect(str(snapshot), read_only=True) as conn:
        manifest = conn.execute(
            "select table_name, row_count, build_id from main.snapshot_manifest"
        ).fetchall()
        if not manifest:
            raise AssertionError("empty manifest")
        for table, expected, _ in manifest:
            (actual,) = conn.execute(f"select count(*) from {table}").fetchone()
            if actual != expected:
                raise AssertionError(f"{table}: {actual} rows, manifest says {expected}")
        return manifest[0][2]


def main(serve_dir: str, stop_file: str, result_json: str) -> None:
    snapshot = Path(serve_dir) / "current" / "customer_analytics.duckdb"
    builds, errors, reads = [], [], 0
    while True:
        # read once more after the stop signal, so the last published snapshot is seen too
        stopping = Path(stop_file).exists()
        try:
            build = read_once(snapshot)
            reads += 1
            if not builds or builds[-1] != build:
                builds.append(build)
        except Exception as error:  # the test asserts there are none
            errors.append(f"{type(error).__name__}: {error}")
        if stopping:
            break
        time.sleep(0.05)
    Path(result_json).write_text(json.dumps({"builds": builds, "errors": errors, "reads": reads}))


if __name__ == "__main__":
    main(*sys.argv[1:4])

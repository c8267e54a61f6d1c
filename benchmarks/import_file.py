"""Wall time and peak RSS of the file import on one large transactions CSV, run by hand:

    .venv/bin/python -m benchmarks.import_file --mb 200 [--memory-limit 192MB] [--keep DIR]

Writes a CSV of about ``--mb`` MB (customer_id, order_date, amount; DuckDB's COPY, in a separate
process so its memory is not counted), then imports it into a fresh warehouse in this process
and prints the wall time of ``run_import`` and the process's peak RSS (ru_maxrss). For the peak
of the whole command, run it under ``/usr/bin/time -v``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BYTES_PER_ROW = 27  # "C0001234,2024-05-17,123.45\n" is 27 bytes; amounts vary in length


def write_csv(path: Path, mb: int) -> None:
    rows = mb * 1_000_000 // BYTES_PER_ROW
    script = f"""
import duckdb
duckdb.sql('set enable_progress_bar = false')  # no bars in the bench's output
duckdb.sql('''copy (select 'C' || lpad(cast(i % 2000000 as varchar), 7, '0') as customer_id,
    cast(date '2021-09-01' + cast(hash(i) % 1800 as integer) as varchar) as order_date,
    cast(round(1 + (hash(i * 7) % 50000) / 100.0, 2) as varchar) as amount
    from range({rows}) as t(i)) to '{path}' (header, delimiter ',')''')
"""
    subprocess.run([sys.executable, "-c", script], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_file")
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--memory-limit", default="192MB")
    parser.add_argument("--keep", type=Path, help="folder to work in (default: a temporary one)")
    args = parser.parse_args(argv)

    import duckdb

    from pipeline.ingest import ImportConfig, run_import

    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        work = args.keep or Path(tmp)
        folder = work / "import"
        folder.mkdir(parents=True, exist_ok=True)
        csv = folder / "transactions_big.csv"
        if not csv.exists():
            write_csv(csv, args.mb)
        size = csv.stat().st_size
        warehouse = work / "warehouse.duckdb"
        warehouse.unlink(missing_ok=True)
        config = ImportConfig(
            directory=folder,
            as_of=dt.date(2026, 11, 24),
            layout="transactions",
            memory_limit=args.memory_limit,
        )
        started = time.perf_counter()
        with duckdb.connect(str(warehouse)) as conn:
            report = run_import(conn, config)
        wall = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(
            f"file: {size / 1e6:.1f} MB, {report.input_rows:,} rows, {report.loaded_rows:,} loaded"
        )
        print(f"memory_limit: {args.memory_limit}")
        print(f"import wall time: {wall:.1f} s")
        print(f"peak RSS of this process: {peak / 2**20:.0f} MiB ({peak / size:.2f} x the file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

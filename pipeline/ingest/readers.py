"""Read one input file into a DuckDB temp table of text columns, streaming through DuckDB's own
readers (read_csv / read_parquet); nothing is loaded into pandas. Every value stays text so the
validation decides what is a date or a number, and every row keeps its position in the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from pipeline.ingest.config import CsvOptions, FileImportError
from pipeline.warehouse import quote_ident, quote_literal

FILE_TABLE = "_import_file"  # temp table holding the file being staged


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_file(conn: duckdb.DuckDBPyConnection, path: Path, csv: CsvOptions) -> list[str]:
    """Load ``path`` into the temp table ``_import_file`` (all text, in file order: rowid 0 is
    the first data row) and return its column names."""
    if path.stat().st_size == 0:
        raise FileImportError(f"{path.name}: the file is empty (0 bytes)")
    if path.suffix.lower() == ".parquet":
        source = f"read_parquet({quote_literal(str(path))})"
    else:
        source = (
            f"read_csv({quote_literal(str(path))}, delim={quote_literal(csv.delimiter)}, "
            f"header={'true' if csv.header else 'false'}, encoding={quote_literal(csv.encoding)}, "
            "all_varchar=true, null_padding=true)"
        )
    try:
        conn.execute(f"create or replace temp table {FILE_TABLE} as select * from {source}")
        columns = [row[0] for row in conn.execute(f"describe {FILE_TABLE}").fetchall()]
        if path.suffix.lower() == ".parquet":
            # Parquet carries types: turn every column to text like a CSV (dates become ISO text)
            select = ", ".join(f"cast({quote_ident(c)} as varchar) as {quote_ident(c)}" for c in columns)
            conn.execute(f"create or replace temp table {FILE_TABLE} as select {select} from {FILE_TABLE} order by rowid")
    except duckdb.Error as error:
        raise FileImportError(_readable(path, csv, error)) from None
    return columns


def _readable(path: Path, csv: CsvOptions, error: duckdb.Error) -> str:
    text = str(error)
    if "unicode" in text.lower() or "encod" in text.lower():
        return (
            f"{path.name}: is not valid {csv.encoding} text; set PIPELINE_IMPORT_CSV_ENCODING "
            "to the file's encoding (utf-8, utf-16 or latin-1)"
        )
    where = next((line.strip() for line in text.splitlines() if line.strip().startswith("CSV Error on Line")), "")
    detail = next((line.strip() for line in text.splitlines()[1:] if line.strip() and not line.startswith("Original Line")), "")
    kind = "Parquet" if path.suffix.lower() == ".parquet" else "CSV"
    first = text.splitlines()[0] if text else type(error).__name__
    return f"{path.name}: cannot be read as {kind}: {where or first}{(' - ' + detail) if where and detail else ''}"

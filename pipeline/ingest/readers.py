"""Read one input file through DuckDB's own readers (read_csv / read_parquet), streaming: the
rows go straight from the reader into the staged table, nothing is loaded whole into memory or
into pandas. Every value is read as text so the validation decides what is a date or a number.

CSV lines whose field count differs from the header are not padded or merged: DuckDB's
``store_rejects`` sets them aside with their raw text, and the import quarantines them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from pipeline.ingest.config import CsvOptions, FileImportError
from pipeline.warehouse import quote_ident, quote_literal

REJECTS, REJECT_SCANS = "_import_rejects", "_import_reject_scans"  # temp tables of the CSV reader


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _reader(path: Path, csv: CsvOptions, rejects: bool) -> str:
    if path.suffix.lower() == ".parquet":
        return f"read_parquet({quote_literal(str(path))})"
    extra = (
        f", store_rejects=true, rejects_table={quote_literal(REJECTS)}, rejects_scan={quote_literal(REJECT_SCANS)}"
        if rejects
        else ""
    )
    return (
        f"read_csv({quote_literal(str(path))}, delim={quote_literal(csv.delimiter)}, "
        f"header={'true' if csv.header else 'false'}, encoding={quote_literal(csv.encoding)}, "
        # the dialect is the settings', not sniffed: a file with many bad lines stays readable
        f"quote='\"', escape='\"', all_varchar=true, null_padding=false{extra})"
    )


def file_columns(conn: duckdb.DuckDBPyConnection, path: Path, csv: CsvOptions) -> list[str]:
    """The column names of ``path`` (read from its header or schema only)."""
    if path.stat().st_size == 0:
        raise FileImportError(f"{path.name}: the file is empty (0 bytes)")
    try:
        columns = [
            row[0]
            for row in conn.execute(f"describe select * from {_reader(path, csv, True)}").fetchall()
        ]
        start(conn)
        return columns
    except duckdb.Error as error:
        raise FileImportError(_readable(path, csv, error)) from None


def source(path: Path, csv: CsvOptions, columns: list[str]) -> str:
    """A relation over the file's rows: _pos (1-based among the rows read), _row (the row as a
    struct, for the quarantine) and each column as text."""
    text = ", ".join(f"cast(t.{quote_ident(c)} as varchar) as {quote_ident(c)}" for c in columns)
    return f"(select row_number() over () as _pos, t as _row, {text} from {_reader(path, csv, True)} as t)"


def start(conn: duckdb.DuckDBPyConnection) -> None:
    """Forget the rejects of the previous file."""
    conn.execute(f"drop table if exists {REJECTS}")
    conn.execute(f"drop table if exists {REJECT_SCANS}")


def rejected_lines(
    conn: duckdb.DuckDBPyConnection, path: Path, csv: CsvOptions
) -> list[tuple[int, str, str]]:
    """The lines the CSV reader set aside: (data row number, reason, raw text), in file order.
    A file in another encoding fails as a whole: that is a setting, not a bad row."""
    if (
        path.suffix.lower() == ".parquet"
        or not conn.execute(
            "select count(*) from duckdb_tables() where table_name = ? and temporary", [REJECTS]
        ).fetchone()[0]
    ):
        return []
    rows = conn.execute(
        f"""
        select line, list_sort(list(distinct cast(error_type as varchar))), any_value(csv_line)
        from {REJECTS} group by line order by line
        """
    ).fetchall()
    header = 1 if csv.header else 0
    out = []
    for line, types, text in rows:
        if "INVALID ENCODING" in types:
            raise FileImportError(
                f"{path.name}: is not valid {csv.encoding} text; set PIPELINE_IMPORT_CSV_ENCODING "
                f"to the file's encoding (utf-8, utf-16 or latin-1) (first bad line: {line})"
            )
        field_count = set(types) <= {"TOO MANY COLUMNS", "MISSING COLUMNS"}
        out.append(
            (int(line) - header, "wrong_field_count" if field_count else "malformed_row", text)
        )
    return out


def _readable(path: Path, csv: CsvOptions, error: duckdb.Error) -> str:
    text = str(error)
    if "unicode" in text.lower() or "encod" in text.lower():
        return (
            f"{path.name}: is not valid {csv.encoding} text; set PIPELINE_IMPORT_CSV_ENCODING "
            "to the file's encoding (utf-8, utf-16 or latin-1)"
        )
    where = next(
        (
            line.strip()
            for line in text.splitlines()
            if line.strip().startswith("CSV Error on Line")
        ),
        "",
    )
    detail = next(
        (
            line.strip()
            for line in text.splitlines()[1:]
            if line.strip() and not line.startswith("Original Line")
        ),
        "",
    )
    kind = "Parquet" if path.suffix.lower() == ".parquet" else "CSV"
    first = text.splitlines()[0] if text else type(error).__name__
    return f"{path.name}: cannot be read as {kind}: {where or first}{(' - ' + detail) if where and detail else ''}"

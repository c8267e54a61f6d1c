"""POST /transactions: validate a batch of orders with the file import's own rules, then drop the
accepted rows into the import folder as one new transactions file for the next refresh.

Validation is the file import itself: the batch is written as the very CSV that would land in the
import folder, into a temporary folder, and ``pipeline.ingest.run_import`` runs on it in an
in-memory DuckDB. Its ``raw.quarantine`` gives each rejected row its reason (missing_key,
unparseable_date, date_after_as_of, non_numeric, negative, exact_duplicate, conflicting_order);
nothing about the rules is re-written here. As in any file, a line repeated with the same order id
is an ``exact_duplicate``, while identical lines without an order id are separate orders and are
all kept. Repeats of lines in files already in the folder are judged by the next refresh, which
reads every file.

Durability: the file is written under a hidden ``.part`` name the import ignores, fsynced,
renamed with ``os.replace`` and the folder fsynced. Idempotency: an ``Idempotency-Key`` header
is recorded (a JSON file per key under ``<data_dir>/api/idempotency``, written after the data
file, atomically) with a fingerprint of the batch and the response; a retry with the same key
and batch gets the recorded response and writes nothing. A keyed batch's file name carries a
hash of the key, so a retry after a crash between the two writes finds its file instead of
writing a second one.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import fcntl
import fnmatch
import hashlib
import io
import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from pipeline.ingest import FileImportError, ImportConfig, run_import
from pipeline.settings import Settings

MAX_ROWS = 10_000
MAX_KEY_LENGTH = 200

# field of the JSON row -> ImportSettings attribute naming its column in the transactions file
FIELD_COLUMNS = {
    "customer_id": "column_customer",
    "order_date": "column_date",
    "amount": "column_amount",
    "order_id": "column_order",
    "product": "column_product",
    "quantity": "column_quantity",
}
OPTIONAL_FIELDS = ("order_id", "product", "quantity")


class TransactionRow(BaseModel):
    """One order (or order line). Values may be strings or numbers; they are checked by the import's
    rules (a missing customer_id or order_date is rejected as missing_key, not refused)."""

    model_config = ConfigDict(extra="forbid")
    customer_id: str | int | None = Field(None, examples=["K0001"])
    order_date: str | None = Field(
        None,
        description="In PIPELINE_IMPORT_DATE_FORMAT (default YYYY-MM-DD).",
        examples=["2026-11-20"],
    )
    amount: str | float | int | None = Field(
        None, description="Net revenue of the order or line.", examples=[120.5]
    )
    order_id: str | int | None = Field(None, description="Needs PIPELINE_IMPORT_COLUMN_ORDER.")
    product: str | None = Field(None, description="Needs PIPELINE_IMPORT_COLUMN_PRODUCT.")
    quantity: str | float | int | None = Field(
        None, description="Needs PIPELINE_IMPORT_COLUMN_QUANTITY."
    )


class TransactionBatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rows": [
                        {"customer_id": "K0001", "order_date": "2026-11-20", "amount": 120.5},
                        {"customer_id": "K0002", "order_date": "2026-11-21", "amount": "-3"},
                    ]
                }
            ]
        },
    )
    rows: list[TransactionRow] = Field(min_length=1, max_length=MAX_ROWS)


class IngestError(Exception):
    """The batch as a whole cannot be taken; nothing was written."""

    def __init__(self, status: int, detail: Any):
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


@dataclasses.dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _columns(settings: Settings, batch: TransactionBatch) -> list[tuple[str, str]]:
    """(JSON field, file column) of the file to write; refuses optional fields the import ignores."""
    used = {f for row in batch.rows for f in OPTIONAL_FIELDS if getattr(row, f) is not None}
    out = []
    for name, attribute in FIELD_COLUMNS.items():
        column = getattr(settings.imports, attribute)
        if column is None:
            if name in used:
                env = settings.imports.env_name(attribute)
                raise IngestError(
                    422,
                    f"rows give {name!r} but {env} is 'none', so the import would ignore it; "
                    f"map the column or leave the field out",
                )
            continue
        out.append((name, column))
    return out


def render_csv(settings: Settings, batch: TransactionBatch) -> bytes:
    """The batch as a transactions CSV in the import folder's own format (header, delimiter, encoding)."""
    columns = _columns(settings, batch)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=settings.imports.csv_delimiter, lineterminator="\n")
    writer.writerow([column for _, column in columns])
    for row in batch.rows:
        writer.writerow([_text(getattr(row, name)) for name, _ in columns])
    try:
        return buffer.getvalue().encode(settings.imports.csv_encoding)
    except UnicodeEncodeError as error:
        raise IngestError(
            422,
            f"the batch has text that {settings.imports.csv_encoding} (PIPELINE_IMPORT_CSV_ENCODING) "
            f"cannot hold: {error.object[error.start : error.end]!r}",
        ) from None


def check_configuration(settings: Settings) -> None:
    if settings.imports.layout != "transactions":
        raise IngestError(
            409,
            "POST /transactions writes transactions files: set PIPELINE_IMPORT_LAYOUT=transactions "
            "(and PIPELINE_SOURCE=files) for the API and the refresh",
        )
    if not settings.imports.csv_header:
        raise IngestError(
            409,
            "POST /transactions writes CSV files with a header: set PIPELINE_IMPORT_CSV_HEADER=true",
        )
    if "*" not in settings.imports.transactions_pattern:
        raise IngestError(
            409,
            "PIPELINE_IMPORT_TRANSACTIONS_PATTERN has no '*', so every batch would need the same "
            "file name; use a pattern like transactions*",
        )


def file_name(settings: Settings, token: str, now: dt.datetime) -> str:
    """A name the import's transactions pattern matches: the first '*' becomes api_<time>_<token>."""
    pattern = settings.imports.transactions_pattern
    stem = pattern.replace("*", f"_api_{now:%Y%m%dT%H%M%S%f}Z_{token}", 1).replace("*", "")
    if stem.startswith("_"):
        stem = stem[1:]
    name = f"{stem}.csv"
    if not fnmatch.fnmatchcase(stem.lower(), pattern.lower()) or any(c in stem for c in "/\\?[]"):
        raise IngestError(
            409,
            f"cannot make a file name matching PIPELINE_IMPORT_TRANSACTIONS_PATTERN={pattern!r}",
        )
    return name


def validate(settings: Settings, content: bytes, name: str, rows: int) -> list[str | None]:
    """The import's verdict on each row of ``content``: None (loaded) or its quarantine reason."""
    config = ImportConfig.from_settings(settings)
    with tempfile.TemporaryDirectory(prefix="api-batch-") as folder:
        (Path(folder) / name).write_bytes(content)
        conn = duckdb.connect()
        try:
            run_import(conn, dataclasses.replace(config, directory=Path(folder)))
            reasons = dict(conn.execute("select row_number, reason from raw.quarantine").fetchall())
        except FileImportError as error:
            raise IngestError(
                422, f"the batch cannot be read as a transactions file: {error}"
            ) from None
        finally:
            conn.close()
    return [reasons.get(i + 1) for i in range(rows)]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, content: bytes) -> None:
    """Write under a hidden .part name (no pattern matches it), fsync, rename, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.part"
    try:
        with temporary.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_dir(path.parent)


class Ingestor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.import_dir = Path(settings.imports.dir)
        self.keys_dir = settings.data_dir / "api" / "idempotency"

    def submit(self, batch: TransactionBatch, key: str | None) -> Outcome:
        check_configuration(self.settings)
        if key is not None and not (1 <= len(key) <= MAX_KEY_LENGTH and key.isprintable()):
            raise IngestError(
                422, f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters"
            )
        if key is None:
            return self._ingest(batch, uuid.uuid4().hex[:16], None)
        digest = hashlib.sha256(key.encode()).hexdigest()
        fingerprint = hashlib.sha256(
            json.dumps(
                batch.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
            ).encode()
        ).hexdigest()
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        record = self.keys_dir / f"{digest}.json"
        # one lock for all keys, across threads and worker processes: batches are small
        with (self.keys_dir / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if record.exists():
                saved = json.loads(record.read_text())
                if saved["request_sha256"] != fingerprint:
                    raise IngestError(
                        409,
                        "this Idempotency-Key was already used for a different batch; "
                        "use a new key for new rows",
                    )
                return Outcome(saved["status"], saved["response"], replayed=True)
            outcome = self._ingest(batch, digest[:16], key)
            payload = {
                "key_sha256": digest,
                "request_sha256": fingerprint,
                "status": outcome.status,
                "response": outcome.body,
                "recorded_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            }
            write_atomically(record, (json.dumps(payload, indent=2) + "\n").encode())
            return outcome

    def _ingest(self, batch: TransactionBatch, token: str, key: str | None) -> Outcome:
        now = dt.datetime.now(dt.timezone.utc)
        name = file_name(self.settings, token, now)
        content = render_csv(self.settings, batch)
        reasons = validate(self.settings, content, name, len(batch.rows))
        results = [
            {
                "row": i + 1,
                "status": "rejected" if reason else "accepted",
                **({"reason": reason} if reason else {}),
            }
            for i, reason in enumerate(reasons)
        ]
        accepted = [row for row, reason in zip(batch.rows, reasons) if reason is None]
        summary = {
            "accepted": len(accepted),
            "rejected": len(results) - len(accepted),
            "rows": results,
        }
        if not accepted:
            raise IngestError(
                422, {"message": "every row was rejected; nothing was written", **summary}
            )
        # a keyed batch whose file landed before a crash (its record did not): keep that file
        existing = sorted(self.import_dir.glob(f"*_{token}.csv")) if key is not None else []
        if existing:
            path = existing[0]
        else:
            path = self.import_dir / name
            write_atomically(
                path, render_csv(self.settings, batch.model_copy(update={"rows": accepted}))
            )
        body = {"status": "written", "file": path.name, "idempotency_key": key, **summary}
        return Outcome(201, body)

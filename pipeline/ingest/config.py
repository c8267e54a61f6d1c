"""What the file import needs from the settings, and its one error type."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path


class FileImportError(Exception):
    """Input that cannot be loaded at all (missing file or column, empty or unreadable file,
    changed content). The message names the file and what to do; never a raw DuckDB trace."""


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    header: bool = True
    encoding: str = "utf-8"
    decimal_separator: str = "."


@dataclass(frozen=True)
class TransactionColumns:
    """Source column names of the transactions layout (None = not mapped)."""

    customer: str = "customer_id"
    date: str = "order_date"
    amount: str = "amount"
    order: str | None = None
    product: str | None = None
    quantity: str | None = None


@dataclass(frozen=True)
class ImportConfig:
    directory: Path
    as_of: dt.date
    layout: str = "atliq"
    csv: CsvOptions = CsvOptions()
    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    transactions_pattern: str = "transactions*"
    columns: TransactionColumns = TransactionColumns()
    # transactions layout: platform, channel, region of every derived customer
    customer_defaults: tuple[str, str, str] = ("E-Commerce", "Direct", "APAC")
    # AtliQ layout: (table, canonical column, the file's column) for headers named otherwise
    column_map: tuple[tuple[str, str, str], ...] = ()
    # DuckDB's memory_limit while importing: larger files spill to disk instead of growing RSS
    memory_limit: str = "192MB"

    def file_settings(self) -> dict:
        """The settings that decide how a file's rows are read and validated, stored with the file
        in raw.import_files: a later change of these applies to new files only."""
        return {
            "layout": self.layout,
            "delimiter": self.csv.delimiter,
            "header": self.csv.header,
            "encoding": self.csv.encoding,
            "decimal_separator": self.csv.decimal_separator,
            "date_formats": list(self.date_formats),
            "columns": {k: v for k, v in vars(self.columns).items()},
            "column_map": [list(m) for m in self.column_map],
        }

    @classmethod
    def from_settings(cls, s) -> "ImportConfig":
        return cls(
            directory=Path(s.import_dir),
            as_of=s.as_of,
            layout=s.import_layout,
            csv=CsvOptions(
                delimiter=s.import_csv_delimiter,
                header=s.import_csv_header,
                encoding=s.import_csv_encoding,
                decimal_separator=s.import_decimal_separator,
            ),
            date_formats=tuple(s.import_date_formats),
            transactions_pattern=s.import_transactions_pattern,
            customer_defaults=(s.import_customer_platform, s.import_customer_channel, s.import_customer_region),
            columns=TransactionColumns(
                customer=s.import_column_customer,
                date=s.import_column_date,
                amount=s.import_column_amount,
                order=s.import_column_order,
                product=s.import_column_product,
                quantity=s.import_column_quantity,
            ),
            column_map=tuple(s.import_column_map),
            memory_limit=s.import_memory_limit,
        )

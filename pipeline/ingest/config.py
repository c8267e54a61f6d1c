"""What the file import needs from the settings, and its one error type."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pipeline.settings import ImportSettings, Settings


class FileImportError(Exception):
    """Input that cannot be loaded at all (missing file or column, empty or unreadable file,
    changed content). The message names the file and what to do; never a raw DuckDB trace."""


# The defaults are the settings' (PIPELINE_IMPORT_*), written once in pipeline/settings.py.
_DEFAULT = ImportSettings()


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = _DEFAULT.csv_delimiter
    header: bool = _DEFAULT.csv_header
    encoding: str = _DEFAULT.csv_encoding
    decimal_separator: str = _DEFAULT.decimal_separator


@dataclass(frozen=True)
class TransactionColumns:
    """Source column names of the transactions layout (None = not mapped)."""

    customer: str = _DEFAULT.column_customer
    date: str = _DEFAULT.column_date
    amount: str = _DEFAULT.column_amount
    order: str | None = _DEFAULT.column_order
    product: str | None = _DEFAULT.column_product
    quantity: str | None = _DEFAULT.column_quantity


@dataclass(frozen=True)
class ImportConfig:
    directory: Path
    as_of: dt.date
    layout: str = _DEFAULT.layout
    csv: CsvOptions = CsvOptions()
    date_formats: tuple[str, ...] = _DEFAULT.date_format
    transactions_pattern: str = _DEFAULT.transactions_pattern
    columns: TransactionColumns = TransactionColumns()
    # transactions layout: platform, channel, region of every derived customer
    customer_defaults: tuple[str, str, str] = (
        _DEFAULT.customer_platform,
        _DEFAULT.customer_channel,
        _DEFAULT.customer_region,
    )
    # AtliQ layout: (table, canonical column, the file's column) for headers named otherwise
    column_map: tuple[tuple[str, str, str], ...] = _DEFAULT.column_map
    # DuckDB's memory_limit while importing: larger files spill to disk instead of growing RSS
    memory_limit: str = _DEFAULT.memory_limit

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
    def from_settings(cls, settings: Settings) -> ImportConfig:
        s = settings.imports
        return cls(
            directory=Path(s.dir),
            as_of=settings.as_of,
            layout=s.layout,
            csv=CsvOptions(
                delimiter=s.csv_delimiter,
                header=s.csv_header,
                encoding=s.csv_encoding,
                decimal_separator=s.decimal_separator,
            ),
            date_formats=tuple(s.date_format),
            transactions_pattern=s.transactions_pattern,
            customer_defaults=(s.customer_platform, s.customer_channel, s.customer_region),
            columns=TransactionColumns(
                customer=s.column_customer,
                date=s.column_date,
                amount=s.column_amount,
                order=s.column_order,
                product=s.column_product,
                quantity=s.column_quantity,
            ),
            column_map=tuple(s.column_map),
            memory_limit=s.memory_limit,
        )

"""The two file layouts: which files feed which staged table, and their column contracts."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest.config import FileImportError, ImportConfig

EXTENSIONS = (".csv", ".parquet")


@dataclass(frozen=True)
class Kind:
    """One kind of input file, staged in raw.import_<name> with these canonical columns."""

    name: str
    prefixes: tuple[str, ...]  # AtliQ: file-name stems starting with one of these
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    # canonical column -> other spellings real exports use, tried in order after the canonical name
    aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


ATLIQ_KINDS = (
    Kind(
        "customers",
        ("dim_customer",),
        ("customer_code", "customer", "platform", "channel", "market", "sub_zone", "region"),
        ("city", "email", "occupation", "date_of_birth"),
    ),
    Kind(
        "products",
        ("dim_product",),
        ("product_code", "division", "segment", "category", "product", "variant"),
    ),
    Kind(
        "gross_prices",
        ("fact_gross_price",),
        ("product_code", "fiscal_year", "gross_price"),
        aliases=(("fiscal_year", ("year",)),),
    ),
    # AtliQ's own export names the cost year fiscal_year
    Kind(
        "manufacturing_costs",
        ("fact_manufacturing_cost",),
        ("product_code", "cost_year", "manufacturing_cost"),
        aliases=(("cost_year", ("fiscal_year", "year")),),
    ),
    Kind(
        "pre_invoice_deductions",
        ("fact_pre_discount", "fact_pre_invoice_deductions"),
        ("customer_code", "fiscal_year", "pre_invoice_discount_pct"),
        aliases=(("fiscal_year", ("year",)),),
    ),
    # checked before "sales": the longer prefix wins
    Kind(
        "sales_monthly",
        ("fact_sales_monthly",),
        ("date", "product_code", "customer_code", "sold_quantity"),
        ("fiscal_year",),
    ),
    Kind(
        "sales",
        ("fact_sales", "sales"),
        ("date", "product_code", "customer_code", "sold_quantity"),
        ("order_id",),
    ),
)
ATLIQ_REQUIRED = (
    "customers",
    "products",
    "gross_prices",
    "manufacturing_costs",
    "pre_invoice_deductions",
)
ATLIQ_SALES = ("sales", "sales_monthly")

TRANSACTIONS = Kind(
    "transactions",
    (),
    ("customer_code", "order_date", "amount"),
    ("order_id", "product_code", "quantity"),
)
# canonical column -> (ImportConfig.columns attribute, environment variable naming it)
TRANSACTION_MAPPING = {
    "customer_code": ("customer", "PIPELINE_IMPORT_COLUMN_CUSTOMER"),
    "order_date": ("date", "PIPELINE_IMPORT_COLUMN_DATE"),
    "amount": ("amount", "PIPELINE_IMPORT_COLUMN_AMOUNT"),
    "order_id": ("order", "PIPELINE_IMPORT_COLUMN_ORDER"),
    "product_code": ("product", "PIPELINE_IMPORT_COLUMN_PRODUCT"),
    "quantity": ("quantity", "PIPELINE_IMPORT_COLUMN_QUANTITY"),
}


def kinds(config: ImportConfig) -> tuple[Kind, ...]:
    return ATLIQ_KINDS if config.layout == "atliq" else (TRANSACTIONS,)


def _stem(path: Path) -> str:
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def kind_of(config: ImportConfig, path: Path) -> Kind | None:
    """The kind a file feeds, or None if the layout ignores it."""
    if path.suffix.lower() not in EXTENSIONS or not path.is_file():
        return None
    stem = _stem(path).lower()
    if config.layout == "transactions":
        return (
            TRANSACTIONS if fnmatch.fnmatchcase(stem, config.transactions_pattern.lower()) else None
        )
    for kind in ATLIQ_KINDS:
        if any(stem.startswith(prefix) for prefix in kind.prefixes):
            return kind
    return None


def input_files(config: ImportConfig) -> list[tuple[Path, Kind]]:
    """The files of the import folder the layout reads, sorted by name."""
    if not config.directory.is_dir():
        raise FileImportError(
            f"the import folder {config.directory} does not exist (PIPELINE_IMPORT_DIR); "
            "create it and put your files in it"
        )
    found = []
    for path in sorted(config.directory.iterdir()):
        kind = kind_of(config, path)
        if kind is not None:
            found.append((path, kind))
    return found


def check_complete(config: ImportConfig, kinds_present: set[str], folder_files: list[str]) -> None:
    """Fail if a table the layout needs has no file (loaded now or before)."""
    listing = ", ".join(folder_files) or "none"
    if config.layout == "transactions":
        if "transactions" not in kinds_present:
            raise FileImportError(
                f"missing file: no file matching {config.transactions_pattern}.csv or .parquet "
                f"in {config.directory} (PIPELINE_IMPORT_TRANSACTIONS_PATTERN); files found: {listing}"
            )
        return
    for name in ATLIQ_REQUIRED:
        if name not in kinds_present:
            prefix = next(k.prefixes[0] for k in ATLIQ_KINDS if k.name == name)
            raise FileImportError(
                f"missing file: no {prefix}.csv or {prefix}.parquet in {config.directory}; "
                f"files found: {listing}"
            )
    if not kinds_present & set(ATLIQ_SALES):
        raise FileImportError(
            f"missing file: no order-level sales (fact_sales*.csv/.parquet or sales*.csv/.parquet) "
            f"and no fact_sales_monthly*.csv/.parquet in {config.directory}; files found: {listing}"
        )


def map_columns(
    config: ImportConfig, kind: Kind, file_name: str, found: list[str]
) -> dict[str, str | None]:
    """canonical column -> the file's column (None for an optional column the file lacks)."""
    if kind is TRANSACTIONS:
        mapping: dict[str, str | None] = {}
        for canonical, (attribute, env) in TRANSACTION_MAPPING.items():
            wanted = getattr(config.columns, attribute)
            if wanted is None:
                mapping[canonical] = None
                continue
            match = _find(wanted, found)
            if match is None:
                raise FileImportError(
                    f"{file_name}: {env} names the column {wanted!r}, which is not in the file; "
                    f"columns found: {found}"
                )
            mapping[canonical] = match
        return mapping
    if (
        not config.csv.header
        and all(c.startswith("column") for c in found)
        and file_name.lower().endswith(".csv")
    ):
        # no header: the contract's columns in order (required, then optional)
        if len(found) < len(kind.required):
            raise FileImportError(
                f"{file_name}: has {len(found)} columns without a header, the {kind.name} contract "
                f"needs at least {len(kind.required)}: {list(kind.required)}"
            )
        return {c: (found[i] if i < len(found) else None) for i, c in enumerate(kind.columns)}
    mapped = mapped_columns(config, kind)
    aliases = dict(kind.aliases)
    mapping = {}
    for c in kind.columns:
        if c in mapped:
            match = _find(mapped[c], found)
            if match is None:
                raise FileImportError(
                    f"{file_name}: PIPELINE_IMPORT_COLUMN_MAP maps {kind.name}.{c} to {mapped[c]!r}, "
                    f"which is not in the file; columns found: {found}"
                )
            mapping[c] = match
            continue
        mapping[c] = next(
            (m for m in (_find(n, found) for n in (c, *aliases.get(c, ()))) if m), None
        )
    missing = [c for c in kind.required if mapping[c] is None]
    if missing:
        raise FileImportError(
            f"{file_name}: missing required column(s) {missing}; columns found: {found} "
            f"(name them in PIPELINE_IMPORT_COLUMN_MAP, e.g. {kind.name}.{missing[0]}=<your column>)"
        )
    return mapping


def mapped_columns(config: ImportConfig, kind: Kind) -> dict[str, str]:
    """The PIPELINE_IMPORT_COLUMN_MAP entries of one table."""
    return {column: source for table, column, source in config.column_map if table == kind.name}


def check_column_map(config: ImportConfig) -> None:
    """Fail on a PIPELINE_IMPORT_COLUMN_MAP entry that names no column of the AtliQ layout."""
    tables = {k.name: k for k in ATLIQ_KINDS}
    for table, column, _ in config.column_map:
        if table not in tables or column not in tables[table].columns:
            known = ", ".join(f"{k.name}.{c}" for k in ATLIQ_KINDS for c in k.columns)
            raise FileImportError(
                f"PIPELINE_IMPORT_COLUMN_MAP names {table}.{column}, which is not a column of the AtliQ "
                f"layout; known: {known}"
            )


def _find(name: str, found: list[str]) -> str | None:
    if name in found:
        return name
    matches = [c for c in found if c.strip().lower() == name.strip().lower()]
    return matches[0] if len(matches) == 1 else None

"""Every knob of the pipeline, in one place.

Each setting has a default and an environment variable. Settings are read when a run starts
(``load()``), not at import, so tests and runs can point them elsewhere with the environment.
Relative paths are resolved against the repository root, so dbt (which runs inside
``dbt_project/``) and Python agree on the same warehouse file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# dbt-duckdb names the database after the file's stem and bakes it into the manifest, so the
# file name is fixed; only its folder may move.
WAREHOUSE_FILE_NAME = "warehouse.duckdb"


class SettingsError(ValueError):
    """A setting in the environment has a value the pipeline cannot use."""


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str


# The single table of settings: the README's settings table is checked against it by a test.
SETTINGS: dict[str, Setting] = {
    "data_dir": Setting(
        "PIPELINE_DATA_DIR",
        "data",
        "Folder for runtime files; the warehouse is <data_dir>/warehouse.duckdb.",
    ),
    "customers": Setting(
        "PIPELINE_CUSTOMERS",
        "20000",
        "Scale of the synthetic data: customers acquired over the history.",
    ),
    "seed": Setting("PIPELINE_SEED", "42", "Random seed of the simulator."),
    "start_date": Setting(
        "PIPELINE_START_DATE",
        "2023-09-01",
        "First day of the simulated history (AtliQ fiscal years start on 1 September); imported files bring their own history and ignore it.",
    ),
    "history_days": Setting(
        "PIPELINE_HISTORY_DAYS",
        "1095",
        "Days after the start date over which simulated customers are acquired.",
    ),
    "as_of": Setting(
        "PIPELINE_AS_OF",
        "today",
        "As-of date of the refresh (YYYY-MM-DD or 'today', UTC); no data after it is visible.",
    ),
    "truth_horizon_days": Setting(
        "PIPELINE_TRUTH_HORIZON_DAYS",
        "365",
        "Days the simulator continues past the as-of date into the truth schema, to score models.",
    ),
    "schedule_anchor": Setting(
        "PIPELINE_SCHEDULE_ANCHOR",
        "2026-01-01",
        "The 15-day schedule runs on this date and every 15th day after (and before) it.",
    ),
    "cltv_spend": Setting(
        "PIPELINE_CLTV_SPEND",
        "margin",
        "Spend the Gamma-Gamma model values: 'margin' (gross margin, what the business keeps) or 'revenue' (net sales).",
    ),
    "cltv_discount_rate": Setting(
        "PIPELINE_CLTV_DISCOUNT_RATE",
        "0.10",
        "Annual discount rate of the 12-month CLV.",
    ),
    "cltv_transaction_models": Setting(
        "PIPELINE_CLTV_TRANSACTION_MODELS",
        "bgnbd,mbgnbd,pareto_nbd",
        "Comma-separated purchase-count models the backtest chooses from: bgnbd, mbgnbd, pareto_nbd.",
    ),
    "backtest_holdout_days": Setting(
        "PIPELINE_BACKTEST_HOLDOUT_DAYS",
        "180",
        "Days before the as-of date held out to backtest the CLTV model every refresh.",
    ),
    "rfm_new_customer_days": Setting(
        "PIPELINE_RFM_NEW_CUSTOMER_DAYS",
        "90",
        "RFM segment New Customers: first order within this many days up to the as-of date (checked before the scores; 0 = off).",
    ),
    "cluster_k_min": Setting("PIPELINE_CLUSTER_K_MIN", "2", "Smallest number of clusters tried."),
    "cluster_k_max": Setting("PIPELINE_CLUSTER_K_MAX", "10", "Largest number of clusters tried."),
    "cluster_k": Setting(
        "PIPELINE_CLUSTER_K",
        "auto",
        "Number of clusters: 'auto' chooses by silhouette over the range, a number overrides it.",
    ),
    "source": Setting(
        "PIPELINE_SOURCE",
        "synthetic",
        "Where raw.* comes from: 'synthetic' (the seeded simulator) or 'files' (your own CSV/Parquet files).",
    ),
    "import_dir": Setting(
        "PIPELINE_IMPORT_DIR",
        "data/import",
        "Folder the file import reads (PIPELINE_SOURCE=files); new files are picked up by the next refresh.",
    ),
    "import_layout": Setting(
        "PIPELINE_IMPORT_LAYOUT",
        "atliq",
        "Layout of the imported files: 'atliq' (AtliQ tables) or 'transactions' (one transactions file or several).",
    ),
    "import_transactions_pattern": Setting(
        "PIPELINE_IMPORT_TRANSACTIONS_PATTERN",
        "transactions*",
        "File-name pattern (glob, without extension) of the transactions files; .csv and .parquet match.",
    ),
    "import_column_customer": Setting(
        "PIPELINE_IMPORT_COLUMN_CUSTOMER",
        "customer_id",
        "Transactions layout: column with the customer id.",
    ),
    "import_column_date": Setting(
        "PIPELINE_IMPORT_COLUMN_DATE",
        "order_date",
        "Transactions layout: column with the order date.",
    ),
    "import_column_amount": Setting(
        "PIPELINE_IMPORT_COLUMN_AMOUNT",
        "amount",
        "Transactions layout: column with the amount (net revenue of the order or order line).",
    ),
    "import_column_order": Setting(
        "PIPELINE_IMPORT_COLUMN_ORDER",
        "none",
        "Transactions layout: optional column with the order id ('none': every row is one order).",
    ),
    "import_column_product": Setting(
        "PIPELINE_IMPORT_COLUMN_PRODUCT",
        "none",
        "Transactions layout: optional column with the product code ('none': one product, ALL).",
    ),
    "import_column_quantity": Setting(
        "PIPELINE_IMPORT_COLUMN_QUANTITY",
        "none",
        "Transactions layout: optional quantity column, validated (numeric, not negative) but not loaded.",
    ),
    "import_customer_platform": Setting(
        "PIPELINE_IMPORT_CUSTOMER_PLATFORM",
        "E-Commerce",
        "Transactions layout: platform given to every customer (Brick & Mortar or E-Commerce).",
    ),
    "import_customer_channel": Setting(
        "PIPELINE_IMPORT_CUSTOMER_CHANNEL",
        "Direct",
        "Transactions layout: channel given to every customer (Direct, Distributor or Retailer).",
    ),
    "import_customer_region": Setting(
        "PIPELINE_IMPORT_CUSTOMER_REGION",
        "APAC",
        "Transactions layout: region given to every customer (APAC, EU, NA or LATAM); market and sub_zone are Unknown.",
    ),
    "import_csv_delimiter": Setting(
        "PIPELINE_IMPORT_CSV_DELIMITER",
        ",",
        "CSV field delimiter (one character; 'tab' for a tab).",
    ),
    "import_csv_header": Setting(
        "PIPELINE_IMPORT_CSV_HEADER",
        "true",
        "Whether CSV files start with a header row; without one, columns are named column0, column1, ...",
    ),
    "import_csv_encoding": Setting(
        "PIPELINE_IMPORT_CSV_ENCODING",
        "utf-8",
        "Encoding of CSV files: utf-8, utf-16 or latin-1.",
    ),
    "import_date_format": Setting(
        "PIPELINE_IMPORT_DATE_FORMAT",
        "%Y-%m-%d",
        "strptime format(s) of dates in the files; several separated by ';' are tried in order.",
    ),
    "import_decimal_separator": Setting(
        "PIPELINE_IMPORT_DECIMAL_SEPARATOR",
        ".",
        "Decimal separator of numbers in CSV files: '.' or ','.",
    ),
    "import_column_map": Setting(
        "PIPELINE_IMPORT_COLUMN_MAP",
        "none",
        "AtliQ layout: columns named otherwise, as table.column=file column pairs separated by ';' (e.g. manufacturing_costs.cost_year=Year).",
    ),
    "import_memory_limit": Setting(
        "PIPELINE_IMPORT_MEMORY_LIMIT",
        "192MB",
        "DuckDB memory limit while importing files (e.g. 192MB, 2GB); beyond it DuckDB spills to disk.",
    ),
    "api_host": Setting(
        "PIPELINE_API_HOST",
        "127.0.0.1",
        "Address the HTTP API (make api) listens on; the default serves this machine only.",
    ),
    "api_port": Setting("PIPELINE_API_PORT", "8000", "Port of the HTTP API (make api)."),
    "api_key": Setting(
        "PIPELINE_API_KEY",
        "none",
        "Key the API's writes (POST /transactions) need in the X-API-Key header; 'none': writes are refused.",
    ),
    "api_max_body_mb": Setting(
        "PIPELINE_API_MAX_BODY_MB",
        "5",
        "Largest request body the API reads, in MiB; larger requests get 413 before any parsing.",
    ),
}

CLTV_SPENDS = ("margin", "revenue")
CLTV_TRANSACTION_MODELS = ("bgnbd", "mbgnbd", "pareto_nbd")
SOURCES = ("synthetic", "files")
IMPORT_LAYOUTS = ("atliq", "transactions")
CSV_ENCODINGS = ("utf-8", "utf-16", "latin-1")
# dim_customer's accepted values
PLATFORMS = ("Brick & Mortar", "E-Commerce")
CHANNELS = ("Direct", "Distributor", "Retailer")
REGIONS = ("APAC", "EU", "NA", "LATAM")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    customers: int
    seed: int
    start_date: dt.date
    history_days: int
    as_of: dt.date
    truth_horizon_days: int
    schedule_anchor: dt.date = dt.date(2026, 1, 1)
    cltv_spend: str = "margin"
    cltv_discount_rate: float = 0.10
    cltv_transaction_models: tuple[str, ...] = CLTV_TRANSACTION_MODELS
    backtest_holdout_days: int = 180
    rfm_new_customer_days: int = 90
    cluster_k_min: int = 2
    cluster_k_max: int = 10
    cluster_k: int | None = None  # None = choose by silhouette
    source: str = "synthetic"
    import_dir: Path | None = None  # None = <repo>/data/import
    import_layout: str = "atliq"
    import_transactions_pattern: str = "transactions*"
    import_column_customer: str = "customer_id"
    import_column_date: str = "order_date"
    import_column_amount: str = "amount"
    import_column_order: str | None = None
    import_column_product: str | None = None
    import_column_quantity: str | None = None
    import_customer_platform: str = "E-Commerce"
    import_customer_channel: str = "Direct"
    import_customer_region: str = "APAC"
    import_csv_delimiter: str = ","
    import_csv_header: bool = True
    import_csv_encoding: str = "utf-8"
    import_date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    import_decimal_separator: str = "."
    import_column_map: tuple[tuple[str, str, str], ...] = ()
    import_memory_limit: str = "192MB"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_key: str | None = None  # None = writes refused
    api_max_body_bytes: int = 5 * 1024 * 1024

    @property
    def warehouse(self) -> Path:
        return self.data_dir / WAREHOUSE_FILE_NAME

    def dbt_vars(self) -> dict[str, str]:
        """The settings dbt models read, passed with ``--vars``."""
        return {
            "as_of_date": self.as_of.isoformat(),
            "holdout_days": self.backtest_holdout_days,
            "cltv_spend": self.cltv_spend,
        }

    def dbt_env(self) -> dict[str, str]:
        """Environment for a dbt subprocess: profiles.yml reads the warehouse path from it."""
        return {"PIPELINE_WAREHOUSE": str(self.warehouse)}


def _parse_int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{SETTINGS[name].env}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{SETTINGS[name].env}={raw!r} must be >= {minimum}")
    return value


def _parse_date(name: str, raw: str) -> dt.date:
    if raw.strip().lower() == "today":
        return dt.datetime.now(dt.timezone.utc).date()
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise SettingsError(f"{SETTINGS[name].env}={raw!r} is not a date (YYYY-MM-DD)") from None


def _parse_float(name: str, raw: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{SETTINGS[name].env}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise SettingsError(f"{SETTINGS[name].env}={raw!r} must be between {low} and {high}")
    return value


def _parse_choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise SettingsError(f"{SETTINGS[name].env}={raw!r} must be one of {', '.join(choices)}")
    return value


def _parse_choices(name: str, raw: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated, non-empty list of distinct choices, in the given order."""
    values = tuple(v.strip().lower() for v in raw.split(",") if v.strip())
    unknown = [v for v in values if v not in choices]
    if not values or unknown or len(set(values)) < len(values):
        raise SettingsError(
            f"{SETTINGS[name].env}={raw!r} must list distinct names among {', '.join(choices)}"
        )
    return values


def _parse_k(raw: str) -> int | None:
    return None if raw.strip().lower() == "auto" else _parse_int("cluster_k", raw, 1)


def _parse_exact(name: str, raw: str, choices: tuple[str, ...]) -> str:
    if raw not in choices:
        raise SettingsError(f"{SETTINGS[name].env}={raw!r} must be one of {', '.join(choices)}")
    return raw


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise SettingsError(f"{SETTINGS[name].env}={raw!r} must be true or false")


def _parse_optional_column(raw: str) -> str | None:
    # column names are kept as written (spaces included): only 'none' or nothing means unmapped
    return None if raw == "" or raw.strip().lower() == "none" else raw


def _parse_required_column(name: str, raw: str) -> str:
    if raw == "":
        raise SettingsError(f"{SETTINGS[name].env} must name a column")
    return raw


def _parse_delimiter(raw: str) -> str:
    value = "\t" if raw.lower() == "tab" else raw
    if len(value) != 1:
        raise SettingsError(f"PIPELINE_IMPORT_CSV_DELIMITER={raw!r} must be one character or 'tab'")
    return value


def _parse_date_formats(raw: str) -> tuple[str, ...]:
    formats = tuple(f.strip() for f in raw.split(";") if f.strip())
    if not formats or any("%" not in f for f in formats):
        raise SettingsError(f"PIPELINE_IMPORT_DATE_FORMAT={raw!r} is not a strptime format like %Y-%m-%d")
    return formats


def _parse_column_map(raw: str) -> tuple[tuple[str, str, str], ...]:
    if raw.strip().lower() == "none":
        return ()
    pairs = []
    for item in (i for i in raw.split(";") if i.strip()):
        target, sep, source = item.partition("=")
        table, dot, column = target.strip().partition(".")
        if not sep or not dot or not table or not column or source == "":
            raise SettingsError(
                f"PIPELINE_IMPORT_COLUMN_MAP: {item!r} is not table.column=file column "
                "(e.g. manufacturing_costs.cost_year=Year)"
            )
        pairs.append((table.strip().lower(), column.strip().lower(), source))
    return tuple(pairs)


def _parse_memory_limit(raw: str) -> str:
    value = raw.strip().upper().replace(" ", "")
    if not re.fullmatch(r"\d+(\.\d+)?(KB|MB|GB|TB|KIB|MIB|GIB|TIB)", value):
        raise SettingsError(f"PIPELINE_IMPORT_MEMORY_LIMIT={raw!r} is not a size like 192MB or 2GB")
    return value


def _parse_port(raw: str) -> int:
    value = _parse_int("api_port", raw, 1)
    if value > 65535:
        raise SettingsError(f"PIPELINE_API_PORT={raw!r} must be <= 65535")
    return value


def _parse_api_key(raw: str) -> str | None:
    value = raw.strip()
    if value == "" or value.lower() == "none":
        return None
    if len(value) < 16 or not value.isprintable():
        raise SettingsError("PIPELINE_API_KEY must be at least 16 printable characters (or 'none' to refuse writes)")
    return value


def _resolve_path(raw: str) -> Path:
    path = Path(raw).expanduser()
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


def load(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Read the settings from the environment; keyword overrides win (used for run config)."""
    env = os.environ if environ is None else environ
    raw = {name: env.get(s.env, s.default) for name, s in SETTINGS.items()}
    settings = Settings(
        data_dir=_resolve_path(raw["data_dir"]),
        customers=_parse_int("customers", raw["customers"], 1),
        seed=_parse_int("seed", raw["seed"], 0),
        start_date=_parse_date("start_date", raw["start_date"]),
        history_days=_parse_int("history_days", raw["history_days"], 1),
        as_of=_parse_date("as_of", raw["as_of"]),
        truth_horizon_days=_parse_int("truth_horizon_days", raw["truth_horizon_days"], 0),
        schedule_anchor=_parse_date("schedule_anchor", raw["schedule_anchor"]),
        cltv_spend=_parse_choice("cltv_spend", raw["cltv_spend"], CLTV_SPENDS),
        cltv_discount_rate=_parse_float("cltv_discount_rate", raw["cltv_discount_rate"], 0.0, 1.0),
        cltv_transaction_models=_parse_choices(
            "cltv_transaction_models", raw["cltv_transaction_models"], CLTV_TRANSACTION_MODELS
        ),
        backtest_holdout_days=_parse_int("backtest_holdout_days", raw["backtest_holdout_days"], 1),
        rfm_new_customer_days=_parse_int("rfm_new_customer_days", raw["rfm_new_customer_days"], 0),
        cluster_k_min=_parse_int("cluster_k_min", raw["cluster_k_min"], 2),
        cluster_k_max=_parse_int("cluster_k_max", raw["cluster_k_max"], 2),
        cluster_k=_parse_k(raw["cluster_k"]),
        source=_parse_choice("source", raw["source"], SOURCES),
        import_dir=_resolve_path(raw["import_dir"]),
        import_layout=_parse_choice("import_layout", raw["import_layout"], IMPORT_LAYOUTS),
        import_transactions_pattern=raw["import_transactions_pattern"] or "transactions*",
        import_column_customer=_parse_required_column("import_column_customer", raw["import_column_customer"]),
        import_column_date=_parse_required_column("import_column_date", raw["import_column_date"]),
        import_column_amount=_parse_required_column("import_column_amount", raw["import_column_amount"]),
        import_column_order=_parse_optional_column(raw["import_column_order"]),
        import_column_product=_parse_optional_column(raw["import_column_product"]),
        import_column_quantity=_parse_optional_column(raw["import_column_quantity"]),
        import_customer_platform=_parse_exact("import_customer_platform", raw["import_customer_platform"], PLATFORMS),
        import_customer_channel=_parse_exact("import_customer_channel", raw["import_customer_channel"], CHANNELS),
        import_customer_region=_parse_exact("import_customer_region", raw["import_customer_region"], REGIONS),
        import_csv_delimiter=_parse_delimiter(raw["import_csv_delimiter"]),
        import_csv_header=_parse_bool("import_csv_header", raw["import_csv_header"]),
        import_csv_encoding=_parse_choice("import_csv_encoding", raw["import_csv_encoding"], CSV_ENCODINGS),
        import_date_formats=_parse_date_formats(raw["import_date_format"]),
        import_decimal_separator=_parse_choice(
            "import_decimal_separator", raw["import_decimal_separator"], (".", ",")
        ),
        import_column_map=_parse_column_map(raw["import_column_map"]),
        import_memory_limit=_parse_memory_limit(raw["import_memory_limit"]),
        api_host=raw["api_host"].strip() or "127.0.0.1",
        api_port=_parse_port(raw["api_port"]),
        api_key=_parse_api_key(raw["api_key"]),
        api_max_body_bytes=int(_parse_float("api_max_body_mb", raw["api_max_body_mb"], 0.001, 1024.0) * 1024 * 1024),
    )
    unknown = set(overrides) - {f.name for f in fields(Settings)}
    if unknown:
        raise SettingsError(f"unknown settings: {sorted(unknown)}")
    settings = Settings(**{**settings.__dict__, **overrides})
    if settings.cluster_k_min > settings.cluster_k_max:
        raise SettingsError(
            f"PIPELINE_CLUSTER_K_MIN={settings.cluster_k_min} is above "
            f"PIPELINE_CLUSTER_K_MAX={settings.cluster_k_max}"
        )
    # the start date is the simulator's: imported files bring their own history
    if settings.source == "synthetic" and settings.as_of < settings.start_date:
        raise SettingsError(
            f"as-of date {settings.as_of} is before the start of history {settings.start_date}"
        )
    return settings

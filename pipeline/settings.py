"""Every knob of the pipeline, in one place, grouped by the part of the pipeline that owns it.

Each setting is one field of a group: its environment variable (``PIPELINE_`` + the group's
prefix + the field name, upper case), its one default and its help text, which the README's
settings table repeats (a test checks it). Defaults are written as one would write them in the
environment and go through the same parsing, so the documented default is the parsed one.

pydantic-settings reads the variables and pydantic parses them. Settings are read when a run
starts (``load()``), not at import, so tests and runs can point them elsewhere with the
environment. Relative paths are resolved against the repository root, so dbt (which runs inside
``dbt_project/``) and Python agree on the same warehouse file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from pipeline.paths import Paths

REPO_ROOT = Path(__file__).resolve().parent.parent

CLTV_SPENDS = ("margin", "revenue")
CLTV_TRANSACTION_MODELS = ("bgnbd", "mbgnbd", "pareto_nbd")
SOURCES = ("synthetic", "files")
IMPORT_LAYOUTS = ("atliq", "transactions")
CSV_ENCODINGS = ("utf-8", "utf-16", "latin-1")
ENGINES = ("duckdb", "spark")
# dim_customer's accepted values
PLATFORMS = ("Brick & Mortar", "E-Commerce")
CHANNELS = ("Direct", "Distributor", "Retailer")
REGIONS = ("APAC", "EU", "NA", "LATAM")


class SettingsError(ValueError):
    """A setting in the environment has a value the pipeline cannot use."""


# --- value types: what pydantic does not parse the way a shell user writes it -----------------
# A validator raising ValueError gives a phrase that follows "VARIABLE='value' "; one raising
# SettingsError gives the whole message.


def _date(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    if raw.strip().lower() == "today":
        return dt.datetime.now(dt.timezone.utc).date()
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError("is not a date (YYYY-MM-DD)") from None


def _choice(choices: tuple[str, ...], *, exact: bool = False):
    def parse(raw: Any) -> str:
        value = raw if exact else str(raw).strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return BeforeValidator(parse)


def _choices(choices: tuple[str, ...]):
    """A comma-separated, non-empty list of distinct choices, in the given order."""

    def parse(raw: Any) -> tuple[str, ...]:
        if not isinstance(raw, str):
            return tuple(raw)
        values = tuple(v.strip().lower() for v in raw.split(",") if v.strip())
        if not values or set(values) - set(choices) or len(set(values)) < len(values):
            raise ValueError(f"must list distinct names among {', '.join(choices)}")
        return values

    return BeforeValidator(parse)


def _between(low: float, high: float):
    def check(value: float) -> float:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return AfterValidator(check)


def _optional(raw: Any) -> Any:
    """'none' (any case) or nothing means unset."""
    return None if isinstance(raw, str) and raw.strip().lower() in ("", "none") else raw


def _path(value: Path) -> Path:
    path = value.expanduser()
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


def _required_column(env: str):
    def check(raw: Any) -> Any:
        # column names are kept as written (spaces included)
        if raw == "":
            raise SettingsError(f"{env} must name a column")
        return raw

    return BeforeValidator(check)


def _delimiter(raw: Any) -> str:
    value = "\t" if str(raw).lower() == "tab" else str(raw)
    if len(value) != 1:
        raise ValueError("must be one character or 'tab'")
    return value


def _date_formats(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, str):
        return tuple(raw)
    formats = tuple(f.strip() for f in raw.split(";") if f.strip())
    if not formats or any("%" not in f for f in formats):
        raise ValueError("is not a strptime format like %Y-%m-%d")
    return formats


def _column_map(raw: Any) -> tuple[tuple[str, str, str], ...]:
    if not isinstance(raw, str):
        return tuple(tuple(m) for m in raw)
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


def _memory_limit(raw: Any) -> str:
    value = str(raw).strip().upper().replace(" ", "")
    if not re.fullmatch(r"\d+(\.\d+)?(KB|MB|GB|TB|KIB|MIB|GIB|TIB)", value):
        raise ValueError("is not a size like 192MB or 2GB")
    return value


def _duckdb_memory_limit(raw: Any) -> str:
    value = str(raw).strip().replace(" ", "")
    share = re.fullmatch(r"(\d+(\.\d+)?)%", value)
    if share:
        if not 0 < float(share.group(1)) <= 100:
            raise ValueError("is not a share of this machine's memory between 1% and 100%")
        return value
    try:
        return _memory_limit(value)
    except ValueError:
        raise ValueError("is not a size like 8GB or a share of this machine's memory like 50%")


def _jvm_memory(raw: Any) -> str:
    """A JVM heap size as Spark passes it to ``-Xmx`` (a number and k, m, g or t), at least
    512m: Spark refuses a driver below about 450 MiB."""
    value = str(raw).strip().lower()
    match = re.fullmatch(r"(\d+)([kmgt])", value)
    if not match:
        raise ValueError("is not a JVM memory size like 4g or 512m")
    number, unit = int(match.group(1)), match.group(2)
    if number * 1024 ** "kmgt".index(unit) < 512 * 1024:
        raise ValueError("must be at least 512m")
    return value


def _api_key(raw: Any) -> str | None:
    value = _optional(raw.strip() if isinstance(raw, str) else raw)
    if value is not None and (len(value) < 16 or not value.isprintable()):
        raise SettingsError(
            "PIPELINE_API_KEY must be at least 16 printable characters (or 'none' to refuse writes)"
        )
    return value


def _k(raw: Any) -> Any:
    return None if isinstance(raw, str) and raw.strip().lower() == "auto" else raw


Date = Annotated[dt.date, BeforeValidator(_date)]
Folder = Annotated[Path, AfterValidator(_path)]
Count = Annotated[int, Field(ge=1)]


def setting(default: str, help: str, **constraints: Any) -> Any:
    """One setting: its default as written in the environment, and its help."""
    return Field(default, description=help, **constraints)


# --- the groups --------------------------------------------------------------------------------


class _Group(BaseSettings):
    """Settings of one owner. Read only from the mapping ``load()`` is given (see _Environment)."""

    model_config = SettingsConfigDict(
        env_prefix="PIPELINE_", frozen=True, extra="ignore", validate_default=True
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings,)

    @classmethod
    def env_name(cls, field: str) -> str:
        return (cls.model_config["env_prefix"] + field).upper()

    @classmethod
    def settings_fields(cls) -> list[str]:
        return [name for name, f in cls.model_fields.items() if f.description]


class RunSettings(_Group):
    """The run itself: where its files go, which data it reads, as of which day, and when."""

    data_dir: Folder = setting(
        "data", "Folder for runtime files; the warehouse is <data_dir>/warehouse.duckdb."
    )
    as_of: Date = setting(
        "today",
        "As-of date of the refresh (YYYY-MM-DD or 'today', UTC); no data after it is visible.",
    )
    source: Annotated[str, _choice(SOURCES)] = setting(
        "synthetic",
        "Where raw.* comes from: 'synthetic' (the seeded simulator) or 'files' (your own CSV/Parquet files).",
    )
    schedule_anchor: Date = setting(
        "2026-01-01",
        "The 15-day schedule runs on this date and every 15th day after (and before) it.",
    )


class SimulationSettings(_Group):
    """The seeded simulator (PIPELINE_SOURCE=synthetic)."""

    customers: Count = setting(
        "20000", "Scale of the synthetic data: customers acquired over the history."
    )
    seed: Annotated[int, Field(ge=0)] = setting("42", "Random seed of the simulator.")
    start_date: Date = setting(
        "2023-09-01",
        "First day of the simulated history (AtliQ fiscal years start on 1 September); imported "
        "files bring their own history and ignore it.",
    )
    history_days: Count = setting(
        "1095", "Days after the start date over which simulated customers are acquired."
    )
    truth_horizon_days: Annotated[int, Field(ge=0)] = setting(
        "365",
        "Days the simulator continues past the as-of date into the truth schema, to score models.",
    )


class ModelSettings(_Group):
    """The customer models: RFM, CLTV and its backtest, clusters."""

    cltv_spend: Annotated[str, _choice(CLTV_SPENDS)] = setting(
        "margin",
        "Spend the Gamma-Gamma model values: 'margin' (gross margin, what the business keeps) or "
        "'revenue' (net sales).",
    )
    cltv_discount_rate: Annotated[float, _between(0.0, 1.0)] = setting(
        "0.10", "Annual discount rate of the 12-month CLV."
    )
    cltv_transaction_models: Annotated[
        tuple[str, ...], NoDecode, _choices(CLTV_TRANSACTION_MODELS)
    ] = setting(
        "bgnbd,mbgnbd,pareto_nbd",
        "Comma-separated purchase-count models the backtest chooses from: bgnbd, mbgnbd, pareto_nbd.",
    )
    backtest_holdout_days: Count = setting(
        "180", "Days before the as-of date held out to backtest the CLTV model every refresh."
    )
    rfm_new_customer_days: Annotated[int, Field(ge=0)] = setting(
        "90",
        "RFM segment New Customers: first order within this many days up to the as-of date "
        "(checked before the scores; 0 = off).",
    )
    cluster_k_min: Annotated[int, Field(ge=2)] = setting("2", "Smallest number of clusters tried.")
    cluster_k_max: Annotated[int, Field(ge=2)] = setting("10", "Largest number of clusters tried.")
    # None = choose by silhouette
    cluster_k: Annotated[Count | None, BeforeValidator(_k)] = setting(
        "auto",
        "Number of clusters: 'auto' chooses by silhouette over the range, a number overrides it.",
    )
    cluster_fit_sample: Annotated[int, Field(ge=2)] = setting(
        "200000",
        "Customers the clusters are fit on: a seeded sample of this many when there are more "
        "(everyone is then assigned, batch by batch, inside the engine).",
    )


class ImportSettings(_Group):
    """The file import (PIPELINE_SOURCE=files) and the API's writes, which feed it."""

    model_config = SettingsConfigDict(env_prefix="PIPELINE_IMPORT_")

    dir: Folder = setting(
        "data/import",
        "Folder the file import reads (PIPELINE_SOURCE=files); new files are picked up by the next refresh.",
    )
    layout: Annotated[str, _choice(IMPORT_LAYOUTS)] = setting(
        "atliq",
        "Layout of the imported files: 'atliq' (AtliQ tables) or 'transactions' (one transactions file or several).",
    )
    transactions_pattern: Annotated[str, BeforeValidator(lambda raw: raw or "transactions*")] = (
        setting(
            "transactions*",
            "File-name pattern (glob, without extension) of the transactions files; .csv and .parquet match.",
        )
    )
    column_customer: Annotated[str, _required_column("PIPELINE_IMPORT_COLUMN_CUSTOMER")] = setting(
        "customer_id", "Transactions layout: column with the customer id."
    )
    column_date: Annotated[str, _required_column("PIPELINE_IMPORT_COLUMN_DATE")] = setting(
        "order_date", "Transactions layout: column with the order date."
    )
    column_amount: Annotated[str, _required_column("PIPELINE_IMPORT_COLUMN_AMOUNT")] = setting(
        "amount",
        "Transactions layout: column with the amount (net revenue of the order or order line).",
    )
    column_order: Annotated[str | None, BeforeValidator(_optional)] = setting(
        "none",
        "Transactions layout: optional column with the order id ('none': every row is one order).",
    )
    column_product: Annotated[str | None, BeforeValidator(_optional)] = setting(
        "none",
        "Transactions layout: optional column with the product code ('none': one product, ALL).",
    )
    column_quantity: Annotated[str | None, BeforeValidator(_optional)] = setting(
        "none",
        "Transactions layout: optional quantity column, validated (numeric, not negative) but not loaded.",
    )
    customer_platform: Annotated[str, _choice(PLATFORMS, exact=True)] = setting(
        "E-Commerce",
        "Transactions layout: platform given to every customer (Brick & Mortar or E-Commerce).",
    )
    customer_channel: Annotated[str, _choice(CHANNELS, exact=True)] = setting(
        "Direct",
        "Transactions layout: channel given to every customer (Direct, Distributor or Retailer).",
    )
    customer_region: Annotated[str, _choice(REGIONS, exact=True)] = setting(
        "APAC",
        "Transactions layout: region given to every customer (APAC, EU, NA or LATAM); market and "
        "sub_zone are Unknown.",
    )
    csv_delimiter: Annotated[str, BeforeValidator(_delimiter)] = setting(
        ",", "CSV field delimiter (one character; 'tab' for a tab)."
    )
    csv_header: bool = setting(
        "true",
        "Whether CSV files start with a header row; without one, columns are named column0, column1, ...",
    )
    csv_encoding: Annotated[str, _choice(CSV_ENCODINGS)] = setting(
        "utf-8", "Encoding of CSV files: utf-8, utf-16 or latin-1."
    )
    # the formats tried in order
    date_format: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_date_formats)] = setting(
        "%Y-%m-%d",
        "strptime format(s) of dates in the files; several separated by ';' are tried in order.",
    )
    decimal_separator: Annotated[str, _choice((".", ","))] = setting(
        ".", "Decimal separator of numbers in CSV files: '.' or ','."
    )
    # (table, canonical column, the file's column) for headers named otherwise
    column_map: Annotated[
        tuple[tuple[str, str, str], ...], NoDecode, BeforeValidator(_column_map)
    ] = setting(
        "none",
        "AtliQ layout: columns named otherwise, as table.column=file column pairs separated by ';' "
        "(e.g. manufacturing_costs.cost_year=Year).",
    )
    memory_limit: Annotated[str, BeforeValidator(_memory_limit)] = setting(
        "192MB",
        "DuckDB memory limit while importing files (e.g. 192MB, 2GB); beyond it DuckDB spills to disk.",
    )


class ApiSettings(_Group):
    """The HTTP API (make api)."""

    model_config = SettingsConfigDict(env_prefix="PIPELINE_API_")

    host: Annotated[str, BeforeValidator(lambda raw: str(raw).strip() or "127.0.0.1")] = setting(
        "127.0.0.1",
        "Address the HTTP API (make api) listens on; the default serves this machine only.",
    )
    port: Annotated[int, Field(ge=1, le=65535)] = setting(
        "8000", "Port of the HTTP API (make api)."
    )
    # None = writes refused
    key: Annotated[str | None, BeforeValidator(_api_key)] = setting(
        "none",
        "Key the API's writes (POST /transactions) need in the X-API-Key header; 'none': writes are refused.",
    )
    max_body_mb: Annotated[float, _between(0.001, 1024.0)] = setting(
        "5",
        "Largest request body the API reads, in MiB; larger requests get 413 before any parsing.",
    )

    @property
    def max_body_bytes(self) -> int:
        return round(self.max_body_mb * 1024 * 1024)


class EngineSettings(_Group):
    """The engine that stores the tables and runs dbt and the per-customer scoring."""

    engine: Annotated[str, _choice(ENGINES)] = setting(
        "duckdb",
        "Engine of the whole refresh: 'duckdb' (one machine, one warehouse file) or 'spark' "
        "(Parquet tables in <data_dir>/spark, dbt-spark, scoring inside Spark; needs the spark extra and Java 17).",
    )
    spark_master: Annotated[str, BeforeValidator(lambda raw: str(raw).strip() or "local[*]")] = (
        setting(
            "local[*]",
            "Spark master URL with PIPELINE_ENGINE=spark: 'local[*]' runs Spark in the pipeline's "
            "processes on every core; a cluster's URL (e.g. spark://host:7077) runs it there.",
        )
    )
    duckdb_memory_limit: Annotated[str, BeforeValidator(_duckdb_memory_limit)] = setting(
        "50%",
        "DuckDB's memory limit for the warehouse, dbt's builds included (e.g. 8GB, or a share of "
        "this machine's memory like 50%); beyond it DuckDB spills to disk. DuckDB's own default, "
        "80%, leaves too little for the refresh's Python beside it at millions of customers.",
    )
    spark_driver_memory: Annotated[str, BeforeValidator(_jvm_memory)] = setting(
        "4g",
        "Java heap of each Spark driver with PIPELINE_ENGINE=spark, the refresh's and dbt's (both "
        "may run at once; with local[*] the driver runs the executors too): a number and k, m, g "
        "or t, at least 512m. Spark's own default, 1g, ran out at 1M customers.",
    )


GROUPS: dict[str, type[_Group]] = {
    "run": RunSettings,
    "simulation": SimulationSettings,
    "models": ModelSettings,
    "imports": ImportSettings,
    "api": ApiSettings,
    "engine": EngineSettings,
}


@dataclass(frozen=True)
class Settings:
    """The settings of one run, by owner."""

    run: RunSettings
    simulation: SimulationSettings
    models: ModelSettings
    imports: ImportSettings
    api: ApiSettings
    engine: EngineSettings

    # the three every step reads
    @property
    def as_of(self) -> dt.date:
        return self.run.as_of

    @property
    def data_dir(self) -> Path:
        return self.run.data_dir

    @property
    def source(self) -> str:
        return self.run.source

    @property
    def paths(self) -> Paths:
        """Every runtime folder and file, derived from PIPELINE_DATA_DIR."""
        return Paths(self.data_dir)

    @property
    def warehouse(self) -> Path:
        return self.paths.warehouse

    def by_name(self) -> dict[str, Any]:
        """Every setting by its name in SETTINGS."""
        return {
            name: getattr(getattr(self, owner), field) for name, (owner, field) in _FIELDS.items()
        }

    def dbt_vars(self) -> dict[str, Any]:
        """Every var the dbt models read, passed with ``--vars`` (dbt_project.yml has no defaults)."""
        dbt_vars = {
            "as_of_date": self.as_of.isoformat(),
            "holdout_days": self.models.backtest_holdout_days,
            "cltv_spend": self.models.cltv_spend,
        }
        if self.engine.engine == "spark":
            # the folder of the Parquet tables Python writes (raw.*, analytics.*), which the
            # on-run-start hook registers as Spark tables (macros/register_raw_parquet_tables.sql)
            dbt_vars["spark_tables_dir"] = str(self.paths.spark_tables)
        return dbt_vars


# --- the README's table ------------------------------------------------------------------------


class Setting(NamedTuple):
    env: str
    default: str
    help: str


# Every setting by its variable's name without PIPELINE_, lower case ('import_dir'): the README's
# settings table is checked against it by a test, and load()'s keyword overrides use these names.
SETTINGS: dict[str, Setting] = {
    group.env_name(name).removeprefix("PIPELINE_").lower(): Setting(
        group.env_name(name), group.model_fields[name].default, group.model_fields[name].description
    )
    for group in GROUPS.values()
    for name in group.settings_fields()
}
_FIELDS: dict[str, tuple[str, str]] = {
    group.env_name(name).removeprefix("PIPELINE_").lower(): (attribute, name)
    for attribute, group in GROUPS.items()
    for name in group.settings_fields()
}


# --- reading them ------------------------------------------------------------------------------


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``, so
    ``load(environ={...})`` sees exactly that mapping (a private hook of pydantic-settings 2.16,
    the one its .env source overrides too; tests/test_settings.py fails if it moves)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


# pydantic's own errors, as the phrase after "VARIABLE='value' "
_PHRASES = {
    "int_parsing": "is not an integer",
    "int_from_float": "is not an integer",
    "float_parsing": "is not a number",
    "bool_parsing": "must be true or false",
    "greater_than_equal": "must be >= {ge}",
    "less_than_equal": "must be <= {le}",
}


def _one_line(group: type[_Group], error: ValidationError) -> SettingsError:
    """The first problem, as one line naming the variable and the value it has."""
    first = error.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, SettingsError):
        return cause
    phrase = (
        str(cause)
        if cause is not None
        else _PHRASES.get(first["type"], first["msg"]).format(**first.get("ctx", {}))
    )
    return SettingsError(f"{group.env_name(str(first['loc'][0]))}={first['input']!r} {phrase}")


def _read(group: type[_Group], environ: Mapping[str, str]) -> _Group:
    try:
        return group(**_Environment(group, environ)())
    except ValidationError as error:
        raise _one_line(group, error) from None


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the settings from the environment; keyword overrides (typed values, named like the
    variables without PIPELINE_: ``as_of``, ``import_dir``) win, e.g. the as-of of run config."""
    env = os.environ if environ is None else environ
    unknown = set(overrides) - set(_FIELDS)
    if unknown:
        raise SettingsError(f"unknown settings: {sorted(unknown)}")
    groups = {attribute: _read(group, env) for attribute, group in GROUPS.items()}
    for attribute in groups:
        update = {
            field: overrides[name]
            for name, (owner, field) in _FIELDS.items()
            if owner == attribute and name in overrides
        }
        if update:
            groups[attribute] = groups[attribute].model_copy(update=update)
    settings = Settings(**groups)
    if settings.models.cluster_k_min > settings.models.cluster_k_max:
        raise SettingsError(
            f"PIPELINE_CLUSTER_K_MIN={settings.models.cluster_k_min} is above "
            f"PIPELINE_CLUSTER_K_MAX={settings.models.cluster_k_max}"
        )
    # the start date is the simulator's: imported files bring their own history
    if settings.source == "synthetic" and settings.as_of < settings.simulation.start_date:
        raise SettingsError(
            f"as-of date {settings.as_of} is before the start of history {settings.simulation.start_date}"
        )
    return settings


def parse_date(variable: str, raw: str) -> dt.date:
    """A date as PIPELINE_AS_OF takes it (YYYY-MM-DD or 'today'), for flags and run config."""
    try:
        return _date(raw)
    except ValueError as error:
        raise SettingsError(f"{variable}={raw!r} {error}") from None

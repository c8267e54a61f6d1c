"""Every knob of the pipeline, in one place.

Each setting has a default and an environment variable. Settings are read when a run starts
(``load()``), not at import, so tests and runs can point them elsewhere with the environment.
Relative paths are resolved against the repository root, so dbt (which runs inside
``dbt_project/``) and Python agree on the same warehouse file.
"""

from __future__ import annotations

import datetime as dt
import os
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
        "First day of the simulated history (AtliQ fiscal years start on 1 September).",
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
    "backtest_holdout_days": Setting(
        "PIPELINE_BACKTEST_HOLDOUT_DAYS",
        "180",
        "Days before the as-of date held out to backtest the CLTV model every refresh.",
    ),
    "cluster_k_min": Setting("PIPELINE_CLUSTER_K_MIN", "2", "Smallest number of clusters tried."),
    "cluster_k_max": Setting("PIPELINE_CLUSTER_K_MAX", "10", "Largest number of clusters tried."),
    "cluster_k": Setting(
        "PIPELINE_CLUSTER_K",
        "auto",
        "Number of clusters: 'auto' chooses by silhouette over the range, a number overrides it.",
    ),
}

CLTV_SPENDS = ("margin", "revenue")


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
    backtest_holdout_days: int = 180
    cluster_k_min: int = 2
    cluster_k_max: int = 10
    cluster_k: int | None = None  # None = choose by silhouette

    @property
    def warehouse(self) -> Path:
        return self.data_dir / WAREHOUSE_FILE_NAME

    def dbt_vars(self) -> dict[str, str]:
        """The settings dbt models read, passed with ``--vars``."""
        return {
            "as_of_date": self.as_of.isoformat(),
            "holdout_days": self.backtest_holdout_days,
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


def _parse_k(raw: str) -> int | None:
    return None if raw.strip().lower() == "auto" else _parse_int("cluster_k", raw, 1)


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
        backtest_holdout_days=_parse_int("backtest_holdout_days", raw["backtest_holdout_days"], 1),
        cluster_k_min=_parse_int("cluster_k_min", raw["cluster_k_min"], 2),
        cluster_k_max=_parse_int("cluster_k_max", raw["cluster_k_max"], 2),
        cluster_k=_parse_k(raw["cluster_k"]),
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
    if settings.as_of < settings.start_date:
        raise SettingsError(
            f"as-of date {settings.as_of} is before the start of history {settings.start_date}"
        )
    return settings

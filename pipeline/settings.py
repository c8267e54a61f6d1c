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
}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    customers: int
    seed: int
    start_date: dt.date
    history_days: int
    as_of: dt.date
    truth_horizon_days: int

    @property
    def warehouse(self) -> Path:
        return self.data_dir / WAREHOUSE_FILE_NAME

    def dbt_vars(self) -> dict[str, str]:
        """The settings dbt models read, passed with ``--vars``."""
        return {"as_of_date": self.as_of.isoformat()}

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
    )
    unknown = set(overrides) - {f.name for f in fields(Settings)}
    if unknown:
        raise SettingsError(f"unknown settings: {sorted(unknown)}")
    settings = Settings(**{**settings.__dict__, **overrides})
    if settings.as_of < settings.start_date:
        raise SettingsError(
            f"as-of date {settings.as_of} is before the start of history {settings.start_date}"
        )
    return settings

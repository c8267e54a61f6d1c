"""Settings: defaults, environment overrides, clear errors, and the README documents them all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline import settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_load_without_any_environment():
    current = settings.load(environ={})
    assert current.simulation.customers == 20_000
    assert current.simulation.seed == 42
    assert current.as_of == dt.datetime.now(dt.timezone.utc).date()
    assert current.warehouse == settings.REPO_ROOT / "data" / "warehouse.duckdb"


def test_environment_overrides_and_relative_paths_resolve_against_the_repo():
    current = settings.load(
        environ={
            "PIPELINE_CUSTOMERS": "123",
            "PIPELINE_AS_OF": "2026-01-15",
            "PIPELINE_DATA_DIR": "x/y",
        }
    )
    assert current.simulation.customers == 123
    assert current.as_of == dt.date(2026, 1, 15)
    assert current.warehouse == settings.REPO_ROOT / "x" / "y" / "warehouse.duckdb"
    assert current.dbt_vars() == {
        "as_of_date": "2026-01-15",
        "holdout_days": 180,
        "cltv_spend": "margin",
    }


def test_keyword_overrides_win_over_the_environment():
    current = settings.load(environ={"PIPELINE_AS_OF": "2026-01-15"}, as_of=dt.date(2026, 2, 1))
    assert current.as_of == dt.date(2026, 2, 1)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PIPELINE_CUSTOMERS", "many", "PIPELINE_CUSTOMERS='many' is not an integer"),
        ("PIPELINE_CUSTOMERS", "0", "must be >= 1"),
        ("PIPELINE_AS_OF", "24/11/2026", "PIPELINE_AS_OF='24/11/2026' is not a date"),
        ("PIPELINE_AS_OF", "2020-01-01", "before the start of history"),
        ("PIPELINE_CLTV_SPEND", "profit", "must be one of margin, revenue"),
        ("PIPELINE_CLTV_DISCOUNT_RATE", "2", "must be between 0.0 and 1.0"),
        ("PIPELINE_CLUSTER_K", "zero", "is not an integer"),
        ("PIPELINE_CLUSTER_K_MIN", "8", "above PIPELINE_CLUSTER_K_MAX"),
        ("PIPELINE_ENGINE", "flink", "PIPELINE_ENGINE='flink' must be one of duckdb, spark"),
        (
            "PIPELINE_SPARK_DRIVER_MEMORY",
            "4gb",
            "PIPELINE_SPARK_DRIVER_MEMORY='4gb' is not a JVM memory size like 4g or 512m",
        ),
        ("PIPELINE_SPARK_DRIVER_MEMORY", "100m", "must be at least 512m"),
    ],
)
def test_bad_values_name_the_variable(variable, value, message):
    environ = {variable: value, "PIPELINE_CLUSTER_K_MAX": "5"}
    with pytest.raises(settings.SettingsError, match=message):
        settings.load(environ=environ)


def test_spark_driver_memory_is_written_as_the_jvm_reads_it():
    for raw, parsed in [(" 6G ", "6g"), ("512m", "512m"), ("1t", "1t")]:
        current = settings.load(environ={"PIPELINE_SPARK_DRIVER_MEMORY": raw})
        assert current.engine.spark_driver_memory == parsed


def test_readme_documents_every_setting_with_its_default():
    readme = README.read_text()
    for setting in settings.SETTINGS.values():
        assert f"| `{setting.env}` | `{setting.default}` |" in readme, setting.env

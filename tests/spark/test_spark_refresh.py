"""The whole refresh on Spark (PIPELINE_ENGINE=spark) publishes the same marts as on DuckDB.

One seeded synthetic data set (PIPELINE_SPARK_TEST_CUSTOMERS customers, 5,000 by default) goes
through the same Dagster job twice: once on DuckDB, once on Spark (raw Parquet, dbt-spark, the
Python models reading and writing Parquet through Spark, the snapshot published from Parquet).
The BI snapshots must hold the same marts: the same tables, columns and rows; integers, decimals
(money), strings (keys, segments), dates and booleans exactly; floating-point numbers (model
scores, fitted parameters, averages) to 1e-9 relative; quotients of decimals (doubles on DuckDB,
decimals of 6 places or more on Spark) to 1e-6 (tests/spark/compare_snapshots.py).

Part of ``make test-spark`` (needs the spark extra and Java 17; see test_spark_equivalence.py).
"""

from __future__ import annotations

import datetime as dt
import os
import time

import dagster as dg
import duckdb
import pytest
from dbt.config.profile import Profile, read_profile
from dbt.config.renderer import ProfileRenderer
from dbt_common.context import set_invocation_context

from pipeline import settings
from pipeline.defs.definitions import build_definitions
from pipeline.defs.resources import build_resources
from tests.spark.compare_snapshots import differences
from tests.spark.test_spark_equivalence import pytestmark  # noqa: F401  (skips without Spark)
from tests.standard_refresh import run_refresh

AS_OF = "2026-11-24"
RTOL = 1e-9
CUSTOMERS = os.environ.get("PIPELINE_SPARK_TEST_CUSTOMERS", "5000")
CLUSTER_FIT_SAMPLE = str(int(CUSTOMERS) * 3 // 4)
# not the default (4g), so the tests below see the setting reach both Spark drivers
DRIVER_MEMORY = "3g"
GIB = 1024**3


def _refresh(root, engine: str, monkeypatch) -> tuple[settings.Settings, object, float]:
    data_dir = root / engine
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("PIPELINE_CUSTOMERS", CUSTOMERS)
    monkeypatch.setenv("PIPELINE_ENGINE", engine)
    # fewer than the customers: both engines fit the clusters on the engine's seeded sample
    monkeypatch.setenv("PIPELINE_CLUSTER_FIT_SAMPLE", CLUSTER_FIT_SAMPLE)
    monkeypatch.setenv("PIPELINE_SPARK_DRIVER_MEMORY", DRIVER_MEMORY)
    monkeypatch.setenv("DBT_TARGET_PATH", str(root / f"dbt_target_{engine}"))
    current = settings.load(as_of=dt.date.fromisoformat(AS_OF))
    started = time.perf_counter()
    result = run_refresh(build_definitions(current), AS_OF)
    return current, result, time.perf_counter() - started


@pytest.fixture(scope="module")
def refreshes(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark_refresh")
    out = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for engine in ("duckdb", "spark"):
            current, result, seconds = _refresh(root, engine, monkeypatch)
            failures = [e.message for e in result.all_events if e.is_step_failure]
            assert result.success, f"the {engine} refresh failed: {failures}"
            out[engine] = current
            print(f"\n{engine} refresh of {CUSTOMERS} customers: {seconds:.0f} s")
    return out


def test_spark_refresh_publishes_the_same_marts_as_duckdb(refreshes):
    problems = differences(
        refreshes["duckdb"].paths.serve, refreshes["spark"].paths.serve, rtol=RTOL
    )
    assert not problems, "\n".join(problems)


def test_spark_refresh_writes_no_duckdb_warehouse_and_publishes_views_over_parquet(refreshes):
    spark = refreshes["spark"]
    assert not spark.paths.warehouse.exists()
    assert any((spark.paths.spark / "warehouse" / "marts.db").glob("*/*.parquet"))
    current = spark.paths.serve / "current"
    with duckdb.connect(str(current / "customer_analytics.duckdb"), read_only=True) as conn:
        kinds = dict(
            conn.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_schema = 'marts'"
            ).fetchall()
        )
        (customers,) = conn.execute("select count(*) from marts.customer_single_view").fetchone()
    assert set(kinds.values()) == {"VIEW"}
    assert {p.stem for p in (current / "parquet").glob("*.parquet")} == set(kinds)
    assert customers > 0


def test_the_refresh_spark_driver_has_the_driver_memory_setting_as_its_heap(refreshes):
    from pyspark.sql import SparkSession

    # the session the refresh's Python steps started in this process (getOrCreate returns it)
    context = SparkSession.builder.getOrCreate().sparkContext
    assert context.getConf().get("spark.driver.memory") == DRIVER_MEMORY
    heap = context._jvm.java.lang.Runtime.getRuntime().maxMemory()
    assert 2 * GIB < heap <= 3 * GIB, f"the JVM's heap is {heap / GIB:.2f} GiB"


def test_dbt_spark_session_gets_the_driver_memory_setting(refreshes, monkeypatch):
    """dbt-spark's session method passes profiles.yml's server_side_parameters to its
    SparkSession builder before its JVM starts; the dbt resource exports the setting there."""
    dbt = build_resources(refreshes["spark"])["dbt"]
    for name in ("WAREHOUSE", "SPARK_DIR", "SPARK_MASTER", "SPARK_DRIVER_MEMORY"):
        monkeypatch.setenv(f"PIPELINE_{name}", "")  # what the resource sets is undone after
    monkeypatch.delenv("PIPELINE_SPARK_DRIVER_MEMORY")

    def rendered() -> str:
        set_invocation_context(dict(os.environ))
        profile = read_profile(dbt.profiles_dir or dbt.project_dir)["customer_analytics"]
        _, target = Profile.render_profile(
            profile, "customer_analytics", "spark", ProfileRenderer({})
        )
        return target["server_side_parameters"]["spark.driver.memory"]

    # a hand-run dbt without the variable gets the setting's default
    assert rendered() == settings.SETTINGS["spark_driver_memory"].default
    dbt.setup_for_execution(dg.build_init_resource_context())
    assert rendered() == DRIVER_MEMORY

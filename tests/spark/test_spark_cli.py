"""The CLI in Spark mode: a failed refresh is recorded in ops.run_failures of Spark mode's own
file, and no DuckDB warehouse appears. The import fails before any Spark step (it stages the
files with DuckDB), so no JVM starts: quick."""

from __future__ import annotations

from tests.spark.test_spark_equivalence import pytestmark  # noqa: F401  (skips without Spark)
from tests.test_cli import check_failed_import


def test_a_failed_import_on_spark_ends_with_its_cause_and_is_recorded(tmp_path, monkeypatch, capfd):
    check_failed_import("spark", tmp_path, monkeypatch, capfd)


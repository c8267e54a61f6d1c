"""The CLI in Spark mode: a failed refresh is recorded in ops.run_failures of Spark mode's own
file, and no DuckDB warehouse appears. The import fails before any Spark step (it stages the
files with DuckDB), so no JVM starts: quick."""

from __future__ import annotations

from pipeline import cli
from tests.spark.test_spark_equivalence import pytestmark  # noqa: F401  (skips without Spark)
from tests.test_cli import check_failed_import


def test_a_failed_import_on_spark_ends_with_its_cause_and_is_recorded(tmp_path, monkeypatch, capfd):
    check_failed_import("spark", tmp_path, monkeypatch, capfd)


def test_an_old_java_stops_the_refresh_before_any_work(tmp_path, monkeypatch, capsys):
    java_home = tmp_path / "java8"
    (java_home / "bin").mkdir(parents=True)
    java = java_home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'java version \"1.8.0_392\"' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    monkeypatch.setenv("PIPELINE_ENGINE", "spark")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))

    assert cli.main(["refresh"]) == cli.EXIT_BAD_SETTINGS
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == (
        f"Settings error: PIPELINE_ENGINE=spark needs Java 17 or later ({java} is Java 8): "
        "install one (e.g. apt-get install openjdk-17-jre-headless) or point JAVA_HOME at it"
    )
    assert not (tmp_path / "data" / "dagster_home").exists()  # nothing started

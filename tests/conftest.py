"""Shared fixtures. Every test runs with its runtime files in a temp dir, never in the working tree."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

# dagster-dbt reads the manifest when pipeline.definitions is imported; `make test` prepares it,
# this covers a bare `pytest` run.
from pipeline.project import dbt_project  # noqa: E402

if not dbt_project.manifest_path.exists():
    dbt_project.preparer.prepare(dbt_project)

# A fixed as-of date, so tests do not depend on the day they run.
TEST_AS_OF = "2026-11-24"


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Point every setting that touches disk at the test's temp dir, with a small scale."""
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PIPELINE_CUSTOMERS", "1500")
    monkeypatch.setenv("PIPELINE_AS_OF", TEST_AS_OF)
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt_target"))
    return tmp_path

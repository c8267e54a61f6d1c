"""Shared fixtures. Every test runs with its runtime files in a temp dir, never in the working tree."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
# dbt beside this Python, for `.venv/bin/python -m pytest` without the venv on PATH.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

# dagster-dbt reads the manifest when pipeline.defs.definitions is imported; `make test` prepares it,
# this covers a bare `pytest` run, and a manifest older than the dbt files it was parsed from
# (which fails later with an unhelpful KeyError on the new model).
from pipeline.project import dbt_project  # noqa: E402


def _manifest_is_stale() -> bool:
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    sources = [p for p in dbt_project.project_dir.rglob("*") if p.suffix in {".sql", ".yml", ".csv"}
               and "target" not in p.parts and "dbt_packages" not in p.parts]
    return max(p.stat().st_mtime for p in sources) > manifest.stat().st_mtime


if _manifest_is_stale():
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

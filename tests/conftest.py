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
# (which fails later with an unhelpful KeyError on the new model). The check names the project
# through pipeline.dbt_runner, which does not import Dagster: pytest-xdist's controller process
# loads this file too, and runs no test (importing dagster-dbt there cost ~4 s of CPU).
from pipeline.dbt_runner import PROJECT_DIR  # noqa: E402


def _manifest_is_stale() -> bool:
    manifest = PROJECT_DIR / "target" / "manifest.json"  # DbtProject's default target path
    if not manifest.exists():
        return True
    sources = [
        p
        for p in PROJECT_DIR.rglob("*")
        if p.suffix in {".sql", ".yml", ".csv"}
        and "target" not in p.parts
        and "dbt_packages" not in p.parts
    ]
    return max(p.stat().st_mtime for p in sources) > manifest.stat().st_mtime


if _manifest_is_stale():
    from pipeline.project import dbt_project

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


@pytest.fixture(scope="session")
def standard_refresh(tmp_path_factory):
    """Two seeded full refreshes into one warehouse (tests/standard_refresh.py), once per
    session, for every module that only reads what a refresh produced."""
    from tests.standard_refresh import two_refreshes

    return two_refreshes(tmp_path_factory)


# --- parallel runs (`make test` runs pytest-xdist with --dist loadgroup) -----------------------
# Module fixtures (a refresh, a dbt build) must run once, so each module is one unit of work for
# a worker; modules that read the session's standard refresh form one unit with it. Units start
# longest first, so the two workers of a 2-core machine end at about the same time. (The first
# two share their first refresh, tests/standard_refresh.py: one runs it while the other waits.)
SHARED_GROUPS = {
    "tests.test_end_to_end": "standard_refresh",
    "tests.test_dashboard": "standard_refresh",
}
LONGEST_FIRST = [
    "tests.test_operations",
    "standard_refresh",
    "tests.test_own_data",
    "tests.test_monthly_data",
    "tests.dbt.test_insight_marts",
    "tests.api.test_api",
    "tests.test_serving",
    "tests.test_dbt_overhead",
    "tests.dbt.test_customer_summary",
]


def pytest_configure(config):
    # pytest-xdist (3.x) by default hands out the units by their number of tests, most first,
    # which started the operations' ~100 s sequence (14 tests) after a dozen quick modules;
    # without its reordering, units go out in the order sorted below.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into node ids
def pytest_collection_modifyitems(config, items):
    def group(item) -> str:
        module = item.module.__name__
        return SHARED_GROUPS.get(module, module)

    for item in items:
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group(item)))

    def rank(item) -> int:
        name = group(item)
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    # stable: each module's tests stay together and in order (module fixtures are set up once)
    items.sort(key=rank)

"""The HTML dashboard: built by the session's standard refresh, rendered in headless Chromium.

The browser test needs Debian's ``chromium`` (.ci/run installs it); without it, it skips.
Its screenshot lands in test-artifacts/dashboard.png for CI to keep.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline import settings
from pipeline.publish.dashboard import build_dashboard
from tests.standard_refresh import AS_OF

pytestmark = pytest.mark.slow  # dbt or a whole refresh: not in `make test-fast`

ARTIFACTS = settings.REPO_ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def refreshed(standard_refresh):
    """The session's standard refresh (tests/standard_refresh.py): its last refresh, as of
    AS_OF, wrote serve/dashboard.html."""
    return standard_refresh.settings, standard_refresh.result


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    return path


def run_chromium(html: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            *args,
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_dashboard_is_written_beside_the_snapshot(refreshed):
    current, result = refreshed
    path = current.data_dir / "serve" / "dashboard.html"
    assert path.exists()
    assert not list(path.parent.glob(".dashboard.html.*.tmp"))
    text = path.read_text()
    # self-contained: plotly.js inline exactly once, no script fetched from anywhere
    assert text.count('<script type="text/javascript">/**') == 1 or "plotly.js v" in text
    assert not re.search(r"<script[^>]+src=", text)
    assert f"As of {AS_OF}" in text
    # every chart on the page's template (plotly_white), which comes with each figure
    charts = int(re.search(r'data-charts="(\d+)"', text).group(1))
    assert text.count('"plot_bgcolor":"white"') == charts
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["serve", "dashboard"]) in materialized


def test_dashboard_of_an_empty_warehouse_says_what_is_missing():
    import plotly.io as pio

    default = pio.templates.default
    with duckdb.connect() as conn:
        page = build_dashboard(conn)
    assert pio.templates.default == default  # the page's template is not left as the default
    assert 'data-charts="0"' in page
    assert "No data for revenue over time yet." in page


def test_dashboard_renders_every_chart_in_headless_chromium(refreshed, tmp_path):
    current, _ = refreshed
    html = current.data_dir / "serve" / "dashboard.html"
    expected = int(re.search(r'data-charts="(\d+)"', html.read_text()).group(1))
    assert expected >= 12

    # one browser run: the DOM after the charts drew, and the screenshot CI keeps
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    dom_run = run_chromium(
        html,
        tmp_path / "profile",
        "--dump-dom",
        f"--screenshot={screenshot}",
        "--window-size=1400,3000",
    )
    assert dom_run.returncode == 0, dom_run.stderr[-2000:]
    dom = dom_run.stdout
    sections = dom.split('<div class="chart">')[1:]
    assert len(sections) == expected
    undrawn = [
        i
        for i, s in enumerate(sections, 1)
        if "js-plotly-plot" not in s or 'class="main-svg"' not in s
    ]
    assert undrawn == [], f"charts not drawn: {undrawn}"
    assert "No data for" not in dom
    console = [line for line in dom_run.stderr.splitlines() if "CONSOLE" in line]
    errors = [
        line for line in console if "ERROR:CONSOLE" in line or "Uncaught" in line or "Error" in line
    ]
    assert errors == [], errors
    assert screenshot.exists() and screenshot.stat().st_size > 50_000


def test_the_page_does_not_depend_on_the_order_rows_are_stored_in(refreshed):
    """Two warehouses with the published marts' rows stored in opposite orders draw the same
    page: every chart's data comes out of its query in a fixed order (bars, legend entries and
    hover rows would otherwise move between identical refreshes, whose scans come back in
    whatever order DuckDB's threads finish)."""
    current, _ = refreshed
    snapshot = current.data_dir / "serve" / "current" / "customer_analytics.duckdb"
    generated_at = dt.datetime(2026, 11, 24, 6, 0)
    pages = []
    for direction in ("asc", "desc"):
        with duckdb.connect() as conn:
            conn.execute(f"attach '{snapshot}' as snapshot (read_only)")
            conn.execute("create schema marts")
            tables = conn.execute(
                "select table_name from duckdb_tables() "
                "where database_name = 'snapshot' and schema_name = 'marts'"
            ).fetchall()
            for (table,) in tables:
                conn.execute(
                    f"create table marts.{table} as select * from snapshot.marts.{table} "
                    f"order by all {direction}"
                )
            conn.execute("detach snapshot")
            pages.append(build_dashboard(conn, generated_at))
    assert pages[0] == pages[1]

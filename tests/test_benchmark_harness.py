"""The benchmark harness's pure parts: stage mapping, table formatting, dbt timings, RSS sampling.

Nothing here times anything: the benchmark itself is run by hand (``make bench``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
import textwrap
import time

import pytest

from benchmarks import child, report
from benchmarks.refresh import dbt_nodes_of, dbt_phases
from benchmarks.rss import (
    Sample,
    TreeSampler,
    descendants,
    parent_pids,
    peak_in,
    tree_rss_bytes,
)
from benchmarks.stages import STAGES, Carve, Step, build_stages, spec_for_step

# --- stages ---------------------------------------------------------------------------------


def _steps() -> list[Step]:
    return [
        Step(
            "synthetic_raw_data",
            0.0,
            10.0,
            materializations={"raw/order_lines": 900, "raw/customers": 100, "truth/customers": 100},
        ),
        Step(
            "star_schema",
            10.0,
            30.0,
            materializations={
                "intermediate/int_order_lines_priced": 900,
                "intermediate/customer_summary": 100,
            },
        ),
        Step(
            "analytics__customer_rfm", 30.0, 32.0, materializations={"analytics/customer_rfm": 100}
        ),
        Step("customer_rfm_checks", 32.0, 33.0, checked=["analytics/customer_rfm"]),
        Step(
            "customer_cltv",
            33.0,
            36.0,
            materializations={"analytics/customer_cltv": 100, "analytics/cltv_model_parameters": 2},
        ),
        Step("brand_new_step", 36.0, 37.5, materializations={"analytics/something": 7}),
        Step("customer_marts", 37.5, 40.0, materializations={"marts/customer_single_view": 100}),
        Step("serve__bi_snapshot", 40.0, 41.0, materializations={"serve/bi_snapshot": 5000}),
    ]


def _carves() -> list[Carve]:
    return [
        Carve("mark", "simulate", 1.0, 7.0),
        # customer_summary and its test run on one dbt thread while fact_sales_monthly runs on
        # the other; the backtest summary overlaps customer_summary for one second
        Carve("dbt", "customer_summary", 20.0, 23.0, step="star_schema"),
        Carve("dbt", "customer_summary", 23.0, 24.0, step="star_schema"),  # a test attached to it
        Carve("dbt", "customer_backtest_summary", 22.0, 25.0, step="star_schema"),
        Carve("dbt", "fact_sales", 12.0, 18.0, step="star_schema"),  # stays in the star schema
    ]


def test_stages_partition_each_step_and_keep_the_table_order():
    stages = {s.name: s for s in build_stages(_steps(), _carves())}
    names = [s.name for s in build_stages(_steps(), _carves())]
    assert names == [
        "simulate",
        "load raw",
        "dbt star schema",
        "customer summary and RFM",
        "CLTV fit and score",
        "backtest",
        "customer marts",
        "publish",
        "brand_new_step",  # unknown steps come last, under their own key
    ]
    assert stages["simulate"].seconds == pytest.approx(6.0)
    assert stages["load raw"].seconds == pytest.approx(4.0)
    # 20-22 summary alone, 22-24 shared with the backtest summary (split evenly), 24-25 backtest
    assert stages["customer summary and RFM"].seconds == pytest.approx(2.0 + 1.0 + 2.0 + 1.0)
    assert stages["backtest"].seconds == pytest.approx(1.0 + 1.0)
    assert stages["dbt star schema"].seconds == pytest.approx(20.0 - 5.0)
    assert sum(s.seconds for s in stages.values()) == pytest.approx(41.0)
    # the star schema's own windows are the step minus the carved-out part
    assert stages["dbt star schema"].windows == [(10.0, 20.0), (25.0, 30.0)]


def test_stage_rows_come_from_the_named_assets_or_the_stages_own_steps():
    stages = {s.name: s for s in build_stages(_steps(), _carves())}
    assert stages["simulate"].rows == 1100 and stages["simulate"].rows_of == "rows generated"
    assert (
        stages["dbt star schema"].rows == 900 and stages["dbt star schema"].rows_of == "order lines"
    )
    assert stages["customer summary and RFM"].rows == 100
    assert stages["CLTV fit and score"].rows == 100
    assert stages["brand_new_step"].rows == 7
    assert stages["publish"].rows_per_second == pytest.approx(5000.0)


def test_steps_are_matched_by_key_then_by_the_assets_they_touch():
    by_key = spec_for_step(Step("analytics__customer_rfm", 0, 1))
    by_asset = spec_for_step(
        Step("customer_clusters", 0, 1, materializations={"analytics/customer_clusters": 3})
    )
    check_step = spec_for_step(Step("cltv_checks", 0, 1, checked=["analytics/customer_cltv"]))
    assert by_key.name == "customer summary and RFM"
    assert by_asset.name == "clusters"
    assert check_step.name == "CLTV fit and score"
    assert spec_for_step(Step("something_else", 0, 1)) is None
    assert len({s.name for s in STAGES}) == len(STAGES)


def test_a_step_without_carves_or_rows_still_gets_a_row():
    stages = build_stages([Step("lonely", 5.0, 6.5)])
    assert [(s.name, s.seconds, s.rows, s.rows_per_second) for s in stages] == [
        ("lonely", 1.5, None, None)
    ]


# --- dbt run results ------------------------------------------------------------------------


def test_dbt_tests_are_attributed_to_the_model_they_are_attached_to():
    def timing(start: str, end: str) -> list[dict]:
        return [
            {"name": "compile", "started_at": start, "completed_at": start},
            {"name": "execute", "started_at": start, "completed_at": end},
        ]

    run_results = {
        "results": [
            {
                "unique_id": "model.p.customer_summary",
                "status": "success",
                "timing": timing("2026-11-24T10:00:00.000000Z", "2026-11-24T10:00:02.500000Z"),
            },
            {
                "unique_id": "test.p.unique_customer_summary_customer_code.abc",
                "status": "pass",
                "timing": timing("2026-11-24T10:00:03Z", "2026-11-24T10:00:04Z"),
            },
            {
                "unique_id": "seed.p.rfm_segment_map",
                "status": "success",
                "timing": timing("2026-11-24T09:59:00Z", "2026-11-24T09:59:01Z"),
            },
            {"unique_id": "model.p.skipped", "status": "skipped", "timing": []},
        ]
    }
    manifest = {
        "nodes": {
            "test.p.unique_customer_summary_customer_code.abc": {
                "attached_node": "model.p.customer_summary"
            }
        }
    }
    nodes = dbt_nodes_of(run_results, manifest, "star_schema")
    assert [(n["resource_type"], n["model"]) for n in nodes] == [
        ("model", "customer_summary"),
        ("test", "customer_summary"),
        ("seed", "rfm_segment_map"),
    ]
    start = dt.datetime(2026, 11, 24, 10, tzinfo=dt.timezone.utc).timestamp()
    assert nodes[0]["start"] == pytest.approx(start)
    assert nodes[0]["end"] - nodes[0]["start"] == pytest.approx(2.5)
    assert {n["step"] for n in nodes} == {"star_schema"}


def test_a_dbt_steps_wall_time_splits_around_dbts_own_run():
    step = Step("star_schema", 100.0, 140.0, events=350)
    nodes = [
        {"step": "star_schema", "resource_type": "model", "start": 115.0, "end": 118.0},
        {"step": "star_schema", "resource_type": "test", "start": 117.0, "end": 122.0},
        {"step": "customer_marts", "resource_type": "model", "start": 150.0, "end": 151.0},
    ]
    phases = dbt_phases(step, nodes, log_window=(108.0, 122.5))
    assert phases["phases"] == {
        "before dbt starts": 8.0,
        "dbt start-up and parse": 7.0,
        "nodes": 7.0,
        "after the last node": 18.0,
    }
    assert phases["nodes"] == 2 and phases["dagster_events"] == 350
    assert phases["node_seconds_by_type"] == {"model": 3.0, "test": 5.0}
    assert dbt_phases(Step("synthetic_raw_data", 0.0, 1.0), nodes, None) is None


# --- formatting and the JSON file -----------------------------------------------------------


def test_stage_table_is_aligned_with_a_rule_before_the_totals():
    stages = [
        {
            "stage": "simulate",
            "seconds": 12.345,
            "rows": 1_234_567,
            "rows_per_second": 100_004.2,
            "peak_rss_bytes": 3 * 2**30,
            "rows_of": "rows generated",
        },
        {
            "stage": "publish",
            "seconds": 0.5,
            "rows": None,
            "rows_per_second": None,
            "peak_rss_bytes": 200 * 2**20,
            "rows_of": "rows copied",
        },
    ]
    totals = [{"stage": "total (make run)", "seconds": 13.0, "peak_rss_bytes": None}]
    text = report.stage_table(stages, totals)
    lines = text.splitlines()
    assert lines[0].split() == [
        "stage",
        "wall",
        "s",
        "rows",
        "rows/s",
        "peak",
        "RSS",
        "rows",
        "are",
    ]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert (
        "12.3" in lines[2]
        and "1,234,567" in lines[2]
        and "100,004" in lines[2]
        and "3.00 GiB" in lines[2]
    )
    assert "0.50" in lines[3] and "200 MiB" in lines[3]
    assert lines[4] == lines[1]  # the rule before the totals
    assert lines[5].startswith("total (make run)")
    # right-aligned numeric columns end at the same place on every row
    wall_end = lines[0].index("wall s") + len("wall s")
    assert all(line[wall_end - 1] != " " for line in lines[2:4] + lines[5:])


def test_table_rejects_a_wrong_alignment_spec():
    with pytest.raises(ValueError):
        report.table(("a", "b"), [("1", "2")], align="l")


def test_formatters():
    assert report.fmt_seconds(None) == "-"
    assert report.fmt_seconds(3.14159) == "3.14"
    assert report.fmt_seconds(1234.5) == "1,234.5"
    assert report.fmt_count(1e6) == "1,000,000"
    assert report.fmt_bytes(512 * 2**20) == "512 MiB"
    assert report.fmt_ratio(2.5) == "2.50x"


def test_result_file_name_and_json_without_nan(tmp_path):
    created = dt.datetime(2026, 11, 24, 10, 15, 0, tzinfo=dt.timezone.utc)
    path = report.result_path(created, 1_000_000, tmp_path)
    assert path.name == "20261124T101500Z_1000000.json"
    report.write_json({"a": math.nan, "b": [1.5, math.inf], "c": {"d": 2}}, path)
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None], "c": {"d": 2}}


def test_machine_and_git_describe_this_checkout():
    machine = report.machine()
    assert machine["cores"] >= 1 and machine["memory_bytes"] > 0
    assert "duckdb" in machine["packages"]
    assert set(report.git()) >= {"commit", "dirty"}


# --- timing marks in the refresh child ------------------------------------------------------


def test_marks_record_each_call(tmp_path, monkeypatch):
    marks = tmp_path / "marks.jsonl"
    monkeypatch.setenv(child.MARKS_ENV, str(marks))
    wrapped = child.timed(lambda x: x * 2, "double")
    assert wrapped(21) == 42
    (mark,) = [json.loads(line) for line in marks.read_text().splitlines()]
    assert mark["name"] == "double" and mark["end"] >= mark["start"]


def test_the_marked_function_still_exists():
    """The raw step is split into simulate / load raw around this function."""
    import pipeline.defs.assets.raw as raw

    assert [(m, a) for m, a, _ in child.MARKED] == [("pipeline.defs.assets.raw", "simulate")]
    assert callable(raw.simulate)


# --- RSS of a process tree ------------------------------------------------------------------


def test_parent_pids_parses_names_with_spaces_and_parentheses(tmp_path):
    for pid, text in {
        "1": "1 (init) S 0 1 1",
        "20": "20 (weird ) name) S 1 20 20",
        "30": "30 (python3) R 20 30 30",
    }.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "stat").write_text(text)
    (tmp_path / "self").mkdir()
    parents = parent_pids(tmp_path)
    assert parents == {1: 0, 20: 1, 30: 20}
    assert descendants(20, parents) == {20, 30}
    assert descendants(1, parents) == {1, 20, 30}


def test_peak_in_a_window_and_between_samples():
    samples = [Sample(0.0, 10, 1), Sample(1.0, 50, 2), Sample(2.0, 20, 1)]
    assert peak_in(samples, 0.5, 1.5) == 50
    assert peak_in(samples, None, None) == 50
    assert peak_in(samples, 1.2, 1.4) == 50  # no sample inside: the neighbours
    assert peak_in(samples, 5.0, 6.0) == 20
    assert peak_in([], 0.0, 1.0) is None


GRANDPARENT = textwrap.dedent(
    """
    import subprocess, sys
    grandchild = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
    sys.stdin.readline()  # wait for the test to let go
    grandchild.kill()
    grandchild.wait()
    """
)
HOLD_MEMORY = textwrap.dedent(
    """
    import sys, time
    block = bytearray(150 * 2**20)  # zero-filled: every page is touched
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_sampler_sums_rss_over_a_child_and_its_grandchild():
    proc = subprocess.Popen(
        [sys.executable, "-c", GRANDPARENT, HOLD_MEMORY],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"  # the grandchild holds its memory
        sampler = TreeSampler(proc.pid, interval=0.05)
        with sampler:
            while len(sampler.samples) < 3:
                time.sleep(0.05)
        rss, processes = tree_rss_bytes(proc.pid)
        assert processes == 2
        assert rss >= 150 * 2**20
        assert sampler.peak() >= 150 * 2**20
        assert max(s.processes for s in sampler.samples) == 2
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert tree_rss_bytes(proc.pid) == (0, 0)

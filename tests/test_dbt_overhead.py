"""What the dbt steps skip at start-up, and that skipping it leaves the builds as they were."""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource

from pipeline.defs.assets.dbt import PARSE_CACHE, keep_parse, reuse_parse
from pipeline.defs.resources import DbtCli, build_resources, dbt_executable


def test_the_overridden_dagster_dbt_hooks_still_exist():
    """DbtCli overrides two private hooks of dagster-dbt; an upgrade that renames them would
    silently bring the costs back."""
    assert isinstance(vars(DbtCliResource)["_cli_version"], cached_property)
    assert callable(vars(DbtCliResource)["_initialize_dbt_core_adapter"])


def test_the_dbt_version_is_known_without_running_dbt():
    dbt = build_resources()["dbt"]
    assert isinstance(dbt, DbtCli)
    assert Path(dbt_executable()) == Path(sys.executable).parent / "dbt"
    reported = subprocess.run(
        [dbt_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"installed: {dbt._cli_version}" in reported


def test_a_saved_parse_is_handed_to_the_next_build_and_replaced_by_its_own(tmp_path):
    runs = tmp_path / "dbt_runs"
    first, second = runs / "run1-star_schema", runs / "run1-customer_marts"
    reuse_parse(runs / PARSE_CACHE, first)  # nothing saved yet: nothing to hand over
    assert not (first / PARSE_CACHE).exists()
    first.mkdir(parents=True)
    (first / PARSE_CACHE).write_bytes(b"parse of the first build")
    keep_parse(first, runs / PARSE_CACHE)
    reuse_parse(runs / PARSE_CACHE, second)
    assert (second / PARSE_CACHE).read_bytes() == b"parse of the first build"
    shutil.rmtree(first)  # a build killed before dbt wrote its parse keeps the saved one
    first.mkdir()
    keep_parse(first, runs / PARSE_CACHE)
    assert (runs / PARSE_CACHE).read_bytes() == b"parse of the first build"
    assert {p.name for p in runs.iterdir()} == {PARSE_CACHE, first.name, second.name}

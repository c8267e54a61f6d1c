"""The merged column tests (dbt_project/tests/generic/row_rules.sql) fail as the single tests
they stand for would, and name each broken rule as that single test is named."""

from __future__ import annotations

import json

import duckdb
import pytest

from pipeline import settings
from pipeline.defs.resources import DbtCli, dbt_executable
from pipeline.project import dbt_project

pytestmark = pytest.mark.slow  # dbt or a whole refresh: not in `make test-fast`


def test_a_duplicated_composite_key_and_a_null_are_named_with_their_rows(tmp_path, monkeypatch):
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as conn:
        conn.execute("create schema marts")
        # (P1, 2024) three times: two rows beyond the first; (P2, null) twice: one more (nulls
        # are one key, as in the single test), and two null years
        conn.execute(
            "create table marts.fact_gross_price as select * from (values "
            "('P1', 2024, 10.0), ('P1', 2024, 11.0), ('P1', 2024, 12.0), ('P1', 2025, 10.0), "
            "('P2', null, 5.0), ('P2', null, 5.0)) as t(product_code, fiscal_year, gross_price)"
        )
    monkeypatch.setenv("PIPELINE_WAREHOUSE", str(database))
    target = tmp_path / "target"
    build = DbtCli(
        project_dir=dbt_project, dbt_executable=dbt_executable(), warehouse=str(database)
    ).build(
        [
            "test",
            "--select",
            "row_rules_fact_gross_price",
            "--vars",
            json.dumps(settings.load(environ={}).dbt_vars()),
        ],
        target_path=target,
    )
    assert not build.is_successful()
    (result,) = [
        r
        for r in build.get_artifact("run_results.json")["results"]
        if r["unique_id"].startswith("test.")
    ]
    assert (result["status"], result["failures"]) == ("fail", 2 + 3)
    with duckdb.connect(str(database), read_only=True) as conn:
        named = conn.execute(f"select * from ({result['compiled_code']}) order by 1").fetchall()
    assert [(name, int(rows)) for name, rows in named] == [
        ("not_null_fact_gross_price_fiscal_year", 2),
        ("unique_combination_of_columns_fact_gross_price_product_code__fiscal_year", 3),
    ]

"""The dbt project as Dagster sees it. Nothing else lives here: `make prepare` points
`dagster-dbt project prepare-and-package` at this file to build the manifest before any import."""

from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, target="duckdb")

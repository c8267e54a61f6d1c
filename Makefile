# The two quick-start commands are `make run` and `make test`; everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# No DAGSTER_HOME here: the CLI sets up its own instance in <PIPELINE_DATA_DIR>/dagster_home
# (or DAGSTER_HOME if you set it), and `make ui` opens the same one, so it shows `make run`'s runs.
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test test-fast lint test-spark ui api setup prepare lock bench clean

run: prepare ## set up, then materialize every asset on the synthetic default
	@# PIPELINE_ENGINE=spark needs the 'spark' extra (dbt-spark, pyspark: ~456 MB once; Java 17)
	@if [ "$${PIPELINE_ENGINE:-duckdb}" = "spark" ]; then \
	  $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,spark]"; fi
	$(BIN)/python -m pipeline.cli refresh

# Three workers by default, also on 2 cores: a worker often waits on its dbt subprocess
# (tests/conftest.py groups the tests so each refresh runs once); TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3

test: prepare ## set up, then run the whole test suite
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-fast: prepare ## the unit layer only: no dbt build, no refresh (tests marked slow are left out)
	$(BIN)/python -m pytest -m "not slow and not spark" -n $(TEST_WORKERS) --dist loadgroup

lint: setup ## ruff (lint, format check) on the Python, sqlfluff on the dbt models
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/ruff format --check pipeline tests benchmarks
	$(BIN)/sqlfluff lint dbt_project

# Optional: install the 'spark' extra (dbt-spark session method, pyspark: ~456 MB once; needs
# Java 17) and check that Spark gives the same rows as DuckDB: the order-line dbt models, then
# the whole refresh (PIPELINE_ENGINE=spark) against DuckDB's published marts.
test-spark: prepare ## the dbt models and the whole refresh on a local Spark, compared with DuckDB
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,spark]"
	PIPELINE_SPARK_REQUIRED=1 $(BIN)/python -m pytest -m spark tests/spark

ui: prepare ## the Dagster UI on http://127.0.0.1:3000, on the instance `make run` records to
	$(BIN)/python -m pipeline.cli ui --port $${PORT:-3000}

# Reads only the published snapshot (data/serve/current); PIPELINE_API_HOST / PIPELINE_API_PORT.
api: setup ## the HTTP API on http://127.0.0.1:8000 (docs at /docs)
	$(BIN)/python -m pipeline.api

bench: prepare ## full refresh at a given scale: make bench CUSTOMERS=1000000
	$(BIN)/python -m benchmarks.run --customers $${CUSTOMERS:-100000}

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

# dagster-dbt reads dbt's manifest at import time; build it here, never at import. The parse
# (13 s) runs again only when a dbt file, the project's definition or the install changed; the
# same files decide whether pipeline/dbt_runner.py may use it.
DBT_FILES := $(shell find dbt_project \( -name target -o -name logs -o -name dbt_packages \) -prune \
	-o -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.yaml' -o -name '*.csv' -o -name '*.md' \) -print)
PREPARED := dbt_project/target/partial_parse.msgpack

prepare: setup $(PREPARED)

$(PREPARED): $(VENV)/.installed pipeline/project.py $(DBT_FILES)
	$(BIN)/dagster-dbt project prepare-and-package --file pipeline/project.py

lock: ## re-pin constraints.txt from the current .venv
	( echo "# The exact package set that 'make run' and 'make test' were tested with (pip freeze of .venv)."; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -i '^setuptools' ) > constraints.txt

clean:
	rm -rf $(VENV) data dbt_project/target dbt_project/logs

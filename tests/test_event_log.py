"""The CLI's event log (pipeline/event_log.py): Dagster's SQLite files, written faster, and read
by the default storage that `make ui` uses."""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from pipeline import event_log, progress


@dg.asset
def numbers() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dagster/row_count": 3})


@dg.asset_check(asset=numbers)
def numbers_are_few() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def test_the_overridden_storage_hooks_still_exist(tmp_path):
    """QuickSqliteEventLogStorage overrides private methods of Dagster's SQLite event log; an
    upgrade that renames them would silently bring the cost back."""
    for name in ("_connect", "has_table", "_initdb", "conn_string_for_shard", "from_config_value"):
        assert callable(getattr(SqliteEventLogStorage, name))
    assert hasattr(SqliteEventLogStorage(str(tmp_path)), "_db_lock")


def test_runs_recorded_by_the_cli_instance_read_back_with_dagsters_default_storage(tmp_path):
    home = progress.prepare_instance(tmp_path / "dagster_home")
    instance = event_log.open_instance(home)
    assert isinstance(instance.event_log_storage, event_log.QuickSqliteEventLogStorage)
    result = dg.materialize([numbers, numbers_are_few], instance=instance)
    assert result.success
    instance.dispose()

    # what `make ui` opens: the dagster.yaml alone, Dagster's own SQLite storage
    with dg.DagsterInstance.from_config(str(home)) as default:
        assert type(default.event_log_storage) is SqliteEventLogStorage
        records = default.get_records_for_run(result.run_id).records
        assert {r.event_log_entry.dagster_event_type for r in records} >= {
            dg.DagsterEventType.ASSET_MATERIALIZATION,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            dg.DagsterEventType.RUN_SUCCESS,
        }
        latest = default.get_latest_materialization_event(numbers.key)
        assert latest is not None and latest.run_id == result.run_id
        check = default.event_log_storage.get_latest_asset_check_execution_by_key(
            [numbers_are_few.check_key]
        )[numbers_are_few.check_key]
        assert check.run_id == result.run_id

    # and a second CLI instance adds to the same files
    again = event_log.open_instance(home)
    assert dg.materialize([numbers], instance=again).success
    assert len(again.get_runs()) == 2
    again.dispose()


def test_an_instance_configured_with_its_own_storage_is_opened_as_configured(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "event_log_storage:\n"
        "  module: dagster._core.storage.event_log\n"
        "  class: ConsolidatedSqliteEventLogStorage\n"
        f"  config:\n    base_dir: {tmp_path / 'events'}\n"
    )
    instance = event_log.open_instance(home)
    assert type(instance.event_log_storage).__name__ == "ConsolidatedSqliteEventLogStorage"
    instance.dispose()

"""Bring your own data: load CSV/Parquet files into raw.* (no Dagster imports).

``run_import`` reads the files of the import folder that were not loaded before, validates every
row in DuckDB, and rebuilds raw.* plus raw.quarantine and the load log raw.import_files.
"""

from pipeline.ingest.config import FileImportError, ImportConfig
from pipeline.ingest.importer import ImportReport, run_import

__all__ = ["FileImportError", "ImportConfig", "ImportReport", "run_import"]

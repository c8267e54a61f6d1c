"""The table store over Spark (PIPELINE_ENGINE=spark): every table is a Parquet folder under
``<data_dir>/spark``.

- ``warehouse/<schema>.db/<table>/``: what dbt-spark builds (staging, intermediate, marts, seeds).
- ``tables/<schema>/<table>/``: what Python writes (raw.*, truth.*, analytics.*); dbt registers
  them as Spark tables before a build (macros/register_raw_parquet_tables.sql).

Per-as-of history tables keep one file per as-of date (``as-of-<date>.parquet``), so replacing
a date's rows rewrites that file alone, atomically (``os.replace``), and nothing else is read.

The Python side runs its own Spark session (the same master as dbt's, an in-memory catalog: the
Derby catalog belongs to dbt's process) and reads tables by location, so the two never share a
lock. Frames the models hand back are written with pyarrow when they are already in memory.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pandas.errors import PandasDeprecationWarning

from pipeline.engine.errors import EngineError

# schemas the Python steps write; every other schema is dbt's
PYTHON_SCHEMAS = ("raw", "truth", "analytics")
KNOWN_SCHEMAS = (*PYTHON_SCHEMAS, "staging", "intermediate", "marts", "reference")
AS_OF_FILE = re.compile(r"^as-of-(\d{4}-\d{2}-\d{2})\.parquet$")
_TABLE_NAME = re.compile(r"\b(" + "|".join(KNOWN_SCHEMAS) + r")\.(\w+)\b", re.IGNORECASE)


def check_spark_available() -> None:
    """Spark mode needs the 'spark' extra and Java: say so before anything runs."""
    missing = [m for m in ("pyspark", "dbt.adapters.spark") if importlib.util.find_spec(m) is None]
    if missing:
        raise EngineError(
            f"PIPELINE_ENGINE=spark needs the 'spark' extra ({', '.join(missing)} missing): "
            'pip install -c constraints.txt -e ".[spark]"'
        )
    problem = _java_problem(os.environ.get("JAVA_HOME", ""))
    if problem:
        raise EngineError(
            f"PIPELINE_ENGINE=spark needs Java 17 or later ({problem}): install one (e.g. "
            "apt-get install openjdk-17-jre-headless) or point JAVA_HOME at it"
        )


@functools.cache
def _java_problem(java_home: str) -> str | None:
    """Why the Java Spark would start (JAVA_HOME's, else the one on PATH) cannot run it."""
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None:
        return "'java' is not on PATH and JAVA_HOME is not set"
    try:
        # e.g. 'openjdk version "17.0.15" 2025-04-15' or 'java version "1.8.0_392"'
        shown = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60
        ).stderr
    except (OSError, subprocess.SubprocessError) as error:
        return f"{java} does not run: {type(error).__name__}"
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if found is None:
        return None  # an unknown format: let Spark try
    major = int(found.group(2) or 0) if found.group(1) == "1" else int(found.group(1))
    return f"{java} is Java {major}" if major < 17 else None


def spark_session(master: str, spark_dir: Path, driver_memory: str):
    """The process's Spark session (created once, reused by every step of the run).
    ``driver_memory`` becomes the JVM's heap only if this starts the JVM: a process that
    already runs one keeps its heap (the CLI's refresh starts it here)."""
    check_spark_available()
    from pyspark.sql import SparkSession

    # mapInPandas runs Python workers: this interpreter (pandas, pyarrow, the models), not
    # whatever 'python3' is on PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    return (
        SparkSession.builder.master(master)
        .appName("customer-analytics")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", str(spark_dir / "python_session"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", driver_memory)
        .getOrCreate()
    )


def _write_blocks(blocks: Iterator[pd.DataFrame], path: Path) -> int:
    """Write frames with the same columns into one Parquet file, a row group or more each."""
    rows, writer = 0, None
    try:
        for block in blocks:
            table = _arrow(block)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table.cast(writer.schema))
            rows += len(block)
    finally:
        if writer is not None:
            writer.close()
    return rows


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """A frame as Parquet stores it for both engines' readers: ``as_of_date`` a date (as the
    DuckDB store does), timestamps in microseconds (Spark reads no nanoseconds), all-null
    columns as strings (Parquet's null type is unreadable to Spark)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for field in table.schema:
        kind = field.type
        if field.name == "as_of_date":
            kind = pa.date32()
        elif pa.types.is_timestamp(kind):
            kind = pa.timestamp("us", tz=kind.tz)
        elif pa.types.is_null(kind):
            kind = pa.string()
        fields.append(pa.field(field.name, kind))
    return table.cast(pa.schema(fields))


def _swap_in(staged: Path, target: Path) -> None:
    """Put a fully written folder in place of the old one."""
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


class SparkTables:
    engine = "spark"

    def __init__(self, spark_dir: Path, master: str, driver_memory: str | None = None):
        from pipeline.settings import SETTINGS

        self.spark_dir = spark_dir
        self.master = master
        self.driver_memory = driver_memory or SETTINGS["spark_driver_memory"].default

    @classmethod
    def for_settings(cls, current) -> SparkTables:
        check_spark_available()
        return cls(
            current.paths.spark, current.engine.spark_master, current.engine.spark_driver_memory
        )

    @cached_property
    def spark(self):
        """Started on first use: steps that only write frames or count rows need no JVM."""
        return spark_session(self.master, self.spark_dir, self.driver_memory)

    # --- where tables are --------------------------------------------------------------------

    def location(self, schema: str, table: str) -> Path:
        if schema in PYTHON_SCHEMAS:
            return self.spark_dir / "tables" / schema / table
        return self.spark_dir / "warehouse" / f"{schema}.db" / table

    def table_exists(self, schema: str, table: str) -> bool:
        folder = self.location(schema, table)
        # dbt-spark's partitioned tables (the segment history) keep their files one level down
        return folder.is_dir() and any(folder.glob("**/*.parquet"))

    def _dataset(self, schema: str, table: str) -> pads.Dataset:
        return pads.dataset(
            str(self.location(schema, table)), format="parquet", partitioning="hive"
        )

    def table_columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        return [(f.name, str(f.type)) for f in self._dataset(schema, table).schema]

    def row_count(self, relation_name: str) -> int:
        # the prepared manifest is DuckDB's: "warehouse"."marts"."x"; Spark's: `marts`.`x`
        schema, table = relation_name.replace("`", "").replace('"', "").split(".")[-2:]
        return self._dataset(schema, table).count_rows()

    def frame(self, schema: str, table: str):
        """A table as a Spark DataFrame (lazy: nothing is read yet)."""
        if not self.table_exists(schema, table):
            raise EngineError(
                f"{schema}.{table} has no Parquet files at {self.location(schema, table)}"
            )
        return self.spark.read.option("mergeSchema", "true").parquet(
            str(self.location(schema, table))
        )

    # --- reading into the driver ------------------------------------------------------------

    def to_pandas(self, frame) -> pd.DataFrame:
        """A Spark DataFrame in the driver, typed as DuckDB's ``.df()`` types it (decimals as
        floats, dates as timestamps), so the models see the same frame on both engines."""
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        columns = []
        for field in frame.schema.fields:
            column = F.col(f"`{field.name}`")
            if isinstance(field.dataType, T.DecimalType):
                column = column.cast("double")
            columns.append(column.alias(field.name))
        with warnings.catch_warnings():
            # pyspark's own Arrow-to-pandas converter (pyspark/sql/pandas/types.py, 4.3) calls
            # Series.astype(..., copy=False) on every integer, boolean and timestamp column,
            # which pandas 3 deprecates: one Pandas4Warning per such column per call, none of
            # them about our frames
            warnings.filterwarnings(
                "ignore",
                message="The copy keyword is deprecated",
                category=PandasDeprecationWarning,
                module=r"pyspark\.sql\.pandas\.types",
            )
            out = frame.select(*columns).toPandas()
        for field in frame.schema.fields:
            if isinstance(field.dataType, T.DateType):
                out[field.name] = pd.to_datetime(out[field.name]).astype("datetime64[us]")
        return out

    def sql(self, sql: str, params: Sequence | None = None):
        """A portable query over ``schema.table`` names (registered from their folders first),
        as a Spark DataFrame (lazy)."""
        for schema, table in sorted({(s.lower(), t) for s, t in _TABLE_NAME.findall(sql)}):
            self._register(schema, table)
        return self.spark.sql(sql, args=list(params) if params else None)

    def query(self, sql: str, params: Sequence | None = None) -> pd.DataFrame:
        """A portable query's (small) result in the driver."""
        return self.to_pandas(self.sql(sql, params))

    def map_batches(
        self,
        sql: str,
        fn: Callable[[pd.DataFrame], pd.DataFrame],
        schema: Mapping[str, str],
        params: Sequence | None = None,
        order_by: str | None = None,
    ):
        """``fn`` over the query's rows inside Spark (``mapInPandas``): each Arrow batch is
        typed as ``to_pandas`` types a frame (decimals as floats, dates as timestamps), ``fn``
        is broadcast once, and the result (``schema``: column -> Spark SQL type) stays a lazy
        Spark DataFrame, never collected to the driver; ``replace_tables`` writes it. Rows come
        in no particular order (``order_by`` is DuckDB's: a sort here would cost a shuffle)."""
        from pyspark import cloudpickle
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        frame = self.sql(sql, params)
        columns, dates = [], []
        for field in frame.schema.fields:
            column = F.col(f"`{field.name}`")
            if isinstance(field.dataType, T.DecimalType):
                column = column.cast("double")
            elif isinstance(field.dataType, T.DateType):
                dates.append(field.name)
            columns.append(column.alias(field.name))
        out_dates = [name for name, kind in schema.items() if kind == "date"]
        names = list(schema)
        # cloudpickled: the fitted lifetimes models hold lambdas, which plain pickle refuses
        shipped = self.spark.sparkContext.broadcast(cloudpickle.dumps(fn))

        def run(batches):
            apply = cloudpickle.loads(shipped.value)
            for batch in batches:
                for name in dates:
                    batch[name] = pd.to_datetime(batch[name]).astype("datetime64[us]")
                out = apply(batch)[names]
                for name in out_dates:
                    out[name] = pd.to_datetime(out[name]).dt.date
                yield out

        ddl = ", ".join(f"`{name}` {kind}" for name, kind in schema.items())
        return frame.select(*columns).mapInPandas(run, schema=ddl)

    def sum_batches(
        self,
        sql: str,
        fn: Callable[[pd.DataFrame], pd.DataFrame],
        schema: Mapping[str, str],
        by: Sequence[str],
        params: Sequence | None = None,
        order_by: str | None = None,
    ) -> pd.DataFrame:
        """``fn`` gives each batch's partial sums per key ``by``; Spark adds them up per key
        and only the totals (one row per key) come to the driver, sorted by the key."""
        from pyspark.sql import functions as F

        parts = self.map_batches(sql, fn, schema, params, order_by)
        totals = parts.groupBy(*by).agg(
            *[F.sum(f"`{name}`").alias(name) for name in schema if name not in by]
        )
        return self.to_pandas(totals.orderBy(*by))[list(schema)]

    def _register(self, schema: str, table: str) -> None:
        self.spark.sql(f"create database if not exists {schema}")
        self.spark.sql(f"drop table if exists {schema}.{table}")
        self.spark.sql(
            f"create table {schema}.{table} using parquet options (mergeSchema 'true') "
            f"location '{self.location(schema, table)}'"
        )

    def read_table(
        self,
        schema: str,
        table: str,
        columns: list[str] | None = None,
        order_by: str = "customer_code",
    ) -> pd.DataFrame:
        frame = self.frame(schema, table)
        if columns is not None:
            frame = frame.select(*[f"`{c}`" for c in columns])
        return self.to_pandas(frame.orderBy(order_by)).reset_index(drop=True)

    # --- writing ---------------------------------------------------------------------------

    def replace_tables(self, schema: str, frames: Mapping[str, object]) -> dict[str, int]:
        """Replace each table's folder with the frame (pandas, written with pyarrow; an iterator
        of pandas frames, blocks of the table's rows in order, written one by one into the same
        file; or Spark, written by Spark), each swapped in once complete."""
        counts = {}
        for name, frame in frames.items():
            target = self.location(schema, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.with_name(f".{name}.{uuid.uuid4().hex[:8]}.tmp")
            if isinstance(frame, pd.DataFrame):
                staged.mkdir()
                pq.write_table(_arrow(frame), staged / "part-00000.parquet")
                counts[name] = len(frame)
            elif isinstance(frame, Iterator):
                staged.mkdir()
                counts[name] = _write_blocks(frame, staged / "part-00000.parquet")
            else:
                frame.write.mode("overwrite").parquet(str(staged))
                counts[name] = pads.dataset(str(staged), format="parquet").count_rows()
            _swap_in(staged, target)
        return counts

    def replace_table_with_query(self, schema: str, table: str, sql: str) -> int:
        """Replace ``schema.table`` with a portable query's rows, computed and written by Spark
        (nothing comes to the driver); return its rows."""
        return self.replace_tables(schema, {table: self.sql(sql)})[table]

    def copy_raw_from(self, conn, tables: Sequence[str]) -> dict[str, int]:
        """Write ``raw.<table>`` of a DuckDB connection (the file import's staging file) as
        each table's Parquet folder, swapped in once complete, and drop the simulator's truth
        tables (imported data has no truth, as the import drops ``truth`` on DuckDB). DuckDB
        streams the rows to the file: they never pass through pandas."""
        from pipeline import warehouse

        counts = {}
        for name in tables:
            target = self.location("raw", name)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.with_name(f".{name}.{uuid.uuid4().hex[:8]}.tmp")
            staged.mkdir()
            conn.execute(
                f"copy (select * from {warehouse.qualified('raw', name)}) to "
                f"{warehouse.quote_literal(str(staged / 'part-00000.parquet'))} (format parquet)"
            )
            counts[name] = pq.ParquetFile(staged / "part-00000.parquet").metadata.num_rows
            _swap_in(staged, target)
        shutil.rmtree(self.spark_dir / "tables" / "truth", ignore_errors=True)
        return counts

    def _as_of_file(self, schema: str, table: str, as_of) -> Path:
        day = as_of.date() if isinstance(as_of, dt.datetime) else as_of
        return (
            self.location(schema, table) / f"as-of-{pd.Timestamp(day).date().isoformat()}.parquet"
        )

    def replace_as_of_rows(self, schema: str, table: str, frame, as_of) -> int:
        """This date's rows: a pandas frame (written with pyarrow) or a Spark DataFrame (e.g.
        every customer's cluster, written by Spark as one file), swapped in once complete."""
        path = self._as_of_file(schema, table, as_of)
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        if isinstance(frame, pd.DataFrame):
            pq.write_table(_arrow(frame), staged)
            rows = len(frame)
        else:
            # one file per date: one writing task (on an executor), then its part file moved
            folder = staged.with_name(staged.name + ".d")
            frame.coalesce(1).write.mode("overwrite").parquet(str(folder))
            (part,) = folder.glob("part-*.parquet")
            os.replace(part, staged)
            shutil.rmtree(folder, ignore_errors=True)
            rows = pq.ParquetFile(staged).metadata.num_rows
        os.replace(staged, path)
        return rows

    def add_missing_columns(self, schema: str, table: str, frame: pd.DataFrame) -> None:
        """Nothing to do: each as-of date is its own file; readers merge the files' columns."""

    def read_as_of_rows(self, schema: str, table: str, as_of) -> pd.DataFrame:
        """This date's rows, sorted on every column (as DuckDB's ``order by all``)."""
        path = self._as_of_file(schema, table, as_of)
        frame = self.frame(schema, table)
        rows = (
            frame.where(frame["as_of_date"] == pd.Timestamp(as_of).date())
            if path.exists()
            else frame.limit(0)
        )
        rows = rows.orderBy(*[f"`{c}`" for c in frame.columns])
        return self.to_pandas(rows)

    def publish(self, serve_dir, **kwargs):
        """The BI snapshot of the marts: Parquet files and a DuckDB file of views over them
        (``pipeline.publish.spark_snapshot``)."""
        from pipeline.publish import spark_snapshot

        return spark_snapshot.publish(self, serve_dir, **kwargs)

    @contextmanager
    def marts_reader(self) -> Iterator[object]:
        """A DuckDB connection (in memory) with a view ``marts.<mart>`` over each mart's Parquet
        folder: the dashboard reads the marts as a BI tool does, without Spark."""
        import duckdb

        from pipeline import warehouse

        with duckdb.connect() as conn:
            conn.execute("create schema marts")
            for folder in sorted((self.spark_dir / "warehouse" / "marts.db").iterdir()):
                if folder.is_dir() and any(folder.glob("**/*.parquet")):
                    # partitioned tables (the segment history) keep their files one level down
                    files = warehouse.quote_literal(str(folder / "**" / "*.parquet"))
                    conn.execute(
                        f"create view {warehouse.qualified('marts', folder.name)} as "
                        f"select * from read_parquet({files}, hive_partitioning = true)"
                    )
            yield conn

    def previous_as_of(self, schema: str, table: str, as_of):
        folder = self.location(schema, table)
        day = pd.Timestamp(as_of).date()
        dates = [
            dt.date.fromisoformat(m.group(1))
            for m in (AS_OF_FILE.match(p.name) for p in folder.glob("as-of-*.parquet"))
            if m
        ]
        earlier = [d for d in dates if d < day]
        return max(earlier) if earlier else None

"""The features stage on Spark: one Spark task per bucket runs the local bucket function.

Spark reads the interim Parquet tables, tags every row with its bucket
(:func:`omvald.buckets.bucket_of_slot` of the ``hash_slot`` column written
by ``omvald validate``, computed once for the 1024 slots and broadcast),
and runs :func:`omvald.features.build.build_features` -- the very function
the local engine loops over -- inside ``groupBy("bucket").applyInArrow``.

Three tables, one group: ``cogroup`` takes only two frames, so the three
tables are stacked into one long frame. Every column is renamed
``<table>__<column>`` (tables may share a column name with a different
type, e.g. a customer attribute ``value``), a ``_table`` tag says which
table a row came from, and columns of the other tables are null. Inside the
task :func:`split_bucket` takes each table's rows and columns back and casts
them to the schema of the interim file (with its pandas metadata), so the
bucket function sees exactly the frames ``pd.read_parquet`` would give it.
The price is null cells for other tables' columns, a small cost next to the
features themselves; a pre-joined frame would multiply billing by
touchpoints rows instead.

Inside the task the frames go through DuckDB exactly like the local
engine's ``read_bucket`` (``SELECT * ... .df()``), so ``build_features``
gets the same dtypes on both engines.

Output schema: explicit, :func:`omvald.features.build.output_schema` of the
registry (the local engine's schema), and every bucket's result is cast to
it. Output files: Spark writes the bucket results, partitioned by bucket,
into a temporary folder next to ``out_dir``; the driver then merges them
into ``training.parquet`` / ``scoring.parquet`` with the local engine's own
merge (one as-of date in memory at a time), and the folder is renamed onto
``out_dir`` only when everything succeeded. A failed bucket fails the Spark
job, and the previous ``out_dir`` is left untouched. ``out_dir`` must be a
path the driver and the executors share (local disk for ``local[N]``, a
``/dbfs`` or ``/Volumes`` path on Databricks, NFS on a standalone cluster).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from omvald import errors
from omvald.buckets import N_SLOTS, bucket_of_slot
from omvald.config import Config
from omvald.features import build
from omvald.features.asof import DUCKDB_THREADS
from omvald.features.spec import BucketTables
from omvald.io import atomic_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

TABLES = build.TABLES
TAG = "_table"
SEP = "__"

BucketFunction = Callable[..., pd.DataFrame]


# --- inside a Spark task (no Spark imports) --------------------------------------------------------


def split_bucket(batch: pa.Table, schemas: dict[str, pa.Schema]) -> BucketTables:
    """The three interim frames of one bucket from the stacked, prefixed Arrow table of that bucket.

    Each table's rows are cast back to its interim file schema, put in a
    deterministic order (Spark's shuffle order is arbitrary) and converted by
    DuckDB as the local engine's ``read_bucket`` does.
    """
    frames = {}
    tags = batch.column(TAG)
    con = duckdb.connect()
    con.execute(f"SET threads = {DUCKDB_THREADS}")
    for table, schema in schemas.items():
        rows = batch.filter(pc.equal(tags, table))
        part = pa.Table.from_arrays([rows.column(f"{table}{SEP}{f.name}").cast(f.type) for f in schema], schema=schema)
        part = part.cast(pa.schema([_as_duckdb_reads_parquet(f) for f in schema]))
        order = ["hash_slot", "customer_id"] + [n for n in schema.names if n not in ("hash_slot", "customer_id")]
        sortable = [n for n in order if not pa.types.is_nested(schema.field(n).type)]
        con.register("part", part.sort_by([(n, "ascending") for n in sortable]))
        frames[table] = con.execute("SELECT * FROM part").df()
        con.unregister("part")
    con.close()
    return BucketTables(**frames)


def _as_duckdb_reads_parquet(f: pa.Field) -> pa.Field:
    """DuckDB reads Parquet s/ms timestamps as microseconds (but Arrow ones as given): match the local read."""
    if pa.types.is_timestamp(f.type) and f.type.unit in ("s", "ms"):
        return f.with_type(pa.timestamp("us", f.type.tz))
    return f


def bucket_task(
    fn: BucketFunction, schemas: dict[str, pa.Schema], out_schema: pa.Schema, **kwargs: Any
) -> Callable[[pa.Table], pa.Table]:
    """The function Spark runs per bucket: split the stacked rows, call ``fn(tables, **kwargs)``, cast."""
    names = out_schema.names

    def run(batch: pa.Table) -> pa.Table:
        result = fn(split_bucket(batch, schemas), **kwargs)
        return pa.Table.from_pandas(result[names], preserve_index=False).cast(out_schema)

    return run


# --- Spark plumbing --------------------------------------------------------------------------------


def bucketed_interim(
    spark: SparkSession, interim_dir: Path, schemas: dict[str, pa.Schema], n_buckets: int
) -> DataFrame:
    """The interim tables stacked into one frame: ``bucket``, ``_table`` and ``<table>__<column>`` columns.

    The bucket of each of the 1024 slots comes from
    :func:`omvald.buckets.bucket_of_slot`, computed once here and broadcast.
    """
    from pyspark.sql import functions as F

    slots = np.arange(N_SLOTS, dtype=np.int16)
    slot_map = spark.createDataFrame(
        pd.DataFrame({"hash_slot": slots, "bucket": bucket_of_slot(slots, n_buckets).astype(np.int32)})
    )
    stacked = None
    for table in TABLES:
        df = spark.read.parquet(str(interim_dir / f"{table}.parquet")).join(F.broadcast(slot_map), "hash_slot")
        cols = [F.col("bucket"), F.lit(table).alias(TAG)]
        cols += [F.col(f"`{name}`").alias(f"{table}{SEP}{name}") for name in schemas[table].names]
        df = df.select(*cols)
        stacked = df if stacked is None else stacked.unionByName(df, allowMissingColumns=True)
    assert stacked is not None
    return stacked


RESULT_BATCH_ROWS = 10_000


def apply_per_bucket(stacked: DataFrame, task: Callable[[pa.Table], pa.Table], out_schema: pa.Schema) -> DataFrame:
    """``groupBy("bucket").applyInArrow(task)`` with an explicit output schema (plus ``bucket``)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    with_bucket = out_schema.append(pa.field("bucket", pa.int32()))

    def run(key: tuple, batch: pa.Table) -> pa.Table:
        out = task(batch)
        out = out.append_column("bucket", pa.array(np.full(out.num_rows, key[0].as_py(), np.int32)))
        # Spark sends the table back one Arrow batch per chunk, and the JVM takes
        # each batch in one direct-memory buffer (1 GB in all by default): a
        # bucket of 1M / 32 customers at 12 dates in one chunk (~400 MB) failed.
        return pa.Table.from_batches(out.to_batches(max_chunksize=RESULT_BATCH_ROWS), schema=out.schema)

    return stacked.groupBy("bucket").applyInArrow(run, from_arrow_schema(with_bucket))


def write_bucket_parts(df: DataFrame, parts: Path) -> list[Path]:
    """Write the per-bucket results under ``parts`` (one folder per bucket); return the Parquet files."""
    df.write.partitionBy("bucket").parquet(str(parts / "spark"))
    files = sorted((parts / "spark").glob("bucket=*/*.parquet"))
    flat = []
    for i, f in enumerate(files):  # the local merge reads ``parts/*.parquet``
        target = parts / f"{f.parent.name.replace('=', '-')}-{i:05d}.parquet"
        f.rename(target)
        flat.append(target)
    shutil.rmtree(parts / "spark")
    return flat


def raise_user_error(exc: BaseException) -> None:
    """Re-raise an omvald user error that happened inside a Spark task as the same type; else return.

    Spark wraps a task's exception in ``PythonException`` whose message holds
    the worker traceback; the CLI should still print a DataContractError as a
    user mistake with its exit code, not a Java stack trace.
    """
    text = str(exc)
    for name in ("DataContractError", "ConfigError", "ModelError", "OmvaldError"):
        marker = f"omvald.errors.{name}: "
        if marker in text:
            message = text.rsplit(marker, 1)[1].split("\n\tat ")[0].strip()
            cls = getattr(errors, name)
            err = Exception.__new__(cls)
            Exception.__init__(err, f"(in a Spark task) {message}")
            raise err from exc


def interim_schemas(interim_dir: Path) -> dict[str, pa.Schema]:
    """Arrow schema of each interim table file, pandas metadata dropped."""
    return {t: pq.read_schema(interim_dir / f"{t}.parquet").remove_metadata() for t in TABLES}


# --- the stage -------------------------------------------------------------------------------------


def run_features_spark(
    cfg: Config,
    interim_dir: str | Path,
    out_dir: str | Path,
    master: str,
    *,
    spark: SparkSession | None = None,
    bucket_fn: BucketFunction | None = None,
) -> dict[str, Any]:
    """Spark twin of :func:`omvald.features.build.run_features`: the same four files in ``out_dir``.

    The checks, registry, label-balance check and merge are the local
    stage's own functions, run on the driver; only the bucket loop runs on
    Spark, one task per bucket (``features.n_buckets``). ``master`` is used
    only when no running session ``spark`` is given. ``bucket_fn`` replaces
    :func:`~omvald.features.build.build_features` (tests make a bucket fail
    with it). Returns the output meta, as the local stage does.
    """
    from omvald.spark.session import spark_session

    fcfg = cfg.features
    interim_dir, out_dir = Path(interim_dir), Path(out_dir)
    plan = build.plan_features(fcfg, interim_dir)
    schema = plan.schema(with_labels=True)

    spark = spark or spark_session(master, n_buckets=fcfg.n_buckets, java=cfg.spark.java)
    schemas = interim_schemas(interim_dir)
    task = bucket_task(
        bucket_fn or build.build_features,
        schemas,
        schema,
        as_of_dates=plan.dates,
        cfg=fcfg,
        meta=plan.meta,
        with_labels=True,
    )
    results = apply_per_bucket(bucketed_interim(spark, interim_dir, schemas, fcfg.n_buckets), task, schema)

    with atomic_path(out_dir) as tmp:
        parts = tmp / "_parts"
        try:
            write_bucket_parts(results, parts)
        except Exception as exc:
            raise_user_error(exc)
            raise
        out_meta = build.finish_output(plan, fcfg, parts, tmp)
    n_training, n_scoring = out_meta["n_rows"]["training"], out_meta["n_rows"]["scoring"]
    log.info("features (spark): %d training rows, %d scoring rows -> %s", n_training, n_scoring, out_dir)
    return out_meta

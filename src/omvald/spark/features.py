"""The features stage on Spark: one Spark task per bucket runs the local bucket function.

Spark reads the interim Parquet tables, tags every row with its bucket
(:func:`omvald.buckets.bucket_of_slot` of the ``hash_slot`` column written
by ``omvald validate``, computed once for the 1024 slots and broadcast),
and runs :func:`omvald.features.build.build_features` -- the very function
the local engine loops over -- inside ``groupBy("bucket").applyInArrow``.

Three tables, two frames: ``cogroup`` pairs two frames per bucket, so the
long, narrow touchpoints table goes alone and billing and customers are
stacked into one frame. In a stacked frame every column is renamed
``<table>__<column>`` (tables may share a column name with a different
type, e.g. a customer attribute ``value``), a ``_table`` tag says which
table a row came from, and columns of the other table are null. Inside the
task :func:`split_bucket` takes each table's rows and columns back and casts
them to the schema of the interim file (with its pandas metadata), so the
bucket function sees exactly the frames ``pd.read_parquet`` would give it.
Why not all three in one stacked frame: touchpoints have ~3x the rows of
billing, and padding each with the other tables' ~20 null columns made
Spark's sort and Arrow conversion of a bucket cost more than building its
features (``benchmarks/README.md``); a pre-joined frame would multiply
billing by touchpoints rows instead.

Inside the task the frames go through DuckDB exactly like the local
engine's ``read_bucket`` (``SELECT * ... .df()``), so ``build_features``
gets the same dtypes on both engines.

Output files: each task writes its bucket's part file itself, with the
local engine's writer (:func:`omvald.features.stage.write_bucket_part`:
the registry's schema, sorted by ``as_of, customer_id``, small row groups),
into a temporary folder next to ``out_dir``, and returns only its row
count to Spark. The driver then merges the parts into ``training.parquet`` /
``scoring.parquet`` with the local engine's own merge, and the folder is
renamed onto ``out_dir`` only when everything succeeded. A failed bucket
fails the Spark job, and the previous ``out_dir`` is left untouched; a
retried task replaces its part file atomically. ``out_dir`` must be a path
the driver and the executors share (local disk for ``local[N]``, a
``/dbfs`` or ``/Volumes`` path on Databricks, NFS on a standalone cluster).

Why the task writes, not Spark: a bucket's features are ~200 float columns
(~300 MB of Arrow per 25k customers at 12 dates). Sending them back to the
JVM to be re-encoded by Spark's Parquet writer cost more than building
them, and Spark's writer makes one row group per file, which the merge
then has to read whole for every as-of date (measured in
``benchmarks/README.md``).

DuckDB inside a task runs one thread, as in the local engine's bucket
workers (``omvald.features.asof.DUCKDB_THREADS``: parallel sums are not
reproducible); Spark's parallelism is its tasks.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from omvald.buckets import N_SLOTS, bucket_of_slot
from omvald.config import Config
from omvald.features import asof, stage
from omvald.features.build import TABLES, build_features
from omvald.features.spec import BucketTables
from omvald.io import atomic_path
from omvald.spark.tasks import (
    GROUPS,
    bucket_of,
    bucket_partition_keys,
    per_bucket,
    raise_user_error,
    stacked_group,
    table_rows,
    with_partition_key,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

BucketFunction = Callable[..., pd.DataFrame]


# --- inside a Spark task (no Spark imports) --------------------------------------------------------


def split_bucket(batches: Sequence[pa.Table], schemas: dict[str, pa.Schema]) -> BucketTables:
    """The three interim frames of one bucket from its rows of the (stacked, prefixed) frames of :data:`GROUPS`.

    Each table's rows are cast back to its interim file schema, put in a
    deterministic order (Spark's shuffle order is arbitrary) and converted by
    DuckDB as the local engine's ``read_bucket`` does.
    """
    frames = {}
    con = duckdb.connect()
    con.execute(f"SET threads = {asof.DUCKDB_THREADS}")
    for group, batch in zip(GROUPS, batches, strict=True):
        for table in group:
            schema = schemas[table]
            part, _ = table_rows(batch, table, schema, stacked=len(group) > 1)
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


PART_COUNT_SCHEMA = pa.schema([pa.field("bucket", pa.int32()), pa.field("rows", pa.int64())])


def part_writing_task(
    fn: BucketFunction, schemas: dict[str, pa.Schema], out_schema: pa.Schema, parts: Path, **kwargs: Any
) -> Callable[..., pa.Table]:
    """The features task: build one bucket with ``fn``, write its part file into ``parts``, return its row count.

    The part is written under a temporary name and renamed, so a retried or
    speculative copy of the task never leaves a half-written file behind.
    """
    parts = Path(parts)

    def run(*batches: pa.Table) -> pa.Table:
        bucket = bucket_of(batches)
        frame = fn(split_bucket(batches, schemas), **kwargs)
        target = parts / f"bucket-{bucket:04d}.parquet"
        tmp = parts / f".{target.name}.{uuid.uuid4().hex}.tmp"
        stage.write_bucket_part(frame, out_schema, tmp)
        os.replace(tmp, target)
        return pa.table({"bucket": [bucket], "rows": [len(frame)]}, schema=PART_COUNT_SCHEMA)

    return run


# --- Spark plumbing --------------------------------------------------------------------------------


def bucketed_interim(
    spark: SparkSession, interim_dir: Path, schemas: dict[str, pa.Schema], n_buckets: int
) -> tuple[DataFrame, ...]:
    """The interim tables as one frame per entry of :data:`GROUPS`, each with a ``bucket`` column.

    Columns are ``<table>__<column>``, plus a ``_table`` tag in a frame that
    stacks two tables. The bucket of each of the 1024 slots comes from
    :func:`omvald.buckets.bucket_of_slot`, computed once here and broadcast.
    """
    from pyspark.sql import functions as F

    slots = np.arange(N_SLOTS, dtype=np.int16)
    slot_buckets = pd.DataFrame({"hash_slot": slots, "bucket": bucket_of_slot(slots, n_buckets).astype(np.int32)})
    frames = []
    for group in GROUPS:
        # one slot map per frame: a shared one makes cogroup's ``bucket`` column ambiguous
        slot_map = F.broadcast(spark.createDataFrame(slot_buckets))
        read = {t: spark.read.parquet(str(interim_dir / f"{t}.parquet")).join(slot_map, "hash_slot") for t in group}
        read = {t: df.select("bucket", *[F.col(f"`{n}`") for n in schemas[t].names]) for t, df in read.items()}
        frames.append(stacked_group(group, read, keep=["bucket"]))
    keys = bucket_partition_keys(spark, n_buckets)
    return tuple(with_partition_key(frame, keys) for frame in frames)


def build_bucket_parts(frames: Sequence[DataFrame], task: Callable[..., pa.Table]) -> dict[int, int]:
    """Run the part-writing ``task`` once per bucket on Spark; returns the rows written per bucket."""
    counts = per_bucket(frames, task, "bucket int, rows long").collect()
    return {row["bucket"]: row["rows"] for row in counts}


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
    """Spark twin of :func:`omvald.features.stage.run_features`: the same four files in ``out_dir``.

    The checks, registry, label-balance check and merge are the local
    stage's own functions, run on the driver; only the bucket loop runs on
    Spark, one task per bucket (the plan's bucket count). ``master`` is used
    only when no running session ``spark`` is given. ``bucket_fn`` replaces
    :func:`~omvald.features.build.build_features` (tests make a bucket fail
    with it). Returns the output meta, as the local stage does.
    """
    from omvald.spark.session import spark_session

    fcfg = cfg.features
    interim_dir, out_dir = Path(interim_dir), Path(out_dir)
    plan = stage.plan_features(fcfg, interim_dir)
    schema = plan.schema(with_labels=True)

    spark = spark or spark_session(master, n_buckets=plan.n_buckets, java=cfg.spark.java)
    schemas = interim_schemas(interim_dir)
    frames = bucketed_interim(spark, interim_dir, schemas, plan.n_buckets)

    with atomic_path(out_dir, stage="features") as tmp:
        parts = tmp / "_parts"
        parts.mkdir(parents=True)
        task = part_writing_task(
            bucket_fn or build_features,
            schemas,
            schema,
            parts,
            as_of_dates=plan.dates,
            cfg=fcfg,
            meta=plan.meta,
            with_labels=True,
        )
        try:
            counts = build_bucket_parts(frames, task)
        except Exception as exc:
            raise_user_error(exc)
            raise
        log.debug("features (spark): %d buckets built, %d rows", len(counts), sum(counts.values()))
        out_meta = stage.finish_output(plan, fcfg, parts, tmp)
    n_training, n_scoring = out_meta["n_rows"]["training"], out_meta["n_rows"]["scoring"]
    log.info("features (spark): %d training rows, %d scoring rows -> %s", n_training, n_scoring, out_dir)
    return out_meta

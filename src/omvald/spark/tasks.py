"""Run a function once per customer bucket on Spark: grouping, partitioning, task settings, errors.

Shared by the features, scoring and validation jobs. A bucket's rows of
one or two frames (``groupBy`` / ``cogroup``) go to one Python task; each
frame has a ``bucket`` column and a ``_part`` column to group on
(:func:`bucket_partition_keys`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from omvald import errors

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


# cogroup's two frames: touchpoints (the long table, ~3x billing's rows) alone, billing
# stacked on customers. All three stacked in one frame padded every touchpoint with the
# other tables' ~20 null columns, and Spark's sort and Arrow conversion of a bucket then
# cost more than building its features (benchmarks/README.md).
GROUPS: tuple[tuple[str, ...], ...] = (("touchpoints",), ("billing", "customers"))
PART = "_part"
TAG, SEP = "_table", "__"  # in a frame of stacked tables: the row's table; column ``<table>__<column>``


def stacked_group(group: tuple[str, ...], tables: dict[str, DataFrame], keep: list[str]) -> DataFrame | None:
    """The frame of ``group`` (one of :data:`GROUPS`) from the ``tables`` of it that have rows: columns renamed
    ``<table>__<column>`` (``keep`` as is), a ``_table`` tag if the group has two tables; ``None`` without tables.

    Tables may share a column name with a different type (a customer attribute
    ``value``), hence the prefix; columns of the other table are null.
    """
    from pyspark.sql import functions as F

    stacked = None
    for table, df in tables.items():
        cols = [F.col(k) for k in keep] + ([F.lit(table).alias(TAG)] if len(group) > 1 else [])
        cols += [F.col(f"`{n}`").alias(f"{table}{SEP}{n}") for n in df.columns if n not in keep]
        df = df.select(*cols)
        stacked = df if stacked is None else stacked.unionByName(df, allowMissingColumns=True)
    return stacked


def table_rows(batch: pa.Table, table: str, schema: pa.Schema, stacked: bool) -> tuple[pa.Table, pa.Table]:
    """``table``'s rows of one group's batch: its columns typed by ``schema``, and the batch's own rows.

    A bucket with rows in only one frame gets an empty batch for the other
    (Spark may send it without columns): then both are empty.
    """
    if batch.num_rows == 0:
        return schema.empty_table(), batch
    rows = batch.filter(pc.equal(batch.column(TAG), table)) if stacked else batch
    columns = [rows.column(f"{table}{SEP}{f.name}").cast(f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema), rows


def bucket_partition_keys(spark: SparkSession, n_buckets: int) -> list[int]:
    """For each bucket ``b``, an int that Spark's hash partitioning sends to shuffle partition ``b``.

    Grouping on the bucket number itself hashes ``n`` buckets into ``n``
    partitions with collisions (measured: 32 buckets land in 18 partitions,
    up to 3 in one), so one task builds 3 buckets while other cores idle.
    Grouping on these keys sends bucket ``b`` to partition ``b`` modulo the
    session's ``spark.sql.shuffle.partitions`` (which
    :func:`omvald.spark.session.spark_session` sets to ``n_buckets``), so
    every bucket gets its own partition when there are enough. The keys come
    from Spark's own ``hash``, the function of its hash partitioning.
    """
    from pyspark.sql import functions as F

    n = int(spark.conf.get("spark.sql.shuffle.partitions"))
    ints = F.col("id").cast("int")
    candidates = spark.range(64 * n).select(ints.alias("key"), F.pmod(F.hash(ints), F.lit(n)).alias("partition"))
    found = {r["partition"]: r["key"] for r in candidates.groupBy("partition").agg(F.min("key").alias("key")).collect()}
    # (1 - 1/n) ** (64 n) < 1e-27: a partition without a key is practically impossible; fall back to the bucket
    return [found.get(b % n, b) for b in range(n_buckets)]


def with_partition_key(frame: DataFrame, keys: list[int]) -> DataFrame:
    """``frame`` with the grouping column ``_part``: the partition key of its ``bucket``."""
    from pyspark.sql import functions as F

    return frame.withColumn(PART, F.element_at(F.array(*[F.lit(k) for k in keys]), F.col("bucket") + 1))


def bucket_of(batches: Sequence[pa.Table], default: int | None = None) -> int:
    """The bucket of one group's rows (a group has rows in at least one of its frames, else ``default``)."""
    for batch in batches:
        if batch.num_rows:
            return int(batch.column("bucket")[0].as_py())
    if default is None:
        raise ValueError("a bucket group without rows")
    return default


RESULT_BATCH_ROWS = 10_000


def per_bucket(frames: DataFrame | Sequence[DataFrame], fn: Callable[..., pa.Table], schema: Any) -> DataFrame:
    """``fn(*tables)`` once per bucket, with that bucket's rows of each frame (one frame or two).

    Groups on ``_part`` (:func:`bucket_partition_keys`). One frame:
    ``groupBy(...).applyInArrow``; two: ``cogroup``. Spark reads the
    function's arity to decide whether it takes the key, so the wrappers
    have fixed arguments.
    """
    frames = (frames,) if not isinstance(frames, (tuple, list)) else tuple(frames)
    if len(frames) == 1:

        def one(batch: pa.Table) -> pa.Table:
            return fn(batch)

        return frames[0].groupBy(PART).applyInArrow(one, schema)
    left, right = frames

    def two(first: pa.Table, second: pa.Table) -> pa.Table:
        return fn(first, second)

    return left.groupBy(PART).cogroup(right.groupBy(PART)).applyInArrow(two, schema)


def apply_per_bucket(
    frames: DataFrame | Sequence[DataFrame], task: Callable[..., pa.Table], out_schema: pa.Schema
) -> DataFrame:
    """``task(*tables)`` per bucket (see :func:`per_bucket`) with an explicit output schema (plus ``bucket``)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    with_bucket = out_schema.append(pa.field("bucket", pa.int32()))

    def run(*batches: pa.Table) -> pa.Table:
        out = task(*batches)
        out = out.append_column("bucket", pa.array(np.full(out.num_rows, bucket_of(batches), np.int32)))
        # Spark sends the table back one Arrow batch per chunk, and the JVM takes
        # each batch in one direct-memory buffer (1 GB in all by default): a
        # bucket of 1M / 32 customers at 12 dates in one chunk (~400 MB) failed.
        return pa.Table.from_batches(out.to_batches(max_chunksize=RESULT_BATCH_ROWS), schema=out.schema)

    return per_bucket(frames, run, from_arrow_schema(with_bucket))


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

"""A folder of contract files read on Spark, each row tagged with its customer's bucket.

Spark reads each file as :mod:`omvald.data.read` does (CSV: every column as
text; Parquet: the file's types; personal columns never loaded), numbers
its rows in file order (the line numbers of error examples) and tags each
row with its bucket: :func:`omvald.buckets.hash_slot` of the parsed id
(:func:`omvald.data.contract.parse_id`), so a customer's rows of the three
tables meet in one task. Inside the task :func:`raw_frames` rebuilds the
raw frames of its bucket, indexed by row number, for
:mod:`omvald.spark.validate` and the scoring tasks.

Encodings: the local reader falls back to Windows-1252 when it meets a line
that is not UTF-8; Spark cannot, so the driver decides each CSV file's
encoding up front, as the local reader would end up reading it
(:func:`omvald.data.encoding.whole_file_encoding`: one scan of the file).
Spark reads Windows-1252 as ISO-8859-1 (it accepts no other single-byte
encoding), and the bucket tagger puts the letters that differ right
(``€``, ``"``, ``—``...); UTF-16 is read whole (``multiLine``), since
Spark splits lines on bytes.

Personal data by content (:mod:`omvald.data.personal`) is judged on the
whole customers table, as the local engine judges it: the driver reads it
once (:func:`drop_personal_by_content`) and Spark never loads the columns
found.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from omvald.buckets import bucket_of_slot, hash_slot
from omvald.config import DataConfig
from omvald.data import contract as C
from omvald.data.encoding import UTF8, UTF16, WINDOWS_1252, latin1_to_cp1252, whole_file_encoding
from omvald.data.read import csv_header, find_tables, is_csv, is_personal, read_table
from omvald.data.validate import drop_personal_columns, validate_tables
from omvald.errors import DataContractError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ROW = "_row"
ROW_BITS = 33  # monotonically_increasing_id: partition number above bit 33, row within the partition below


@dataclass(frozen=True)
class RawFile:
    """One contract file as Spark reads it: ``columns`` without personal ones; ``schema`` for Parquet."""

    table: str
    path: Path
    columns: list[str]
    schema: pa.Schema | None = None  # None: CSV, every column text
    names: tuple[str, ...] = ()  # CSV: every header name (Spark reads columns by position)
    delimiter: str = ","
    encoding: str = UTF8  # CSV: omvald.data.encoding's name for the whole file's encoding

    @property
    def csv(self) -> bool:
        return self.schema is None

    @property
    def has_ids(self) -> bool:
        return "customer_id" in self.columns


def find_raw_files(input_dir: str | Path, cfg: DataConfig) -> dict[str, RawFile | None]:
    """The contract files of ``input_dir`` and their columns, from headers and footers only (no rows read)."""
    paths = find_tables(input_dir)
    if paths["customers"] is None:  # the very error (and text) of validate_tables
        validate_tables(dict.fromkeys(C.TABLES), cfg)
    files: dict[str, RawFile | None] = {}
    for table, path in paths.items():
        if path is None:
            files[table] = None
        elif is_csv(path):
            encoding = whole_file_encoding(path, table)
            names, delimiter = csv_header(path, encoding)
            if len(set(names)) != len(names):  # as omvald.data.read._read_csv
                dup = sorted({n for n in names if names.count(n) > 1})
                raise DataContractError(
                    table, ", ".join(dup), "column name appears more than once in the header", path=str(path)
                )
            keep = [n for n in names if not is_personal(n, cfg.personal_columns)]
            files[table] = RawFile(table, path, keep, None, tuple(names), delimiter, encoding)
        else:
            try:
                schema = pq.ParquetDataset(path).schema
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataContractError(table, None, f"cannot be read as Parquet: {exc}", path=str(path)) from exc
            keep = [n for n in schema.names if not is_personal(n, cfg.personal_columns) and not n.startswith("__index")]
            files[table] = RawFile(table, path, keep, pa.schema([schema.field(n) for n in keep]))
    return files


def drop_personal_by_content(
    files: dict[str, RawFile | None], cfg: DataConfig
) -> tuple[dict[str, RawFile | None], dict[str, dict[str, str]], list[str]]:
    """Customer attributes that hold personal data by content, judged on the whole table on the driver.

    Returns the files with those columns no longer read, ``{"customers":
    {column: reason}}`` (empty when none) and the local engine's warnings
    (:func:`omvald.data.validate.drop_personal_columns`, same text).
    """
    customers = files.get("customers")
    if customers is None:
        return files, {}, []
    frame = read_table(customers.path, "customers", cfg.personal_columns)
    _, found, warnings = drop_personal_columns({"customers": frame})
    if not found:
        return files, {}, warnings
    kept = [c for c in customers.columns if c not in found["customers"]]
    schema = pa.schema([customers.schema.field(n) for n in kept]) if customers.schema is not None else None
    return {**files, "customers": dataclasses.replace(customers, columns=kept, schema=schema)}, found, warnings


def file_paths(files: dict[str, RawFile | None]) -> dict[str, str | None]:
    """The file of each table as error messages name it."""
    return {t: (str(f.path) if f is not None else None) for t, f in files.items()}


# --- Spark plumbing --------------------------------------------------------------------------------


def read_raw_file(spark: SparkSession, f: RawFile) -> DataFrame:
    """The file's rows: ``_row`` (file order) and the raw columns; empty text is a missing value, as in Arrow."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    if f.csv:
        schema = StructType([StructField(n, StringType()) for n in f.names])
        reader = spark.read.option("header", True).option("sep", f.delimiter).option("escape", '"')
        if f.encoding == WINDOWS_1252:  # one character per byte; the tagger maps the 0x80-0x9F letters
            reader = reader.option("encoding", "ISO-8859-1")
        elif f.encoding == UTF16:  # line splitting works on bytes: read each file whole
            reader = reader.option("encoding", "UTF-16").option("multiLine", True)
        df = reader.option("mode", "FAILFAST").schema(schema).csv(str(f.path))
        cols = [F.when(F.col(f"`{n}`") == "", None).otherwise(F.col(f"`{n}`")).alias(n) for n in f.columns]
        # Not yet a row number: partition << 33 | row in partition. It orders rows as in the file
        # (a file's splits are its partitions, in order) and becomes a line number only for error
        # examples (:func:`csv_line_numbers`), which saves counting every file's rows up front.
        return df.select(F.monotonically_increasing_id().alias(ROW), *cols)
    df = spark.read.parquet(str(f.path))
    row = F.col("_metadata.row_index")
    if f.path.is_dir():  # a folder of part files: rows counted in the order pyarrow reads them
        offsets, n = [], 0
        for part in pq.ParquetDataset(f.path).files:
            offsets += [F.lit(Path(part).name), F.lit(n)]
            n += pq.ParquetFile(part).metadata.num_rows
        row = F.create_map(*offsets)[F.col("_metadata.file_name")] + row
    return df.select(row.alias(ROW), *[F.col(f"`{n}`") for n in f.columns])


def stacked_raw(spark: SparkSession, files: dict[str, RawFile | None], n_buckets: int) -> tuple[DataFrame, ...]:
    """The raw rows as one frame per group of :data:`omvald.spark.tasks.GROUPS`.

    Columns: ``bucket``, ``_row``, ``<table>__<column>``, a ``_table`` tag in a
    frame that stacks two tables, and the grouping key ``_part``. A table
    without ``customer_id`` contributes no rows: each bucket fails on its
    missing column anyway, and without ids there is no bucket. If no table
    has ids, one row of bucket 0 makes one task report the missing column.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegerType, StructField, StructType

    from omvald.spark.tasks import GROUPS, bucket_partition_keys, stacked_group, with_partition_key

    frames = []
    for group in GROUPS:
        read = {}
        for table in group:
            f = files.get(table)
            if f is None or not f.has_ids:
                continue
            df = read_raw_file(spark, f)
            schema = StructType([*df.schema.fields, StructField("bucket", IntegerType())])
            read[table] = df.mapInArrow(_bucket_tagger(n_buckets, f.encoding == WINDOWS_1252), schema)
        stacked = stacked_group(group, read, keep=["bucket", ROW])
        frames.append(stacked if stacked is not None else spark.createDataFrame([], "bucket int, _row long"))
    if all(f is None or not f.has_ids for f in files.values()):
        frames[-1] = spark.range(1).select(F.lit(0).alias("bucket"), F.col("id").alias(ROW))
    keys = bucket_partition_keys(spark, n_buckets)
    return tuple(with_partition_key(frame, keys) for frame in frames)


def _bucket_tagger(n_buckets: int, cp1252: bool = False):
    def tag(batches):
        for batch in batches:
            if cp1252:  # before the id is hashed: an id may hold such a letter too
                batch = as_cp1252(batch)
            ids = C.parse_id(batch.column("customer_id").to_pandas())
            bucket = bucket_of_slot(hash_slot(ids).to_numpy(), n_buckets).astype(np.int32)
            yield batch.append_column("bucket", pa.array(bucket))

    return tag


def as_cp1252(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Text columns read as ISO-8859-1 as Windows-1252 reads the same bytes (only values that differ change)."""
    columns = []
    for column in batch.columns:
        if pa.types.is_string(column.type) and pc.any(pc.match_substring_regex(column, "[\u0080-\u009f]")).as_py():
            column = pa.array([None if v is None else latin1_to_cp1252(v) for v in column.to_pylist()], pa.string())
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


# --- inside a task ---------------------------------------------------------------------------------


def raw_frames(batches: Sequence[pa.Table], files: dict[str, RawFile | None]) -> dict[str, pd.DataFrame | None]:
    """Each table's raw rows of one bucket (its rows of each :func:`stacked_raw` frame), in file order,
    indexed by row number, typed as read.py reads them."""
    from omvald.spark.tasks import GROUPS, table_rows

    frames: dict[str, pd.DataFrame | None] = {}
    batch_of = {table: (batch, len(group) > 1) for group, batch in zip(GROUPS, batches, strict=True) for table in group}
    for table, f in files.items():
        if f is None:
            frames[table] = None
            continue
        if not f.columns:  # an empty CSV file: no rows, no columns
            frames[table] = pd.DataFrame()
            continue
        schema = f.schema or pa.schema([pa.field(n, pa.string()) for n in f.columns])
        batch, stacked = batch_of[table]
        if f.has_ids and batch.num_rows:
            part, rows = table_rows(batch, table, schema, stacked)
            order = pc.sort_indices(rows.column(ROW))
            part, index = part.take(order), rows.column(ROW).take(order).to_numpy()
        else:
            part, index = schema.empty_table(), np.zeros(0, dtype=np.int64)
        for i, field in enumerate(part.schema):  # as omvald.data.read._read_parquet: dates as datetimes
            if pa.types.is_date(field.type):
                part = part.set_column(i, field.name, part.column(i).cast(pa.timestamp("us")))
        frame = part.to_pandas(ignore_metadata=True)
        frame.index = pd.Index(index)
        frames[table] = frame
    return frames


def csv_line_numbers(spark: SparkSession, files: dict[str, RawFile | None]):
    """``relabel(table, label)``: the file row of a CSV row labelled ``partition << 33 | row`` (error path only)."""
    offsets: dict[str, dict[int, int]] = {}

    def relabel(table: str, label: int) -> int:
        f = files.get(table)
        if f is None or not f.csv:
            return label
        if table not in offsets:
            from pyspark.sql import functions as F

            counts = dict(read_raw_file(spark, f).groupBy(F.spark_partition_id().alias("p")).count().collect())
            offsets[table], n = {}, 0
            for p in sorted(counts):
                offsets[table][p], n = n, n + counts[p]
        return offsets[table][label >> ROW_BITS] + (label & ((1 << ROW_BITS) - 1))

    return relabel

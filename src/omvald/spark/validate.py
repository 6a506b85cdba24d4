"""A folder of contract files read and validated on Spark, one task per bucket, with the local engine's errors.

Spark reads each file as :mod:`omvald.data.read` does (CSV: every column as
text; Parquet: the file's types; personal columns never loaded), numbers
its rows in file order (the line numbers of the error examples) and tags
each row with its bucket: :func:`omvald.buckets.hash_slot` of the parsed id
(:func:`omvald.data.contract.parse_id`), so a customer's rows of the three
tables meet in one task. The task rebuilds the raw frames of its bucket,
indexed by row number, and runs :func:`omvald.data.validate.validate_rows`,
the checks of ``omvald validate`` itself: every rule looks at one customer's
rows, so a bucket fails exactly where the whole table would.

Errors: the checks run in a fixed order and each failure carries its number
(``step``). The driver keeps the lowest step over all buckets (what the
whole table reports first), adds up the row and id counts of the buckets
that failed there, and keeps the first five examples (file order, or slot
order for the checks that run on sorted rows), so it raises the local
engine's :class:`~omvald.errors.DataContractError` word for word.

Facts that need the whole table are decided on the driver from per-bucket
summaries: ``meta.json`` (dates, rows; :func:`omvald.data.validate.data_meta`),
whether a customer attribute is numeric (a column is a number only if it is
one in every bucket) and the distinct values that reveal a binding column.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from omvald.buckets import bucket_of_slot, hash_slot
from omvald.config import DataConfig
from omvald.data import contract as C
from omvald.data.read import _header, find_tables, is_csv, is_personal
from omvald.data.validate import (
    absent_tables,
    add_warning_facts,
    data_meta,
    data_warnings,
    example_label,
    row_warnings,
    validate_rows,
    validate_tables,
    warning_facts,
)
from omvald.errors import DataContractError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TAG, SEP, ROW = "_table", "__", "_row"
ROW_BITS = 33  # monotonically_increasing_id: partition number above bit 33, row within the partition below
DISTINCT_CAP = 1000  # distinct values of a text attribute kept per bucket (binding column detection)
COUNT = re.compile(r"\((\d+) ")  # "(12 row(s))", "(3 distinct id(s))", "(2 id(s) repeated)"


@dataclass(frozen=True)
class RawFile:
    """One contract file as Spark reads it: ``columns`` without personal ones; ``schema`` for Parquet."""

    table: str
    path: Path
    columns: list[str]
    schema: pa.Schema | None = None  # None: CSV, every column text
    names: tuple[str, ...] = ()  # CSV: every header name (Spark reads columns by position)
    delimiter: str = ","

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
            names, delimiter = _header(path)
            if len(set(names)) != len(names):  # as omvald.data.read._read_csv
                dup = sorted({n for n in names if names.count(n) > 1})
                raise DataContractError(
                    table, ", ".join(dup), "column name appears more than once in the header", path=str(path)
                )
            keep = [n for n in names if not is_personal(n, cfg.personal_columns)]
            files[table] = RawFile(table, path, keep, None, tuple(names), delimiter)
        else:
            try:
                schema = pq.ParquetDataset(path).schema
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataContractError(table, None, f"cannot be read as Parquet: {exc}", path=str(path)) from exc
            keep = [n for n in schema.names if not is_personal(n, cfg.personal_columns) and not n.startswith("__index")]
            files[table] = RawFile(table, path, keep, pa.schema([schema.field(n) for n in keep]))
    return files


def file_paths(files: dict[str, RawFile | None]) -> dict[str, str | None]:
    """The file of each table as error messages name it."""
    return {t: (str(f.path) if f is not None else None) for t, f in files.items()}


# --- Spark plumbing --------------------------------------------------------------------------------


def _read(spark: SparkSession, f: RawFile) -> DataFrame:
    """The file's rows: ``_row`` (file order) and the raw columns; empty text is a missing value, as in Arrow."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    if f.csv:
        schema = StructType([StructField(n, StringType()) for n in f.names])
        df = (
            spark.read.option("header", True)
            .option("sep", f.delimiter)
            .option("escape", '"')
            .option("mode", "FAILFAST")
            .schema(schema)
            .csv(str(f.path))
        )
        cols = [F.when(F.col(f"`{n}`") == "", None).otherwise(F.col(f"`{n}`")).alias(n) for n in f.columns]
        # Not yet a row number: partition << 33 | row in partition. It orders rows as in the file
        # (a file's splits are its partitions, in order) and becomes a line number only for error
        # examples (:func:`_csv_line_numbers`), which saves counting every file's rows up front.
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


def stacked_raw(spark: SparkSession, files: dict[str, RawFile | None], n_buckets: int) -> DataFrame:
    """The raw rows of every table in one frame: ``bucket``, ``_table``, ``_row``, ``<table>__<column>``.

    A table without ``customer_id`` contributes no rows: each bucket fails on
    its missing column anyway, and without ids there is no bucket.
    """
    from pyspark.sql.types import IntegerType, StructField, StructType

    stacked = None
    for table, f in files.items():
        if f is None or not f.has_ids:
            continue
        df = _read(spark, f)
        df = df.mapInArrow(
            _bucket_tagger(n_buckets), StructType([*df.schema.fields, StructField("bucket", IntegerType())])
        )
        from pyspark.sql import functions as F

        cols = [F.col("bucket"), F.lit(table).alias(TAG), F.col(ROW)]
        cols += [F.col(f"`{n}`").alias(f"{table}{SEP}{n}") for n in f.columns]
        df = df.select(*cols)
        stacked = df if stacked is None else stacked.unionByName(df, allowMissingColumns=True)
    if stacked is None:  # not even customers has ids: one (empty) bucket reports the missing column
        from pyspark.sql import functions as F

        stacked = spark.range(1).select(F.lit(0).alias("bucket"), F.lit("none").alias(TAG), F.col("id").alias(ROW))
    from omvald.spark.features import bucket_partition_keys, with_partition_key

    return with_partition_key(stacked, bucket_partition_keys(spark, n_buckets))


def _bucket_tagger(n_buckets: int):
    def tag(batches):
        for batch in batches:
            ids = C.parse_id(batch.column("customer_id").to_pandas())
            bucket = bucket_of_slot(hash_slot(ids).to_numpy(), n_buckets).astype(np.int32)
            yield batch.append_column("bucket", pa.array(bucket))

    return tag


# --- inside a task ---------------------------------------------------------------------------------


def raw_frames(batch: pa.Table, files: dict[str, RawFile | None]) -> dict[str, pd.DataFrame | None]:
    """Each table's raw rows of one bucket, in file order, indexed by row number, typed as read.py reads them."""
    frames: dict[str, pd.DataFrame | None] = {}
    tags = batch.column(TAG) if TAG in batch.column_names else None
    for table, f in files.items():
        if f is None:
            frames[table] = None
            continue
        if not f.columns:  # an empty CSV file: no rows, no columns
            frames[table] = pd.DataFrame()
            continue
        schema = f.schema or pa.schema([pa.field(n, pa.string()) for n in f.columns])
        if f.has_ids and tags is not None:
            rows = batch.filter(pc.equal(tags, table))
            rows = rows.take(pc.sort_indices(rows.column(ROW)))
            part = pa.Table.from_arrays(
                [rows.column(f"{table}{SEP}{n}").cast(schema.field(n).type) for n in schema.names], schema=schema
            )
            index = rows.column(ROW).to_numpy()
        else:
            part, index = schema.empty_table(), np.zeros(0, dtype=np.int64)
        for i, field in enumerate(part.schema):  # as omvald.data.read._read_parquet: dates as datetimes
            if pa.types.is_date(field.type):
                part = part.set_column(i, field.name, part.column(i).cast(pa.timestamp("us")))
        frame = part.to_pandas(ignore_metadata=True)
        frame.index = pd.Index(index)
        frames[table] = frame
    return frames


def check_bucket(
    batch: pa.Table, *, files: dict[str, RawFile | None], cfg: DataConfig, as_of: Any, paths: dict[str, str | None]
) -> pa.Table:
    """Validate one bucket; one row of JSON: the failure (``error``) or the facts the driver sums up."""
    bucket = int(batch.column("bucket")[0].as_py()) if batch.num_rows else 0
    raw = raw_frames(batch, files)
    try:
        tables, dropped, extra, _ = validate_rows(raw, cfg, as_of, paths, whole=False)
    except DataContractError as err:
        report = {
            "error": {
                "bucket": bucket,
                "step": getattr(err, "step", 0),
                "sorted_rows": getattr(err, "sorted_rows", False),
                "table": err.table,
                "column": err.column,
                "problem": err.problem,
                "examples": err.examples,
                "path": err.path,
            }
        }
        return pa.table({"payload": [json.dumps(report)]})
    report = {"rows": {t: len(df) for t, df in tables.items()}, "dropped": dropped, "extra": extra}
    report["columns"] = {t: list(df.columns) for t, df in tables.items()}
    report["dates"] = {
        t: {c: _extremes(df[c]) for c in df.columns if df[c].dtype.kind == "M"} for t, df in tables.items()
    }
    report["attributes"] = _attribute_facts(tables["customers"])
    report["absent"] = absent_tables(raw)
    report["warning_facts"] = warning_facts(tables)
    return pa.table({"payload": [json.dumps(report)]})


def _extremes(s: pd.Series) -> list[str | None]:
    s = s.dropna()
    return [s.min().isoformat(), s.max().isoformat()] if len(s) else [None, None]


def _attribute_facts(customers: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per customer attribute: the kind this bucket's values gave, whether any is given, a few distinct values."""
    facts = {}
    for column in customers.columns:
        if C.column_kind("customers", column) is not None or column == "hash_slot":
            continue
        s = customers[column]
        kind = "bool" if s.dtype == bool else "number" if s.dtype.kind in "iuf" else "string"
        values = s.dropna()
        distinct = pd.unique(values.astype("str")) if kind == "string" else []
        facts[column] = {
            "kind": kind,
            "given": bool(len(values)),
            "distinct": [str(v) for v in distinct[: DISTINCT_CAP + 1]],
        }
    return facts


def with_attribute_kinds(customers: pd.DataFrame, raw: pd.DataFrame | None, kinds: dict[str, str]) -> pd.DataFrame:
    """Give every attribute column the kind decided on the whole table (a bucket may have decided otherwise).

    :func:`omvald.data.contract.parse_static` makes a text column numeric
    when every value is a number; one bucket's values can all be numbers
    while another's are not. The text is re-read from the raw column as
    ``parse_static`` reads text.
    """
    out = customers
    for column, kind in kinds.items():
        s = customers[column]
        if kind == "number" and s.dtype.kind not in "iuf":  # this bucket: no value at all
            out = out.assign(**{column: C.parse_number(s)[0]})
        elif kind == "string" and s.dtype.kind in "iuf" and raw is not None:
            text = C.to_str(C.parse_text(raw[column], lower=False))
            by_id = pd.Series(text.to_numpy(), index=C.to_str(C.parse_id(raw["customer_id"])).to_numpy())
            by_id = by_id[~by_id.index.duplicated()]
            out = out.assign(**{column: pd.Series(by_id.reindex(customers["customer_id"]).to_numpy(), dtype="str")})
    return out


# --- on the driver ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validated:
    """What the driver knows after every bucket passed: the interim ``meta`` and the attribute facts."""

    meta: dict[str, Any]
    attribute_kinds: dict[str, str]  # column -> number | string | bool, over the whole table
    distinct: dict[str, list[str] | None]  # text attribute -> distinct values (None: more than the cap)
    warnings: list[str]  # the local validation's warnings, from the buckets' sums


def validate_on_spark(
    spark: SparkSession,
    stacked: DataFrame,
    files: dict[str, RawFile | None],
    cfg: DataConfig,
    as_of: Any = None,
) -> Validated:
    """Run :func:`check_bucket` on every bucket; raise the local engine's error, else return the merged facts."""
    from omvald.spark.features import apply_per_bucket, raise_user_error

    task = functools.partial(check_bucket, files=files, cfg=cfg, as_of=as_of, paths=file_paths(files))
    try:
        rows = apply_per_bucket(stacked, task, pa.schema([pa.field("payload", pa.string())])).collect()
    except Exception as exc:
        raise_user_error(exc)
        raise
    reports = [json.loads(r["payload"]) for r in rows]
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        raise merge_errors(errors, _csv_line_numbers(spark, files))
    ok = [r for r in reports if "error" not in r]
    if not ok or sum(r["rows"]["customers"] for r in ok) == 0:  # the one whole-table check
        raise DataContractError("customers", None, "the table has no rows", path=file_paths(files)["customers"])
    return _merge_facts(ok, cfg, as_of)


def merge_errors(errors: list[dict[str, Any]], relabel=None) -> DataContractError:
    """The error the whole table gives, from the buckets' first errors (see the module docstring).

    ``relabel(table, label)`` turns a task's row label into the file's row
    number (CSV files, whose tasks only know an order).
    """
    step = min(e["step"] for e in errors)
    at_step = sorted((e for e in errors if e["step"] == step), key=lambda e: e["bucket"])
    lead = at_step[0]
    same = [e for e in at_step if (e["table"], e["column"], COUNT.sub("(", e["problem"])) == (
        lead["table"], lead["column"], COUNT.sub("(", lead["problem"]))]  # fmt: skip
    counts = np.sum([[int(n) for n in COUNT.findall(e["problem"])] for e in same], axis=0).astype(int)
    numbers = iter(counts.tolist())
    problem = COUNT.sub(lambda m: f"({next(numbers)} ", lead["problem"])
    keyed = []
    for e in same:
        for i, text in enumerate(e["examples"]):
            label = example_label(text)
            if relabel is not None:
                new = relabel(e["table"], label)
                if new != label:
                    where, rest = text.split(":", 1)
                    text = f"{where.split()[0]} {int(new) + 2}:{rest}"
                    label = new
            keyed.append(((e["bucket"], i) if lead["sorted_rows"] else (label, 0), text))
    examples = [text for _, text in sorted(keyed, key=lambda k: k[0])[:5]]
    return DataContractError(lead["table"], lead["column"], problem, examples, lead["path"])


def _csv_line_numbers(spark: SparkSession, files: dict[str, RawFile | None]):
    """``relabel(table, label)``: the file row of a CSV row labelled ``partition << 33 | row`` (error path only)."""
    offsets: dict[str, dict[int, int]] = {}

    def relabel(table: str, label: int) -> int:
        f = files.get(table)
        if f is None or not f.csv:
            return label
        if table not in offsets:
            from pyspark.sql import functions as F

            counts = dict(_read(spark, f).groupBy(F.spark_partition_id().alias("p")).count().collect())
            offsets[table], n = {}, 0
            for p in sorted(counts):
                offsets[table][p], n = n, n + counts[p]
        return offsets[table][label >> ROW_BITS] + (label & ((1 << ROW_BITS) - 1))

    return relabel


def _merge_facts(reports: list[dict[str, Any]], cfg: DataConfig, as_of: Any) -> Validated:
    columns = reports[0]["columns"]
    # data_meta reads only the date columns and the columns' names: feed it each bucket's extremes.
    extremes = {}
    for table, names in columns.items():
        dated = {
            c: pd.to_datetime(pd.Series([v for r in reports for v in r["dates"][table][c]])).astype(C.DATE_DTYPE)
            for c in reports[0]["dates"][table]
        }
        frame = pd.DataFrame({n: dated.get(n, pd.Series(np.nan, index=range(2 * len(reports)))) for n in names})
        extremes[table] = frame
    dropped = {t: sum(r["dropped"][t] for r in reports) for t in C.TABLES}
    meta = data_meta(extremes, cfg, as_of, dropped, reports[0]["extra"])
    meta["rows"] = {t: sum(r["rows"][t] for r in reports) for t in C.TABLES}

    kinds: dict[str, str] = {}
    distinct: dict[str, list[str] | None] = {}
    for column in reports[0]["attributes"]:
        facts = [r["attributes"][column] for r in reports]
        found = {f["kind"] for f in facts if f["given"] or f["kind"] == "bool"}
        # as parse_static on the whole column: a number only if every given value is one
        kinds[column] = "bool" if "bool" in found else "number" if found == {"number"} else "string"
        values = sorted({v for f in facts for v in f["distinct"]})
        capped = any(len(f["distinct"]) > DISTINCT_CAP for f in facts)
        distinct[column] = None if capped else values
    warnings = row_warnings(reports[0]["absent"], reports[0]["extra"], dropped)
    warnings += data_warnings(add_warning_facts([r["warning_facts"] for r in reports]), meta)
    return Validated(meta, kinds, distinct, warnings)

"""A folder of contract files validated on Spark, one task per bucket, with the local engine's errors.

:mod:`omvald.spark.raw` reads the files and tags every row with its bucket;
each task rebuilds its bucket's raw frames and runs
:func:`omvald.data.validate.validate_rows`, the checks of ``omvald
validate`` itself: every rule looks at one customer's rows, so a bucket
fails exactly where the whole table would.

Errors: the checks run in a fixed order and each failure carries its number
(``step``). The driver keeps the lowest step over all buckets (what the
whole table reports first), adds up the row and id counts of the buckets
that failed there, and keeps the first five examples (file order, or slot
order for the checks that run on sorted rows), so it raises the local
engine's :class:`~omvald.errors.DataContractError` word for word.

Facts that need the whole table are decided on the driver from per-bucket
summaries: ``meta.json`` (dates, rows; :func:`omvald.data.validate.data_meta`),
whether a customer attribute is numeric (a column is a number only if it is
one in every bucket), the distinct values that reveal a binding column, and
the data warnings (from summed counts).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from omvald.config import DataConfig
from omvald.data import contract as C
from omvald.data.bucket_merge import error_record, merge_errors
from omvald.data.validate import (
    absent_tables,
    add_warning_facts,
    data_meta,
    data_warnings,
    row_warnings,
    validate_rows,
    warning_facts,
)
from omvald.errors import DataContractError
from omvald.features.facts import DISTINCT_CAP, AttributeFacts
from omvald.spark.raw import RawFile, csv_line_numbers, file_paths, raw_frames
from omvald.spark.tasks import bucket_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def check_bucket(
    *batches: pa.Table, files: dict[str, RawFile | None], cfg: DataConfig, as_of: Any, paths: dict[str, str | None]
) -> pa.Table:
    """Validate one bucket (its rows of each raw frame); one row of JSON: the failure or the facts the driver sums."""
    bucket = bucket_of(batches, default=0)
    raw = raw_frames(batches, files)
    try:
        tables, dropped, extra, _ = validate_rows(raw, cfg, as_of, paths, whole=False)
    except DataContractError as err:
        report = {"error": error_record(err, bucket)}
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


# --- on the driver ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validated:
    """What the driver knows after every bucket passed: the interim ``meta`` and the attribute facts."""

    meta: dict[str, Any]
    attribute_kinds: dict[str, str]  # column -> number | string | bool, over the whole table
    distinct: dict[str, list[str] | None]  # text attribute -> distinct values (None: more than DISTINCT_CAP)
    warnings: list[str]  # the local validation's warnings, from the buckets' sums

    def attribute_facts(self) -> AttributeFacts:
        """The whole table's :class:`~omvald.features.facts.AttributeFacts` (text attributes are categorical)."""
        kinds = {c: "categorical" if k == "string" else "numeric" for c, k in self.attribute_kinds.items()}
        distinct = {c: values for c, values in self.distinct.items() if kinds.get(c) == "categorical"}
        return AttributeFacts(kinds, distinct)


def validate_on_spark(
    spark: SparkSession,
    stacked: Sequence[DataFrame],
    files: dict[str, RawFile | None],
    cfg: DataConfig,
    as_of: Any = None,
) -> Validated:
    """Run :func:`check_bucket` on every bucket; raise the local engine's error, else return the merged facts."""
    from omvald.spark.tasks import apply_per_bucket, raise_user_error

    task = functools.partial(check_bucket, files=files, cfg=cfg, as_of=as_of, paths=file_paths(files))
    try:
        rows = apply_per_bucket(stacked, task, pa.schema([pa.field("payload", pa.string())])).collect()
    except Exception as exc:
        raise_user_error(exc)
        raise
    reports = [json.loads(r["payload"]) for r in rows]
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        raise merge_errors(errors, csv_line_numbers(spark, files))
    ok = [r for r in reports if "error" not in r]
    if not ok or sum(r["rows"]["customers"] for r in ok) == 0:  # the one whole-table check
        raise DataContractError("customers", None, "the table has no rows", path=file_paths(files)["customers"])
    return _merge_facts(ok, cfg, as_of)


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
        capped = any(len(f["distinct"]) > DISTINCT_CAP for f in facts) or len(values) > DISTINCT_CAP
        distinct[column] = None if capped else values
    warnings = row_warnings(reports[0]["absent"], reports[0]["extra"], dropped)
    warnings += data_warnings(add_warning_facts([r["warning_facts"] for r in reports]), meta)
    return Validated(meta, kinds, distinct, warnings)

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

Dates outside the bulk of the data (:mod:`omvald.data.dates`) need the whole
input's date histogram: every bucket reports its own, the driver adds them
up and cuts the bounds, and only when some row lies outside them does a
second pass exclude those rows bucket by bucket (and report the facts
again, after the exclusion); the scoring tasks exclude the same rows.
Personal data found by content is decided before any pass, on the driver
(:func:`omvald.spark.raw.drop_personal_by_content`), and given here for the
warnings and the meta.
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
from omvald.data.dates import (
    EARLIEST,
    add_exclusion_facts,
    add_histograms,
    bounds_of,
    check_customer_dates,
    date_histograms,
    excluded_rows,
    exclusion_warnings,
)
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
from omvald.features.btyd_fit import first_purchase_counts
from omvald.features.facts import DISTINCT_CAP, AttributeFacts
from omvald.spark.raw import RawFile, csv_line_numbers, file_paths, raw_frames
from omvald.spark.tasks import bucket_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


Bounds = tuple[Any, Any]  # (first, last) allowed day of the activity rows: omvald.data.dates.bounds_of


def validated_bucket(
    raw: dict[str, pd.DataFrame | None],
    cfg: DataConfig,
    as_of: Any,
    paths: dict[str, str | None],
    bounds: Bounds | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, int], dict[str, list[str]], dict[str, dict[str, Any]]]:
    """One bucket's raw frames validated as the local engine validates the whole table.

    ``(tables, duplicates dropped, columns dropped, excluded)``: the checks of
    :func:`omvald.data.validate.validate_rows`, the refusal of signup and
    churn dates before 1900 (and, with ``bounds``, of signups after the end
    of data) and, with ``bounds``, the exclusion of dates outside them
    (``excluded``: :func:`omvald.data.dates.excluded_rows` facts).
    """
    tables, dropped, extra, _ = validate_rows(raw, cfg, as_of, paths, whole=False)
    check_customer_dates(tables["customers"], bounds[1] if bounds is not None else None, paths.get("customers"))
    excluded: dict[str, dict[str, Any]] = {}
    if bounds is not None:
        tables, excluded = excluded_rows(tables, *bounds)
    return tables, dropped, extra, excluded


def check_bucket(
    *batches: pa.Table,
    files: dict[str, RawFile | None],
    cfg: DataConfig,
    as_of: Any,
    paths: dict[str, str | None],
    bounds: Bounds | None = None,
) -> pa.Table:
    """Validate one bucket (its rows of each raw frame); one row of JSON: the failure or the facts the driver sums."""
    bucket = bucket_of(batches, default=0)
    raw = raw_frames(batches, files)
    try:
        tables, dropped, extra, excluded = validated_bucket(raw, cfg, as_of, paths, bounds)
    except DataContractError as err:
        report = {"error": error_record(err, bucket)}
        return pa.table({"payload": [json.dumps(report)]})
    report = {"bucket": bucket, "rows": {t: len(df) for t, df in tables.items()}, "dropped": dropped, "extra": extra}
    report["columns"] = {t: list(df.columns) for t, df in tables.items()}
    report["dates"] = {
        t: {c: _extremes(df[c]) for c in df.columns if df[c].dtype.kind == "M"} for t, df in tables.items()
    }
    report["attributes"] = _attribute_facts(tables["customers"])
    report["absent"] = absent_tables(raw)
    report["warning_facts"] = warning_facts(tables)
    report["histograms"] = date_histograms(tables)
    report["excluded"] = excluded
    report["first_purchases"] = first_purchase_counts(tables["billing"])
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
    bounds: Bounds | None = None  # rows outside them are excluded in every task; None: nothing to exclude
    first_purchases: dict[str, int] | None = None  # customers by day of their first purchase (BG/NBD sample)

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
    personal: tuple[dict[str, dict[str, str]], list[str]] = ({}, []),
) -> Validated:
    """Run :func:`check_bucket` on every bucket; raise the local engine's error, else return the merged facts.

    ``personal``: the columns dropped as personal data by content and their
    warnings (:func:`omvald.spark.raw.drop_personal_by_content`).
    """
    ok = _check_all(spark, stacked, files, cfg, as_of, None)
    if sum(r["rows"]["customers"] for r in ok) == 0:  # the one whole-table check
        raise DataContractError("customers", None, "the table has no rows", path=file_paths(files)["customers"])
    # as the local engine: a date the user gives (data.data_end, --as-of) fixes the end
    bounds = bounds_of(add_histograms([r["histograms"] for r in ok]), as_of is None and cfg.data_end is None)
    if _outside(ok, bounds):
        ok = _check_all(spark, stacked, files, cfg, as_of, bounds)
    else:
        bounds = None
    return _merge_facts(ok, cfg, as_of, bounds, personal)


def _check_all(spark, stacked, files, cfg, as_of, bounds) -> list[dict[str, Any]]:
    """The reports of :func:`check_bucket` on every bucket; the local engine's error if one failed."""
    from omvald.spark.tasks import apply_per_bucket, raise_user_error

    task = functools.partial(check_bucket, files=files, cfg=cfg, as_of=as_of, paths=file_paths(files), bounds=bounds)
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
    if not ok:
        raise DataContractError("customers", None, "the table has no rows", path=file_paths(files)["customers"])
    return ok


def _outside(reports: list[dict[str, Any]], bounds: Bounds) -> bool:
    """Whether any date lies where :func:`omvald.data.dates.exclude_outside_bulk` excludes or refuses it."""
    first, last = bounds

    def extreme(table: str, column: str, pick) -> Any:
        values = [v for r in reports for v in r["dates"].get(table, {}).get(column, []) if v is not None]
        return pick(pd.Timestamp(v).date() for v in values) if values else None

    below = {("billing", "invoice_date"): first, ("touchpoints", "date"): first, ("billing", "paid_date"): EARLIEST}
    for (table, column), floor in below.items():
        low = extreme(table, column, min)
        if low is not None and low < floor:
            return True
    if last is None:
        return False
    after = [("billing", "invoice_date"), ("touchpoints", "date"), ("billing", "paid_date")]
    after += [("customers", "churn_date"), ("customers", "signup_date")]
    return any((high := extreme(t, c, max)) is not None and high > last for t, c in after)


def _merge_facts(
    reports: list[dict[str, Any]],
    cfg: DataConfig,
    as_of: Any,
    bounds: Bounds | None,
    personal: tuple[dict[str, dict[str, str]], list[str]],
) -> Validated:
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
    # the local engine's order: personal data, rows, dates outside the data, suspicious data
    dropped_personal, warnings = personal[0], list(personal[1])
    warnings += row_warnings(reports[0]["absent"], reports[0]["extra"], dropped)
    excluded: dict[str, dict[str, int]] = {}
    if bounds is not None:
        ordered = sorted(reports, key=lambda r: r["bucket"])  # table order: the local examples
        excluded, date_warnings = exclusion_warnings(add_exclusion_facts([r["excluded"] for r in ordered]), *bounds)
        warnings += date_warnings
    meta["personal_data_dropped"] = dropped_personal
    meta["dates_excluded"] = excluded
    warnings += data_warnings(add_warning_facts([r["warning_facts"] for r in reports]), meta)
    first_purchases: dict[str, int] = {}
    for r in reports:
        for day, n in r["first_purchases"].items():
            first_purchases[day] = first_purchases.get(day, 0) + n
    return Validated(meta, kinds, distinct, warnings, bounds, first_purchases)

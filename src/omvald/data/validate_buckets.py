"""``omvald validate`` out of core: a folder of contract files validated one bucket of customers at a time.

The same rules, messages and output as :func:`omvald.data.validate.validate_tables`
on the whole tables in memory (the reference; tests compare the two on
every bad input), with a peak memory that follows the bucket, not the
customer base:

0. every file is streamed once and filed by customer bucket on disk
   (:mod:`omvald.data.raw_buckets`); the customers file is streamed twice
   more for the whole-column decisions (personal data by content, attribute
   kinds: :mod:`omvald.data.customer_scan`);
1. each bucket's raw rows go through :func:`~omvald.data.validate.validate_rows`
   (a customer's rows are all in one bucket, so ids unknown to the customers
   table and duplicates are found there); the buckets' first errors merge into
   the whole table's (:mod:`omvald.data.bucket_merge`). Each bucket's clean
   tables go to scratch with the facts the whole input is judged by (day
   histograms);
2. the bulk of the dates is found from the summed histograms
   (:mod:`omvald.data.dates`), and each bucket's rows outside it are excluded
   as the whole table's would be, then appended to the interim Parquet
   files. Buckets are contiguous slot ranges, so appending them in order
   gives the whole table's sort order; row groups are cut every
   :data:`~omvald.data.read.ROW_GROUP_SIZE` rows, as the whole-table writer cuts them;
3. with a profile, the label rates are counted bucket by bucket from the
   interim files (they need the end of data, known only after step 2).

``meta.json``, the warnings and the profile come from the buckets' summed
facts. Scratch files live under a folder the caller gives and removes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from omvald.buckets import slot_range
from omvald.config import DataConfig
from omvald.data import contract as C
from omvald.data import dates as D
from omvald.data import profile as P
from omvald.data.bucket_merge import error_record, merge_errors, with_attribute_kinds
from omvald.data.customer_scan import CustomerScan, scan_customers
from omvald.data.raw_buckets import RawBuckets, file_by_bucket
from omvald.data.read import ROW_GROUP_SIZE
from omvald.data.validate import (
    add_warning_facts,
    data_meta,
    data_warnings,
    row_warnings,
    validate_rows,
    warning_facts,
)
from omvald.errors import DataContractError

log = logging.getLogger(__name__)


@dataclass
class Validated:
    """What an out-of-core validation wrote and found: the ``meta.json`` content, warnings, and the profile."""

    meta: dict[str, Any]
    warnings: list[str]
    profile: P.Profile | None = None


def validate_folder(
    raw_dir: str | Path,
    cfg: DataConfig,
    out: Path,
    scratch: Path,
    as_of: dt.date | None = None,
    *,
    profile_days: tuple[int, int] | None = None,
    n_buckets: int | None = None,
) -> Validated:
    """Validate the contract files of ``raw_dir`` bucket by bucket and write the interim tables into ``out``.

    ``out`` (a new folder) receives ``{customers,billing,touchpoints}.parquet``
    and ``meta.json``, as :func:`omvald.data.read.write_interim` writes them;
    the caller makes it appear atomically. ``scratch`` holds temporary files
    (the caller removes it). ``profile_days`` = ``(horizon_days,
    lookback_days)`` also builds the profile. ``n_buckets`` defaults to
    :func:`omvald.data.raw_buckets.bucket_count`. Raises
    :class:`~omvald.errors.DataContractError` as ``validate_tables`` would.
    """
    raw = file_by_bucket(raw_dir, cfg.personal_columns, scratch / "raw", n_buckets)
    paths = raw.paths()
    if raw.files["customers"] is None:
        raise DataContractError("customers", None, "no customers file (customers.csv or customers.parquet)")
    scan = scan_customers(raw)
    for message in scan.warnings:
        log.warning(message)
    checked = _check_buckets(raw, scan, cfg, as_of, out)
    shutil.rmtree(raw.root)  # disk: the raw rows are not read again
    absent = {t: "file" if f is None else "columns" for t, f in raw.files.items() if f is None or
              (not f.columns and t != "customers")}  # fmt: skip
    warnings = scan.warnings + row_warnings(absent, checked.extra, checked.dropped)
    for message in warnings[len(scan.warnings) :]:
        log.warning(message)

    cut_end = as_of is None and cfg.data_end is None
    first, last = D.bounds_of(checked.histograms, cut_end)
    facts, exclusions = checked.facts, {}
    if _outside(facts.extremes, first, last):  # rare: stray dates; the interim files are written again
        facts, exclusions = _exclude(raw.n_buckets, out, scratch / "excluded", first, last, paths["customers"])
    excluded, date_warnings = D.exclusion_warnings(exclusions, first, last)
    for message in date_warnings:
        log.warning(message)

    meta = _meta(facts, cfg, as_of, checked)
    meta["personal_data_dropped"] = {"customers": scan.personal} if scan.personal else {}
    meta["dates_excluded"] = excluded
    facts_warnings = data_warnings(add_warning_facts(facts.warning_facts), meta)
    for message in facts_warnings:
        log.warning(message)
    warnings += date_warnings + facts_warnings
    _write_meta(meta, out)
    profile = None
    if profile_days is not None:
        profile = _profile(facts, meta, warnings, profile_days, raw.n_buckets, out)
    return Validated(meta, warnings, profile)


@dataclass
class _Facts:
    """What meta.json, the data warnings and the profile need of the validated tables, summed over buckets."""

    table_facts: dict[str, P.TableFacts] = field(default_factory=dict)
    warning_facts: list[dict[str, Any]] = field(default_factory=list)
    extremes: dict[str, dict[str, list]] = field(default_factory=dict)  # table -> date column -> [min, max, ...]
    columns: dict[str, list[str]] = field(default_factory=dict)

    def add(self, tables: dict[str, pd.DataFrame]) -> None:
        """Add one bucket's validated tables."""
        self.warning_facts.append(warning_facts(tables))
        for table, df in tables.items():
            facts = P.table_facts(table, df)
            self.table_facts[table] = self.table_facts[table].add(facts) if table in self.table_facts else facts
            self.columns[table] = list(df.columns)
            dated = self.extremes.setdefault(table, {})
            for column in df.columns:
                if df[column].dtype.kind == "M":
                    values = df[column].dropna()
                    dated.setdefault(column, []).extend([values.min(), values.max()] if len(values) else [])


# --- pass 1: the row checks, bucket by bucket -----------------------------------------------------


@dataclass
class _Checked:
    facts: _Facts = field(default_factory=_Facts)
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(C.TABLES, 0))
    extra: dict[str, list[str]] = field(default_factory=dict)
    # day histograms of the activity rows and of every dated column (omvald.data.dates.date_histograms)
    histograms: dict[str, dict[int, int]] = field(default_factory=lambda: {"activity": {}, "events": {}})


def _check_buckets(raw: RawBuckets, scan: CustomerScan, cfg: DataConfig, as_of: dt.date | None, out: Path) -> _Checked:
    """Validate each bucket's rows; raise the whole table's first error, else append the clean rows to ``out``."""
    paths, errors, found = raw.paths(), [], _Checked()
    histograms = []
    writers = _Writers(out)
    try:
        for bucket in range(raw.n_buckets):
            frames = raw.frames(bucket)
            if frames["customers"] is not None and scan.personal:
                frames["customers"] = frames["customers"].drop(columns=list(scan.personal))
            try:
                tables, dropped, extra, _ = validate_rows(
                    frames, cfg, as_of, paths, whole=False, no_customers=raw.rows.get("customers", 0) == 0
                )
            except DataContractError as err:
                errors.append(error_record(err, bucket))
                continue
            if errors:  # a failure elsewhere: nothing will be written
                continue
            tables["customers"] = with_attribute_kinds(tables["customers"], frames["customers"], scan.kinds)
            del frames
            found.extra = extra
            for table, n in dropped.items():
                found.dropped[table] += n
            histograms.append(D.date_histograms(tables))
            found.facts.add(tables)
            writers.write(tables)
    finally:
        writers.close()
    if errors:
        raise merge_errors(errors)
    found.histograms = D.add_histograms(histograms)
    return found


# --- pass 2 (only with dates outside the bulk) ----------------------------------------------------


def _outside(extremes: dict[str, dict[str, list]], first: dt.date, last: dt.date | None) -> bool:
    """Whether :func:`omvald.data.dates.exclude_outside_bulk` would refuse or change anything, from the extremes."""
    lo, earliest = pd.Timestamp(first), pd.Timestamp(D.EARLIEST)
    hi = pd.Timestamp(last) + pd.Timedelta(days=1) if last is not None else None
    lowest = {**{c: lo for c in D.ACTIVITY.values()}, "paid_date": earliest, "churn_date": earliest,
              "signup_date": earliest}  # fmt: skip
    for table, column in [*D.ACTIVITY.items(), ("billing", "paid_date"), ("customers", "churn_date"),
                          ("customers", "signup_date")]:  # fmt: skip
        values = extremes.get(table, {}).get(column, [])
        if values and (min(values) < lowest[column] or (hi is not None and max(values) >= hi)):
            return True
    return False


def _exclude(
    n_buckets: int, out: Path, scratch: Path, first: dt.date, last: dt.date | None, path: str | None
) -> tuple[_Facts, dict[str, dict[str, Any]]]:
    """Refuse or exclude rows outside ``[first, last]`` bucket by bucket (as the whole tables would be), rewriting ``out``."""
    scratch.mkdir(parents=True, exist_ok=True)
    facts, exclusions, refusals = _Facts(), [], []
    writers = _Writers(scratch)
    try:
        for bucket in range(n_buckets):
            lo, hi = slot_range(bucket, n_buckets)
            tables = {
                t: pq.read_table(
                    out / f"{t}.parquet", filters=[("hash_slot", ">=", lo), ("hash_slot", "<", hi)]
                ).to_pandas()
                for t in C.TABLES
            }
            try:
                D.check_customer_dates(tables["customers"], last, path)
            except DataContractError as err:
                refusals.append(error_record(err, bucket))
            if refusals:  # refused: nothing will be written
                continue
            tables, excluded = D.excluded_rows(tables, first, last)
            exclusions.append(excluded)
            facts.add(tables)
            writers.write(tables)
    finally:
        writers.close()
    if refusals:
        raise merge_errors(refusals)
    for table in C.TABLES:
        (scratch / f"{table}.parquet").replace(out / f"{table}.parquet")
    return facts, D.add_exclusion_facts(exclusions)


class _Writers:
    """One :class:`_RowGroupWriter` per table in ``folder``."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.writers = {t: _RowGroupWriter(folder / f"{t}.parquet") for t in C.TABLES}

    def write(self, tables: dict[str, pd.DataFrame]) -> None:
        for table, df in tables.items():
            self.writers[table].write(pa.Table.from_pandas(df, preserve_index=False))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


class _RowGroupWriter:
    """Appends tables to one Parquet file in row groups of :data:`ROW_GROUP_SIZE` rows, wherever the appended
    tables start and end: the file is the one ``pq.write_table(whole, row_group_size=...)`` writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.pending: list[pa.Table] = []
        self.n_pending = 0
        self.empty: pa.Table | None = None

    def write(self, data: pa.Table) -> None:
        if not len(data):
            self.empty = self.empty or data
            return
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, data.schema)
        self.pending.append(data.cast(self.writer.schema))
        self.n_pending += len(data)
        if self.n_pending >= ROW_GROUP_SIZE:
            # one chunk per column: where the writer falls back from dictionary encoding depends on the chunks
            whole = pa.concat_tables(self.pending).combine_chunks()
            full = len(whole) // ROW_GROUP_SIZE * ROW_GROUP_SIZE
            self.writer.write_table(whole.slice(0, full), row_group_size=ROW_GROUP_SIZE)
            self.pending, self.n_pending = [whole.slice(full)], len(whole) - full

    def close(self) -> None:
        if self.writer is None:
            if self.empty is not None:  # no rows at all: the empty table's own schema, as the whole-table writer
                pq.write_table(self.empty, self.path, row_group_size=ROW_GROUP_SIZE)
            return
        if self.n_pending:
            self.writer.write_table(pa.concat_tables(self.pending).combine_chunks(), row_group_size=ROW_GROUP_SIZE)
        self.writer.close()


def _meta(found: _Facts, cfg: DataConfig, as_of: dt.date | None, checked: _Checked) -> dict[str, Any]:
    """``meta.json`` of :func:`omvald.data.validate.data_meta`, fed each bucket's date extremes instead of the tables."""
    frames = {}
    for table, names in found.columns.items():
        dated = found.extremes.get(table, {})
        size = max([len(v) for v in dated.values()] + [0])
        frames[table] = pd.DataFrame(
            {
                n: pd.Series(dated[n] + [pd.NaT] * (size - len(dated[n])), dtype=C.DATE_DTYPE)
                if n in dated
                else pd.Series(np.nan, index=range(size))
                for n in names
            },
            index=range(size),
        )
    meta = data_meta(frames, cfg, as_of, checked.dropped, checked.extra)
    meta["rows"] = {t: f.rows for t, f in found.table_facts.items()}
    return meta


def _write_meta(meta: dict[str, Any], out: Path) -> None:
    (out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")


# --- pass 3: the profile's label rates ------------------------------------------------------------


def _profile(
    found: _Facts, meta: dict[str, Any], warnings: list[str], days: tuple[int, int], n_buckets: int, out: Path
) -> P.Profile:
    horizon, lookback = days
    dates = P.label_dates(found.table_facts, dt.date.fromisoformat(meta["data_end"]), horizon)
    contractual = bool(meta["contractual"])
    population, churners = np.zeros(len(dates), np.int64), np.zeros(len(dates), np.int64)
    needed = (
        {"customers": ["signup_date", "churn_date"]} if contractual else {"billing": ["customer_id", "invoice_date"]}
    )
    for bucket in range(n_buckets if dates else 0):
        lo, hi = slot_range(bucket, n_buckets)
        tables = {
            t: pq.read_table(
                out / f"{t}.parquet", columns=columns, filters=[("hash_slot", ">=", lo), ("hash_slot", "<", hi)]
            ).to_pandas()  # fmt: skip
            for t, columns in needed.items()
        }
        tables.setdefault("customers", pd.DataFrame())
        tables.setdefault("billing", pd.DataFrame())
        p, c = P.label_counts(tables, contractual, dates, horizon, lookback)
        population += p
        churners += c
    return P.profile_from_facts(found.table_facts, meta, warnings, horizon, lookback, dates, (population, churners))

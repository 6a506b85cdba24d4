"""The ``omvald features`` stage: interim tables in, feature tables out, bucket by bucket.

:func:`plan_features` checks the settings against the data and settles,
before any bucket is built, what every bucket must agree on: the as-of
dates, the registry and the facts about the whole input
(:mod:`omvald.features.facts`; population parameters fitted once per date
belong to the plan too). :func:`run_features` then builds the buckets
(:func:`omvald.features.build.build_features`, in ``features.workers``
processes) from the sorted interim Parquet files, and :func:`finish_output`
merges their part files into ``training.parquet``, ``scoring.parquet``,
``registry.json`` and ``meta.json``, written atomically. The Spark engine
(:mod:`omvald.spark.features`) runs the same plan and finish around its own
bucket loop, so both write identical files.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import multiprocessing
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from rich.progress import Progress

from omvald.buckets import N_SLOTS, slot_range
from omvald.config import Config, FeatureConfig
from omvald.errors import ConfigError
from omvald.features import asof, btyd_fit, labels, registry
from omvald.features.build import ALWAYS, TABLES, build_features
from omvald.features.facts import DISTINCT_CAP, AttributeFacts, attribute_meta
from omvald.features.merge import merge_parts, write_part
from omvald.features.spec import BucketTables
from omvald.features.static import attribute_kinds
from omvald.io import atomic_path, read_json, write_json

log = logging.getLogger(__name__)
# More default as-of dates than this means a few ancient rows set the start (ten years of month ends).
MAX_DEFAULT_AS_OF_DATES = 120


@dataclass(frozen=True)
class FeaturePlan:
    """What one features run computes, settled and checked before any bucket is built.

    Shared by the local loop and the Spark engine so both write the same files.
    """

    paths: dict[str, Path]
    meta: dict[str, Any]
    dates: list[dt.date]
    labelled: list[dt.date]
    entries: list[Any]
    data_start: dt.date
    data_end: dt.date
    n_buckets: int  # features.n_buckets, or more when a bucket would hold more than features.bucket_rows rows

    @property
    def score_date(self) -> dt.date:
        return self.dates[-1]

    def schema(self, with_labels: bool) -> pa.Schema:
        return output_schema(self.entries, with_labels=with_labels)


def plan_features(cfg: FeatureConfig, interim_dir: Path) -> FeaturePlan:
    """Read the interim meta, check the settings against the data and fix the as-of dates and registry.

    Raises :class:`ConfigError` (nothing written) when the settings cannot work with this data.
    """
    meta = read_json(interim_dir / "meta.json")
    paths = {t: interim_dir / f"{t}.parquet" for t in TABLES}
    data_start = dt.date.fromisoformat(str(meta["data_start"]))
    data_end = dt.date.fromisoformat(str(meta["data_end"]))
    dates, labelled = check_settings(cfg, data_start, data_end)
    meta = {**meta, **_business_facts(paths, meta)}
    labels.check_label_balance(paths, cfg, meta, labelled)
    if not meta["contractual"]:  # the BG/NBD population at every as-of date, before any bucket
        meta["btyd"] = btyd_fit.fit_parquet(paths["billing"], dates, cfg)
    entries = registry.registry_entries(cfg, meta)
    n_buckets = bucket_count(cfg, int(meta.get("rows", {}).get("customers", 0)), len(dates))
    return FeaturePlan(paths, meta, dates, labelled, entries, data_start, data_end, n_buckets)


def bucket_count(cfg: FeatureConfig, n_customers: int, n_dates: int) -> int:
    """Buckets for ``n_customers`` over ``n_dates`` as-of dates: ``n_buckets``, or more if one would exceed ``bucket_rows``.

    A bucket's features are built in memory, so its customer x date rows bound
    a worker's peak: with the default 8 buckets, 1M customers x 25 dates
    peaked at 17 GB. The count can move the last bit of a few billing averages (docs/architecture.md).
    """
    needed = math.ceil(n_customers * n_dates / cfg.bucket_rows)
    n = min(N_SLOTS, max(cfg.n_buckets, needed))
    if n > cfg.n_buckets:
        log.info(
            "features: %d buckets instead of features.n_buckets = %d (%s customers x %d as-of dates; "
            "features.bucket_rows = %s per bucket)",
            n, cfg.n_buckets, f"{n_customers:,}", n_dates, f"{cfg.bucket_rows:,}",
        )  # fmt: skip
    return n


def finish_output(plan: FeaturePlan, cfg: FeatureConfig, parts: Path, out: Path) -> dict[str, Any]:
    """Merge the per-bucket parts in ``parts`` into the four output files in ``out``; returns the output meta."""
    files = sorted(parts.glob("*.parquet"))
    n_training = merge_parts(files, out / "training.parquet", plan.schema(True), plan.labelled, labelled_only=True)
    n_scoring = merge_parts(files, out / "scoring.parquet", plan.schema(False), [plan.score_date], labelled_only=False)
    shutil.rmtree(parts)
    used, missing = registry.families(plan.entries)
    meta = plan.meta
    phase_out_dates = _phase_out_dates(plan.labelled, cfg.horizon_days, meta.get("billing_observed_until"))
    out_meta = {
        "as_of_dates": [d.isoformat() for d in plan.dates],
        "labelled_dates": [d.isoformat() for d in plan.labelled],
        "phase_out_labelled_dates": [d.isoformat() for d in phase_out_dates],
        "billing_end": meta.get("billing_end"),
        "billing_period_days": meta.get("billing_period_days"),
        "billing_observed_until": meta.get("billing_observed_until"),
        "scoring_date": plan.score_date.isoformat(),
        "horizon_days": cfg.horizon_days,
        "phase_out_months": labels.phase_out_months(cfg.horizon_days),
        "phase_out_drop": cfg.phase_out_drop,
        "lookback_days": cfg.lookback_days,
        "contractual": bool(meta["contractual"]),
        "data_start": plan.data_start.isoformat(),
        "data_end": plan.data_end.isoformat(),
        "families_used": used,
        "families_missing": missing,
        "binding_column": meta["binding_column"],
        "attribute_kinds": meta["attribute_kinds"],
        "columns": meta["columns"],
        "rows": meta.get("rows", {}),
        "n_rows": {"training": n_training, "scoring": n_scoring},
        "n_buckets": plan.n_buckets,
    }
    write_json([e.record() for e in plan.entries], out / "registry.json")
    if "btyd" in meta:
        out_meta["btyd"] = meta["btyd"]
    write_json(out_meta, out / "meta.json")
    return out_meta


def run_features(
    cfg: Config, interim_dir: str | Path, out_dir: str | Path, progress: Progress | None = None
) -> dict[str, Any]:
    """The features stage: interim tables in ``interim_dir`` -> feature tables in ``out_dir``.

    Writes ``training.parquet`` (labelled rows of every as-of date),
    ``scoring.parquet`` (the scoring as-of date, no labels), ``registry.json``
    and ``meta.json``, all or nothing. Settings that cannot work with this
    data raise :class:`ConfigError` before anything is computed. Returns the
    output meta.

    With ``features.workers > 1`` the buckets are built in spawned
    processes: a script of your own that calls this must guard its entry
    point with ``if __name__ == "__main__":`` (the ``omvald`` command and
    notebooks need nothing).
    """
    fcfg = cfg.features
    plan = plan_features(fcfg, Path(interim_dir))
    if fcfg.workers > 1:
        asof.release_database()  # the whole-file checks' memory is not needed while workers build
    with atomic_path(out_dir, stage="features") as tmp:
        parts = tmp / "_parts"
        parts.mkdir(parents=True)
        task = progress.add_task("features", total=plan.n_buckets) if progress is not None else None
        for _ in _build_parts(plan, fcfg, parts):
            if progress is not None:
                progress.advance(task)
        out_meta = finish_output(plan, fcfg, parts, tmp)
    n = out_meta["n_rows"]
    log.info("features: %d training rows, %d scoring rows -> %s", n["training"], n["scoring"], out_dir)
    return out_meta


def build_part(plan: FeaturePlan, cfg: FeatureConfig, bucket: int, path: Path) -> int:
    """Build one bucket's features and labels and write them to ``path``; returns its row count."""
    lo, hi = slot_range(bucket, plan.n_buckets)
    tables = read_bucket(plan.paths, lo, hi)
    frame = build_features(tables, plan.dates, cfg, plan.meta, with_labels=True)
    write_bucket_part(frame, plan.schema(with_labels=True), path)
    return len(frame)


def _build_parts(plan: FeaturePlan, cfg: FeatureConfig, parts: Path) -> Iterator[int]:
    """Write every bucket's part file into ``parts``, yielding as each is done (in any order).

    With ``cfg.workers > 1`` buckets are built in that many processes at once,
    each holding one bucket in memory (DuckDB runs one thread per process,
    see ``asof.DUCKDB_THREADS``). The parts, hence the merged output, do not depend on the
    number of workers. A failing bucket raises here; the caller's temporary
    folder is then removed.
    """
    paths = {b: parts / f"bucket-{b:04d}.parquet" for b in range(plan.n_buckets)}
    workers = min(cfg.workers, plan.n_buckets)
    if workers <= 1:
        for bucket, path in paths.items():
            yield build_part(plan, cfg, bucket, path)
        return
    # spawn, not fork: the parent may hold DuckDB and BLAS thread pools
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(build_part, plan, cfg, bucket, path) for bucket, path in paths.items()]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _phase_out_dates(labelled: list[dt.date], horizon_days: int, billing_until: str | None) -> list[dt.date]:
    """Labelled as-of dates with a phase-out label (horizon of a whole month or more, inside observed billing)."""
    if labels.phase_out_months(horizon_days) == 0:
        log.warning("features: the %d-day horizon is shorter than one whole month; no phase-out labels", horizon_days)
        return []
    if billing_until is None:
        log.warning("features: the business has no billing; no phase-out labels")
        return []
    until = dt.date.fromisoformat(str(billing_until))
    dates = [t for t in labelled if t + dt.timedelta(days=horizon_days) <= until]
    if len(dates) < len(labelled):
        log.warning(
            "features: billing is observed until %s (latest invoice + one billing period); %d of %d labelled "
            "as-of date(s) have no phase-out label because their %d-day horizon ends later",
            until,
            len(labelled) - len(dates),
            len(labelled),
            horizon_days,
        )
    return dates


def check_settings(cfg: FeatureConfig, data_start: dt.date, data_end: dt.date) -> tuple[list[dt.date], list[dt.date]]:
    """As-of dates and labelled dates, or a ConfigError that says which setting to change."""
    if not 0 < cfg.phase_out_drop < 1:
        raise ConfigError(
            f"features.phase_out_drop is {cfg.phase_out_drop}; it must be between 0 and 1 "
            "(0.3 = phase-out when billing falls by 30% or more)."
        )
    for name in ("horizon_days", "lookback_days"):
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"features.{name} is {getattr(cfg, name)}; it must be a positive number of days.")
    if not 1 <= cfg.n_buckets <= N_SLOTS:
        raise ConfigError(f"features.n_buckets is {cfg.n_buckets}; it must be between 1 and {N_SLOTS}.")
    if cfg.workers < 1:
        raise ConfigError(f"features.workers is {cfg.workers}; it must be 1 (one bucket at a time) or more.")
    if cfg.bucket_rows < 1:
        raise ConfigError(f"features.bucket_rows is {cfg.bucket_rows}; it must be a positive number of rows.")
    if cfg.btyd_sample_customers < btyd_fit.MIN_CUSTOMERS:
        raise ConfigError(
            f"features.btyd_sample_customers is {cfg.btyd_sample_customers}; the BG/NBD model needs at least "
            f"{btyd_fit.MIN_CUSTOMERS} customers (20000 is plenty for its four parameters)."
        )
    if cfg.engine not in ("local", "spark"):
        raise ConfigError(f"features.engine is '{cfg.engine}'; use 'local' (this machine) or 'spark'.")
    last = asof.scoring_date(cfg, data_end)
    if last > data_end:
        raise ConfigError(
            f"features.as_of_last is {last} but the data ends on {data_end} (data.data_end or the latest date "
            "in the tables): set as_of_last on or before the end of data, or null."
        )
    if cfg.as_of_first is not None and cfg.as_of_first > last:
        raise ConfigError(
            f"features.as_of_first ({cfg.as_of_first}) is after the last as-of date ({last}): "
            "set as_of_first earlier, or null."
        )
    dates = asof.as_of_dates(cfg, data_start, data_end)
    if cfg.as_of_first is None and len(dates) > MAX_DEFAULT_AS_OF_DATES:
        raise ConfigError(
            f"{len(dates)} monthly as-of dates from {dates[0]} to {dates[-1]}: the data starts on {data_start} "
            f"(data_start in the interim meta.json). Features at more than {MAX_DEFAULT_AS_OF_DATES} dates (ten years) "
            "cost a lot and the oldest teach little about today: set features.as_of_first (e.g. "
            f"{asof.month_end(dt.date(dates[-1].year - 5, dates[-1].month, 1))}) to choose where training starts."
        )
    labelled = asof.labelled_dates(dates, cfg.horizon_days, data_end)
    if not labelled:
        latest = data_end - dt.timedelta(days=cfg.horizon_days)
        raise ConfigError(
            f"no as-of date has a fully observed horizon: with features.horizon_days = {cfg.horizon_days} and "
            f"data ending {data_end}, an as-of date must be on or before {latest}, but the first is {dates[0]}. "
            "Lower features.horizon_days, set features.as_of_first earlier, or extend the data."
        )
    return dates, labelled


def _business_facts(paths: dict[str, Path], meta: dict[str, Any]) -> dict[str, Any]:
    """Facts every bucket must agree on, from the whole interim files.

    Attribute kinds and the binding column (customers), and how far billing is
    observed (``billing_end``, ``billing_period_days``, ``billing_observed_until``).
    """
    con = asof.connect()
    attributes = _attribute_facts(con, paths["customers"])
    coverage = labels.billing_coverage(con, f"read_parquet('{_sql_path(paths['billing'])}')")
    con.close()
    columns = meta.get("columns") or {}
    return {
        **coverage,
        "columns": {t: [c for c in columns.get(t, []) if c != "hash_slot"] for t in TABLES},
        **attribute_meta(attributes),
    }


def _attribute_facts(con: duckdb.DuckDBPyConnection, customers: Path) -> AttributeFacts:
    """:class:`AttributeFacts` of the interim customers file, read by DuckDB (kinds from the schema)."""
    source = f"read_parquet('{_sql_path(customers)}')"
    kinds = attribute_kinds(con.sql(f"SELECT * FROM {source} LIMIT 0").df())
    distinct: dict[str, list[Any] | None] = {}
    for col, kind in kinds.items():
        if kind != "categorical":
            continue
        rows = con.sql(
            f'SELECT DISTINCT CAST("{col}" AS VARCHAR) AS v FROM {source} WHERE "{col}" IS NOT NULL '
            f"LIMIT {DISTINCT_CAP + 1}"
        ).fetchall()
        distinct[col] = [v for (v,) in rows] if len(rows) <= DISTINCT_CAP else None
    return AttributeFacts(kinds, distinct)


def interim_attribute_facts(customers: Path) -> AttributeFacts:
    """:class:`AttributeFacts` of an interim customers file (the scoring input's too), read by DuckDB."""
    con = asof.connect()
    try:
        return _attribute_facts(con, customers)
    finally:
        con.close()


def read_bucket(paths: dict[str, Path], lo: int, hi: int) -> BucketTables:
    """One bucket's rows of the interim tables (slots ``[lo, hi)``); row groups outside are skipped."""
    con = asof.connect()
    frames = {
        t: asof.fetch_frame(
            con,
            f"SELECT * FROM read_parquet('{_sql_path(p)}') WHERE hash_slot >= $lo AND hash_slot < $hi",
            {"lo": lo, "hi": hi},
        )
        for t, p in paths.items()
    }
    con.close()
    return BucketTables(**frames)


def output_schema(entries: list[registry.RegistryEntry], with_labels: bool) -> pa.Schema:
    """Arrow schema of the feature tables, the same for every bucket."""
    fields = [pa.field("customer_id", pa.string()), pa.field("as_of", pa.date32())]
    names = {"customer_id", "as_of"}
    for e in entries:
        if e.available and e.spec.name not in names:
            fields.append(pa.field(e.spec.name, pa.string() if e.spec.kind == "categorical" else pa.float64()))
            names.add(e.spec.name)
    for name in ALWAYS:
        if name not in names:
            fields.append(pa.field(name, pa.string() if name == "segment" else pa.float64()))
    if with_labels:
        fields += [
            pa.field("churn", pa.int8()),
            pa.field("phase_out", pa.float64()),
            pa.field("next_revenue", pa.float64()),
        ]
    return pa.schema(fields)


def write_bucket_part(frame: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    """Write one bucket's feature rows as a part file for :func:`finish_output` (both engines use this)."""
    if list(frame.columns) != schema.names:
        frame = frame[schema.names]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.cast(schema)
    # sorted by as_of, so each date is a contiguous run of row groups (pruned on read)
    write_part(table, path)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")

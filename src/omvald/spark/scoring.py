"""The score stage on Spark: features -> probabilities -> reason codes, one Spark task per bucket.

Input is a validated interim folder (``omvald validate <contract files>
<dir>``), read and bucketed exactly as in :mod:`omvald.spark.features`.
Each task runs :func:`score_bucket`: ``build_features`` at the as-of date,
then the local scorer's pure functions (:mod:`omvald.scoring.score`). The
two models are loaded once on the driver and broadcast, so each Python
worker unpickles them once, not once per bucket.

Reason codes follow the ``--explain`` policy with the local semantics:
``risk:P`` / ``all`` / ``none`` are decided per customer inside the task;
for ``top:N`` each task explains its own best N (a customer in the global
top N is necessarily in their bucket's top N) and the driver keeps the
reasons of the global top N only (same tie-break: lowest ``customer_id``).

The scored rows (one per customer, ~40 columns) are collected to the driver
as Arrow, then sorted, written atomically and summarised by the local
stage's own functions, so the output file and summary have the local
engine's format. Nothing is written unless every bucket succeeded.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from omvald.config import Config, FeatureConfig
from omvald.data.validate import validate_rows
from omvald.errors import DataContractError
from omvald.features import build
from omvald.features.spec import BucketTables
from omvald.io import read_json, write_json, write_table
from omvald.scoring import score as sc
from omvald.scoring import stage
from omvald.scoring.select import ExplainPolicy, parse_explain_policy, select_for_explanation, top_n_positions
from omvald.spark.features import bucket_task, bucketed_interim, interim_schemas
from omvald.spark.raw import RawFile, file_paths, find_raw_files, raw_frames, stacked_raw
from omvald.spark.tasks import apply_per_bucket, raise_user_error
from omvald.spark.validate import Validated, validate_on_spark, with_attribute_kinds

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def output_schema() -> pa.Schema:
    """Arrow schema of :data:`omvald.scoring.score.OUTPUT_COLUMNS` (reason values are text)."""
    types = {
        "customer_id": pa.string(),
        "as_of": pa.date32(),
        "risk_tier": pa.string(),
        "segment": pa.string(),
        "contactable": pa.bool_(),
        "explained": pa.bool_(),
    }
    fields = []
    for name in sc.OUTPUT_COLUMNS:
        if name in types:
            fields.append(pa.field(name, types[name]))
        elif name.startswith(("p_", "monthly_", "revenue_")) or name.endswith("_contribution"):
            fields.append(pa.field(name, pa.float64()))
        else:  # driver names, driver values as text, reason sentences
            fields.append(pa.field(name, pa.string()))
    return pa.schema(fields)


def score_bucket(
    tables: BucketTables,
    *,
    as_of: dt.date,
    fcfg: FeatureConfig,
    meta: dict[str, Any],
    models: Any,
    policy: ExplainPolicy,
    risk_tiers: Mapping[str, float],
    specs: dict[str, Any],
) -> pd.DataFrame:
    """Scores (and reason codes per ``policy``) of one bucket's population at ``as_of``: OUTPUT_COLUMNS rows.

    ``models`` is ``(churn, phase_out)`` or a Spark broadcast of it. For
    ``top:N`` the bucket's own top N are explained; the caller trims to the
    global top N.
    """
    churn_model, phase_out_model = getattr(models, "value", models)
    feats = build.build_features(tables, [as_of], fcfg, meta, with_labels=False).reset_index(drop=True)
    scores = sc.score_features(
        feats,
        churn_model,
        phase_out_model,
        stage._contactable(tables.customers),
        horizon_days=fcfg.horizon_days,
        phase_out_drop=fcfg.phase_out_drop,
        risk_tiers=risk_tiers,
    )
    if policy.is_global:
        chosen = np.zeros(len(scores), dtype=bool)
        chosen[top_n_positions(scores, int(policy.value or 0))] = True
    else:
        chosen = select_for_explanation(scores, policy)
    reasons = [stage._reasons(feats.loc[chosen], churn_model, phase_out_model, specs)] if chosen.any() else []
    return stage.assemble(scores, reasons)


def keep_global_top(result: pd.DataFrame, n: int) -> pd.DataFrame:
    """For ``top:N``: blank the reasons of rows outside the global top N (they were a bucket's top N only)."""
    keep = np.zeros(len(result), dtype=bool)
    keep[top_n_positions(result, n)] = True
    drop = ~keep & result["explained"].to_numpy()
    out = result.copy()
    blank = sc.empty_reason_frame(out.index[drop])
    for col in blank.columns:
        out.loc[drop, col] = blank[col]
    out["explained"] = keep & result["explained"].to_numpy()
    return out


def run_score_spark(
    cfg: Config,
    interim_dir: str | Path,
    output: str | Path,
    master: str,
    *,
    as_of: dt.date | None = None,
    explain: str | None = None,
    models_dir: Path = Path("models"),
    model_uri: str | None = None,
    tracking_uri: str | None = None,
    summary_path: Path | None = None,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """Spark twin of :func:`omvald.scoring.stage.run_score` over a validated interim folder.

    Same output file (``.csv``/``.parquet``, OUTPUT_COLUMNS, sorted by
    ``customer_id``) and summary. ``as_of`` defaults to the interim
    ``data_end``; rows dated after it are ignored by the point-in-time
    features (validation already ran in ``omvald validate``). One task per
    bucket of ``score.chunk_buckets`` or ``features.n_buckets``. ``master``
    is used only when no running session ``spark`` is given.
    """
    from omvald.spark.session import spark_session

    policy = parse_explain_policy(explain if explain is not None else cfg.score.explain)
    output = Path(output)
    stage._check_output(output)
    interim_dir = Path(interim_dir)
    clock = stage.PhaseClock()
    clock.enter("load_models")
    churn_model, phase_out_model, model_source = stage.load_models(Path(models_dir), model_uri, tracking_uri)

    clock.enter("spark")
    meta = read_json(interim_dir / "meta.json")
    paths = {t: interim_dir / f"{t}.parquet" for t in build.TABLES}
    meta = {**meta, **build._business_facts(paths, meta)}  # bucket-independent attribute kinds
    as_of = as_of or stage._as_date(meta["data_end"])
    n_buckets = cfg.score.chunk_buckets or cfg.features.n_buckets
    spark = spark or spark_session(master, n_buckets=n_buckets, java=cfg.spark.java)
    models = spark.sparkContext.broadcast((churn_model, phase_out_model))
    schema = output_schema()
    task = bucket_task(
        score_bucket,
        interim_schemas(interim_dir),
        schema,
        **_score_settings(cfg, meta, models, policy, as_of),
    )
    scored = apply_per_bucket(
        bucketed_interim(spark, interim_dir, interim_schemas(interim_dir), n_buckets), task, schema
    )
    try:
        table = scored.drop("bucket").toArrow()
    except Exception as exc:
        raise_user_error(exc)
        raise
    finally:
        models.unpersist()
    summary = _write_scores(cfg, table, schema, as_of, policy, model_source, output, clock, str(interim_dir))
    if summary_path is not None:
        write_json(summary, summary_path)
    return summary


def _score_settings(cfg: Config, meta: dict, models: Any, policy: ExplainPolicy, as_of: dt.date) -> dict[str, Any]:
    """The keyword arguments of :func:`score_bucket` that both Spark scoring paths pass to every bucket."""
    return {
        "as_of": as_of,
        "fcfg": cfg.features,
        "meta": meta,
        "models": models,
        "policy": policy,
        "risk_tiers": dict(cfg.score.risk_tiers),
        "specs": stage._specs(cfg, meta),
    }


def _write_scores(
    cfg: Config,
    table: pa.Table,
    schema: pa.Schema,
    as_of: dt.date,
    policy: ExplainPolicy,
    model_source: str,
    output: Path,
    clock: stage.PhaseClock,
    source: str,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """Sort the collected scores, keep the global top N's reasons, write ``output``; return the summary."""
    if table.num_rows == 0:
        raise DataContractError(
            "customers",
            None,
            f"no customer is in the population at the as-of date {as_of} (signed up on or before it and, "
            "for a contractual business, not churned by then; for a non-contractual one, an invoice in the "
            "lookback window); choose another --as-of",
            path=source,
        )
    clock.enter("write")
    result = table.cast(schema).to_pandas().sort_values("customer_id", kind="stable", ignore_index=True)
    result = result.astype({c: "str" for c in result.columns if schema.field(c).type == pa.string()})
    if policy.is_global:
        result = keep_global_top(result, int(policy.value or 0))
    write_table(result, output)
    tiers = [*sorted(cfg.score.risk_tiers, key=lambda t: -float(cfg.score.risk_tiers[t])), "low"]
    summary = stage.summarize(result, as_of, policy, model_source, warnings or [], clock.stop(), tiers)
    summary.update(input=source, output=str(output), engine="spark")
    return summary


def score_raw_bucket(
    tables: dict[str, pd.DataFrame],
    raw_customers: pd.DataFrame | None,
    *,
    validated: Validated,
    empty_tables: list[str],
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`score_bucket` on one bucket's validated tables, given the facts decided on the whole tables."""
    tables = dict(tables)
    kinds = {c: k for c, k in validated.attribute_kinds.items() if c in tables["customers"]}
    tables["customers"] = with_attribute_kinds(tables["customers"], raw_customers, kinds)
    if empty_tables:  # empty in the whole input, not just in this bucket: as run_score does
        filled, _ = stage.complete_empty_tables({t: tables[t] for t in empty_tables}, {})
        tables.update(filled)
    return score_bucket(BucketTables(**tables), **kwargs)


def _raw_score_task(
    files: dict[str, RawFile | None], data_cfg: Any, validate_as_of: dt.date | None, out_schema: pa.Schema, **kwargs
):
    paths = file_paths(files)

    def run(*batches: pa.Table) -> pa.Table:
        raw = raw_frames(batches, files)
        tables, *_ = validate_rows(raw, data_cfg, validate_as_of, paths, whole=False)
        result = score_raw_bucket(tables, raw["customers"], **kwargs)
        return pa.Table.from_pandas(result[out_schema.names], preserve_index=False).cast(out_schema)

    return run


def run_score_spark_on_folder(
    cfg: Config,
    input_dir: str | Path,
    output: str | Path,
    master: str,
    *,
    as_of: dt.date | None = None,
    explain: str | None = None,
    models_dir: Path = Path("models"),
    model_uri: str | None = None,
    tracking_uri: str | None = None,
    summary_path: Path | None = None,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """``omvald score --engine spark`` on a folder of contract files: :func:`omvald.scoring.stage.run_score` on Spark.

    The files are read and validated by Spark, bucket by bucket
    (:mod:`omvald.spark.validate`): bad input raises the local engine's
    :class:`~omvald.errors.DataContractError` (same text) and writes nothing.
    Then a second pass over the same (cached) rows validates and scores each
    bucket with the facts decided on the whole input (end of data, attribute
    kinds, binding column). Same output file and summary as the local engine,
    data warnings included (from the buckets' summed counts).
    """
    from omvald.features.static import detect_binding_column
    from omvald.spark.session import spark_session

    policy = parse_explain_policy(explain if explain is not None else cfg.score.explain)
    output, input_dir = Path(output), Path(input_dir)
    stage._check_output(output)
    clock = stage.PhaseClock()
    clock.enter("load_models")
    churn_model, phase_out_model, model_source = stage.load_models(Path(models_dir), model_uri, tracking_uri)

    clock.enter("read_validate")
    files = find_raw_files(input_dir, cfg.data)
    n_buckets = cfg.score.chunk_buckets or cfg.features.n_buckets
    spark = spark or spark_session(master, n_buckets=n_buckets, java=cfg.spark.java)
    stacked = tuple(frame.persist() for frame in stacked_raw(spark, files, n_buckets))
    models = None
    try:
        validated = validate_on_spark(spark, stacked, files, cfg.data, as_of)
        for message in validated.warnings:
            log.warning("%s", message)
        meta = validated.meta
        score_date = as_of or stage._as_date(meta["data_end"])
        # The facts run_score takes from the whole tables, from the buckets' summaries instead.
        empty = [t for t in ("billing", "touchpoints") if meta["rows"][t] == 0]
        templates = {t: pd.DataFrame(columns=[c for c in meta["columns"][t]]) for t in empty}
        _, meta = stage.complete_empty_tables(templates, meta)
        text = [c for c, k in validated.attribute_kinds.items() if k == "string"]
        meta["binding_column"] = detect_binding_column(
            {c: validated.distinct[c] for c in text if validated.distinct[c] is not None}
        )
        dtypes = {"number": "float64", "bool": "bool", "string": "str"}
        customers = pd.DataFrame({c: pd.Series(dtype=dtypes[k]) for c, k in validated.attribute_kinds.items()})
        meta = stage._business_meta(
            meta, {"customers": customers, "billing": pd.DataFrame(), "touchpoints": pd.DataFrame()}
        )

        clock.enter("spark")
        models = spark.sparkContext.broadcast((churn_model, phase_out_model))
        schema = output_schema()
        task = _raw_score_task(
            files,
            cfg.data,
            as_of,
            schema,
            validated=validated,
            empty_tables=empty,
            **_score_settings(cfg, meta, models, policy, score_date),
        )
        try:
            table = apply_per_bucket(stacked, task, schema).drop("bucket").toArrow()
        except Exception as exc:
            raise_user_error(exc)
            raise
    finally:
        for frame in stacked:
            frame.unpersist()
        if models is not None:
            models.unpersist()
    summary = _write_scores(
        cfg, table, schema, score_date, policy, model_source, output, clock, str(input_dir), validated.warnings
    )
    if summary_path is not None:
        write_json(summary, summary_path)
    return summary

"""``omvald score --engine spark``: the scoring core on Spark, one task per bucket.

The same three steps as the local stage (:mod:`omvald.scoring.stage`), with
the input read and validated by Spark:

1. plan: the contract files are read and validated bucket by bucket
   (:mod:`omvald.spark.validate`); bad input raises the local engine's
   :class:`~omvald.errors.DataContractError` (same text) and writes nothing.
   The facts about the whole input come from the buckets' summaries
   (:meth:`omvald.spark.validate.Validated.attribute_facts`), personal data
   by content and encodings are decided on the driver
   (:mod:`omvald.spark.raw`), the BG/NBD population is fitted once on the
   driver (:mod:`omvald.spark.population`), and all of it goes into the
   one :func:`omvald.scoring.plan.plan_scoring` (through ``plan_for_input``);
2. buckets: a second pass over the same (cached) rows validates each bucket
   again and runs :func:`omvald.scoring.bucket.score_bucket` on it. The
   models are loaded once on the driver and broadcast, so each Python worker
   unpickles them once, not once per bucket. With ``top:N`` each task
   explains its own best N (``defer_top=False``: the work stays in the
   tasks); the finisher keeps the reasons of the run's top N;
3. finish: the scored rows (one per customer, ~50 columns) are collected to
   the driver as Arrow and go through :func:`omvald.scoring.finish.finish_scoring`,
   so the output file and summary are the local engine's, data warnings
   included.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from omvald.config import Config, DataConfig
from omvald.data.bucket_merge import with_attribute_kinds
from omvald.features.spec import BucketTables
from omvald.scoring import score as sc
from omvald.scoring.bucket import DRIFT_COLUMN, BucketResult, score_bucket
from omvald.scoring.clock import PhaseClock
from omvald.scoring.finish import ScoredBuckets, ScoreSummary, finish_scoring
from omvald.scoring.plan import ScoringPlan, plan_for_input, scoring_buckets
from omvald.scoring.start import start_scoring
from omvald.spark.population import population_on_spark
from omvald.spark.raw import RawFile, drop_personal_by_content, file_paths, find_raw_files, raw_frames, stacked_raw
from omvald.spark.tasks import apply_per_bucket, raise_user_error
from omvald.spark.validate import Validated, validate_on_spark, validated_bucket

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def output_schema() -> pa.Schema:
    """Arrow schema of :data:`omvald.scoring.score.ROW_COLUMNS`, a task's rows (reason values are text), and the
    bucket's drift counts (:data:`omvald.scoring.bucket.DRIFT_COLUMN`).

    The value tier is not among them: the finisher cuts it from every customer's value.
    """
    types = {
        "customer_id": pa.string(),
        "as_of": pa.date32(),
        "risk_tier": pa.string(),
        "segment": pa.string(),
        "contactable": pa.bool_(),
        "explained": pa.bool_(),
        DRIFT_COLUMN: pa.string(),
    }
    fields = []
    for name in [*sc.ROW_COLUMNS, DRIFT_COLUMN]:
        if name in types:
            fields.append(pa.field(name, types[name]))
        elif name == "value" or name.startswith(("p_", "monthly_", "revenue_")) or name.endswith("_contribution"):
            fields.append(pa.field(name, pa.float64()))
        else:  # driver names, driver values as text, reason sentences
            fields.append(pa.field(name, pa.string()))
    return pa.schema(fields)


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
    drift_path: Path | None = None,
    spark: SparkSession | None = None,
) -> ScoreSummary:
    """:func:`omvald.scoring.stage.run_score` on Spark: same arguments, output file and summary.

    One task per bucket of ``score.chunk_buckets`` or ``features.n_buckets``.
    ``master`` is used only when no running session ``spark`` is given.
    """
    from omvald.spark.session import spark_session

    output, input_dir = Path(output), Path(input_dir)
    clock = PhaseClock()
    policy, models = start_scoring(cfg, explain, output, models_dir, model_uri, tracking_uri, clock)

    clock.enter("read_validate")
    files = find_raw_files(input_dir, cfg.data)
    files, personal, personal_warnings = drop_personal_by_content(files, cfg.data)
    n_buckets = scoring_buckets(cfg)
    spark = spark or spark_session(master, n_buckets=n_buckets, java=cfg.spark.java)
    stacked = tuple(frame.persist() for frame in stacked_raw(spark, files, n_buckets))
    broadcast = None
    try:
        validated = validate_on_spark(spark, stacked, files, cfg.data, as_of, (personal, personal_warnings))
        for message in validated.warnings:
            log.warning("%s", message)
        population = population_on_spark(spark, stacked, files, cfg, validated, as_of, models)
        plan = plan_for_input(
            cfg, policy, validated, as_of=as_of, source=str(input_dir), population=population, models=models
        )

        clock.enter("spark")
        broadcast = spark.sparkContext.broadcast(models)
        schema = output_schema()
        task = _score_task(files, cfg.data, as_of, validated, plan, broadcast, schema)
        try:
            table = apply_per_bucket(stacked, task, schema).drop("bucket").toArrow()
        except Exception as exc:
            raise_user_error(exc)
            raise
    finally:
        for frame in stacked:
            frame.unpersist()
        if broadcast is not None:
            broadcast.unpersist()
    merged = ScoredBuckets(plan)
    if table.num_rows:
        merged.add(BucketResult.from_rows(_collected_rows(table, schema)))
    return finish_scoring(plan, models, merged, output, summary_path, clock, engine="spark", drift_path=drift_path)


def _score_task(
    files: dict[str, RawFile | None],
    data_cfg: DataConfig,
    validate_as_of: dt.date | None,
    validated: Validated,
    plan: ScoringPlan,
    models: Any,
    out_schema: pa.Schema,
):
    """What a task runs on one bucket's raw rows: validate, give attributes the whole table's kinds, score."""
    paths = file_paths(files)

    def run(*batches: pa.Table) -> pa.Table:
        raw = raw_frames(batches, files)
        tables, *_ = validated_bucket(raw, data_cfg, validate_as_of, paths, validated.bounds)
        kinds = {c: k for c, k in validated.attribute_kinds.items() if c in tables["customers"]}
        tables = {**tables, "customers": with_attribute_kinds(tables["customers"], raw["customers"], kinds)}
        result = score_bucket(BucketTables(**tables), plan, models.value, defer_top=False)
        return pa.Table.from_pandas(result.rows()[out_schema.names], preserve_index=False).cast(out_schema)

    return run


def _collected_rows(table: pa.Table, schema: pa.Schema) -> Any:
    """The collected Arrow rows as the local engine's frame: text columns as pandas ``str``."""
    frame = table.cast(schema).to_pandas()
    return frame.astype({c: "str" for c in frame.columns if schema.field(c).type == pa.string()})

"""Population parameters of a Spark scoring run, fitted once on the driver as the local engine fits them.

The local engine fits BG/NBD on the whole validated billing table at the
scoring date (:func:`omvald.scoring.plan.population_fit`). That fit only
reads a stable sample of customers: those whose hash slot is below a
limit set by the number of buyers up to the date
(:func:`omvald.features.btyd_fit.sample_slots`). So on Spark the buckets
report how many customers made their first purchase on each day
(:attr:`omvald.spark.validate.Validated.first_purchases`), the driver finds
the limit from their sum, and one job over the buckets that hold those
slots (one bucket at 1M customers and the default sample) returns the
sampled customers' validated invoices; the fit on them gives the local
engine's parameters, so scores do not depend on the bucketing.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from omvald.buckets import slot_range
from omvald.config import Config
from omvald.features.btyd_fit import buyers_up_to, fit_frame, sample_slots
from omvald.scoring.plan import ScoringModels, scored_contractual, scoring_buckets
from omvald.spark.raw import RawFile, file_paths, raw_frames
from omvald.spark.validate import Validated, validated_bucket

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SAMPLED_BILLING = pa.schema(
    [
        pa.field("customer_id", pa.string()),
        pa.field("invoice_date", pa.timestamp("us")),
        pa.field("amount", pa.float64()),
        pa.field("hash_slot", pa.int16()),
    ]
)


def population_on_spark(
    spark: SparkSession,
    stacked: tuple[DataFrame, ...],
    files: dict[str, RawFile | None],
    cfg: Config,
    validated: Validated,
    as_of: dt.date | None,
    models: ScoringModels | None,
) -> dict[str, Any]:
    """The ``population`` of :func:`omvald.scoring.plan.plan_scoring`: ``{"btyd": ...}`` for a business scored
    without contracts, ``{}`` otherwise (same parameters as the local engine's)."""
    from pyspark.sql import functions as F

    from omvald.spark.tasks import apply_per_bucket, raise_user_error

    if scored_contractual(cfg, validated.meta, models):
        return {}
    day = as_of or dt.date.fromisoformat(str(validated.meta["data_end"])[:10])
    buyers = buyers_up_to(validated.first_purchases or {}, day)
    limit = sample_slots(buyers, cfg.features.btyd_sample_customers)
    n_buckets = scoring_buckets(cfg)
    needed = [b for b in range(n_buckets) if slot_range(b, n_buckets)[0] < limit]
    paths = file_paths(files)

    def sampled_invoices(*batches: pa.Table) -> pa.Table:
        raw = raw_frames(batches, files)
        tables, *_ = validated_bucket(raw, cfg.data, as_of, paths, validated.bounds)
        billing = tables["billing"]
        rows = billing.loc[billing["hash_slot"] < limit, list(SAMPLED_BILLING.names)]
        return pa.Table.from_pandas(rows, preserve_index=False).cast(SAMPLED_BILLING)

    frames = [frame.filter(F.col("bucket").isin(needed)) for frame in stacked]
    try:
        rows = apply_per_bucket(frames, sampled_invoices, SAMPLED_BILLING).drop("bucket").toArrow()
    except Exception as exc:
        raise_user_error(exc)
        raise
    billing = rows.cast(SAMPLED_BILLING).to_pandas().astype({"customer_id": "str"})
    return {"btyd": fit_frame(billing, [day], cfg.features, buyers={day: buyers})}

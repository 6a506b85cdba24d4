"""Score stage, local engine: a folder of contract files in, one row per customer out.

``run_score`` drives the scoring core on this machine: it loads both models
**once** (:func:`omvald.scoring.plan.load_scoring_models`), validates the
folder bucket by bucket into temporary interim files (rows dated after the
as-of date are errors; :mod:`omvald.scoring.source`), settles the
:class:`~omvald.scoring.plan.ScoringPlan` from the facts about the whole
input, then reads and scores the customers bucket by bucket
(``features.n_buckets``, or ``score.chunk_buckets``) through
:func:`omvald.scoring.bucket.score_bucket`, and ends in
:func:`omvald.scoring.finish.finish_scoring`. The Spark engine
(:mod:`omvald.spark.scoring`) drives the same three steps.

Reason codes (exact TreeSHAP per customer) go only to the customers the
``--explain`` policy selects, in the same single pass: with ``risk:P`` and
``all`` each bucket explains its selected rows right away; with ``top:N``
the pass keeps a running top N of candidates *with their feature rows*, so
memory is bounded by N feature rows plus one bucket and no bucket's
features are built twice, and the run's top N are explained at the end.

Nothing is written unless the whole run succeeds (the output and the
summary are written atomically at the end).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from omvald.buckets import bucket_of_slot
from omvald.config import Config
from omvald.scoring.bucket import score_bucket
from omvald.scoring.clock import Hook, PhaseClock
from omvald.scoring.finish import ScoredBuckets, ScoreSummary, finish_scoring
from omvald.scoring.plan import plan_for_input
from omvald.scoring.source import validated_input
from omvald.scoring.start import start_scoring

log = logging.getLogger(__name__)


def run_score(
    cfg: Config,
    input_dir: Path,
    output: Path,
    *,
    as_of: dt.date | None = None,
    explain: str | None = None,
    models_dir: Path = Path("models"),
    model_uri: str | None = None,
    tracking_uri: str | None = None,
    summary_path: Path | None = None,
    drift_path: Path | None = None,
    on_bucket: Callable[[int, int], None] | None = None,
    on_phase: Hook | None = None,
) -> ScoreSummary:
    """Score every customer in the population at ``as_of`` (default: the latest date in the files).

    Writes ``output`` (``.csv`` or ``.parquet``, columns
    :data:`omvald.scoring.score.OUTPUT_COLUMNS`, sorted by ``customer_id``)
    and, if given, ``summary_path`` and ``drift_path`` (JSON: drift against
    the training reference, :mod:`omvald.scoring.drift`). ``explain`` overrides
    ``score.explain``. ``on_bucket(done, total)`` reports progress;
    ``on_phase(name)`` is called when the run moves to ``read_validate``,
    ``features``, ``predict``, ``drift``, ``reasons`` or ``write`` (for benchmarks).
    Returns the summary.
    """
    clock = PhaseClock(on_phase)
    policy, models = start_scoring(cfg, explain, Path(output), models_dir, model_uri, tracking_uri, clock)

    clock.enter("read_validate")
    with validated_input(cfg, Path(input_dir), as_of, Path(output)) as source:
        population = source.population(cfg, as_of, models)
        plan = plan_for_input(
            cfg, policy, source, as_of=as_of, source=str(input_dir), population=population, models=models
        )
        merged = ScoredBuckets(plan)
        for b in range(plan.n_buckets):
            clock.enter("read_validate")
            merged.add(score_bucket(source.bucket(b, plan.n_buckets), plan, models, clock=clock))
            if on_bucket is not None:
                on_bucket(b + 1, plan.n_buckets)
        return finish_scoring(plan, models, merged, Path(output), summary_path, clock, drift_path=drift_path)


def read_and_validate(
    cfg: Config, input_dir: Path, as_of: dt.date | None
) -> tuple[dict[str, pd.DataFrame], dict, list]:
    """Read the contract files of ``input_dir`` and validate them whole, in memory (``as_of``: later rows are errors).

    For tests and notebooks on small inputs; ``run_score`` validates out of core.
    """
    from omvald.data.read import read_tables
    from omvald.data.validate import validate_tables

    raw, paths = read_tables(input_dir, cfg.data.personal_columns)
    clean, meta, warnings = validate_tables(raw, cfg.data, as_of=as_of, paths=paths)
    for w in warnings:
        log.warning("%s", w)
    return clean, meta, list(warnings)


def bucket_slices(df: pd.DataFrame, n_buckets: int) -> list[np.ndarray | slice]:
    """Row positions of each bucket (a bucket is a contiguous slot range).

    Validated tables are sorted by ``hash_slot``, so each bucket is a plain
    slice: ``iloc`` then returns views instead of copying every column.
    """
    buckets = bucket_of_slot(df["hash_slot"].to_numpy(), n_buckets)
    if len(buckets) < 2 or bool((buckets[1:] >= buckets[:-1]).all()):
        bounds = np.searchsorted(buckets, np.arange(n_buckets + 1), side="left")
        return [slice(int(bounds[b]), int(bounds[b + 1])) for b in range(n_buckets)]
    order = np.argsort(buckets, kind="stable")
    bounds = np.searchsorted(buckets[order], np.arange(n_buckets + 1), side="left")
    return [order[bounds[b] : bounds[b + 1]] for b in range(n_buckets)]

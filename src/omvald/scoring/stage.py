"""Score stage: a folder of contract files in, one row per customer out.

``run_score`` reads and validates the folder (rows dated after the as-of
date are errors), loads both models **once**, then walks the customers
bucket by bucket (``features.n_buckets``, or ``score.chunk_buckets``):
features at the as-of date -> probabilities -> tier and revenue at risk.

Reason codes (exact TreeSHAP per customer) go only to the customers the
``--explain`` policy selects, and are computed in the same single pass:

- ``risk:P``, ``all``: selection depends only on the customer's own scores,
  so each bucket explains its selected rows right away;
- ``top:N``: selection depends on everyone's revenue at risk, so the pass
  keeps a running top-N of candidates *with their feature rows* (the
  bucket's best N merged with the best N so far, then trimmed). Memory is
  bounded by N feature rows plus one bucket, and no bucket's features are
  built twice; the contributions of the final N are computed at the end,
  in chunks of :data:`REASON_CHUNK` rows.

Nothing is written unless the whole run succeeds (the output and the
summary are written atomically at the end).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from omvald.buckets import bucket_of_slot
from omvald.config import Config
from omvald.errors import ConfigError, DataContractError, ModelError
from omvald.features.spec import BucketTables
from omvald.io import write_json, write_table
from omvald.scoring import score as sc
from omvald.scoring.select import ExplainPolicy, parse_explain_policy, select_for_explanation, top_n_positions

log = logging.getLogger(__name__)

REASON_CHUNK = 50_000
MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
Hook = Callable[[str], None]


@dataclass
class PhaseClock:
    """Seconds spent per phase (phases interleave across buckets, so time accumulates)."""

    on_phase: Hook | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    _current: str | None = None
    _since: float = 0.0

    def enter(self, phase: str) -> None:
        now = time.perf_counter()
        if self._current is not None:
            self.seconds[self._current] = self.seconds.get(self._current, 0.0) + now - self._since
        self._current, self._since = phase, now
        if self.on_phase is not None:
            self.on_phase(phase)

    def stop(self) -> dict[str, float]:
        self.enter("done")
        return {k: round(v, 3) for k, v in self.seconds.items()}


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
    on_bucket: Callable[[int, int], None] | None = None,
    on_phase: Hook | None = None,
) -> dict[str, Any]:
    """Score every customer in the population at ``as_of`` (default: the latest date in the files).

    Writes ``output`` (``.csv`` or ``.parquet``, columns
    :data:`omvald.scoring.score.OUTPUT_COLUMNS`, sorted by ``customer_id``)
    and, if given, ``summary_path`` (JSON). ``explain`` overrides
    ``score.explain``. ``on_bucket(done, total)`` reports progress;
    ``on_phase(name)`` is called when the run moves to ``read_validate``,
    ``features``, ``predict``, ``reasons`` or ``write`` (for benchmarks).
    Returns the summary.
    """
    policy = parse_explain_policy(explain if explain is not None else cfg.score.explain)
    _check_output(Path(output))
    clock = PhaseClock(on_phase)
    clock.enter("load_models")
    churn_model, phase_out_model, model_source = load_models(Path(models_dir), model_uri, tracking_uri)

    clock.enter("read_validate")
    tables, meta, warnings = read_and_validate(cfg, Path(input_dir), as_of)
    as_of = as_of or _as_date(meta["data_end"])
    # Attribute kinds and the binding column must be decided on the whole customers
    # table, not per bucket, or two buckets could build different columns.
    tables, meta = complete_empty_tables(tables, meta)
    meta = _business_meta(meta, tables)
    specs = _specs(cfg, meta)
    n_buckets = cfg.score.chunk_buckets or cfg.features.n_buckets
    slices = {name: _bucket_slices(df, n_buckets) for name, df in tables.items()}

    score_parts: list[pd.DataFrame] = []
    reason_parts: list[pd.DataFrame] = []
    candidates: pd.DataFrame | None = None  # top:N only: feature rows + revenue_at_risk of the best N so far
    trained = [m for m in (churn_model, phase_out_model) if m is not None]
    model_columns = list(dict.fromkeys(c for m in trained for c in m.feature_names_))
    for b in range(n_buckets):
        bucket = BucketTables(**{name: df.iloc[slices[name][b]] for name, df in tables.items()})
        if len(bucket.customers):
            clock.enter("features")
            feats = _bucket_features(bucket, as_of, cfg, meta)
            if len(feats):
                clock.enter("predict")
                feats = feats.reset_index(drop=True)
                scores = sc.score_features(
                    feats,
                    churn_model,
                    phase_out_model,
                    _contactable(bucket.customers),
                    horizon_days=cfg.features.horizon_days,
                    phase_out_drop=cfg.features.phase_out_drop,
                    risk_tiers=cfg.score.risk_tiers,
                )
                score_parts.append(scores)
                if policy.is_global:
                    candidates = _merge_candidates(candidates, feats, scores, model_columns, int(policy.value or 0))
                else:
                    chosen = select_for_explanation(scores, policy)
                    if chosen.any():
                        clock.enter("reasons")
                        reason_parts.append(_reasons(feats.loc[chosen], churn_model, phase_out_model, specs))
        if on_bucket is not None:
            on_bucket(b + 1, n_buckets)

    if not score_parts:
        raise DataContractError(
            "customers",
            None,
            f"no customer is in the population at the as-of date {as_of} (signed up on or before it and, "
            "for a contractual business, not churned by then; for a non-contractual one, an invoice in the "
            "lookback window); choose another --as-of",
            path=str(input_dir),
        )
    if candidates is not None and len(candidates):
        clock.enter("reasons")
        for start in range(0, len(candidates), REASON_CHUNK):
            chunk = candidates.iloc[start : start + REASON_CHUNK]
            reason_parts.append(_reasons(chunk, churn_model, phase_out_model, specs))

    clock.enter("write")
    result = assemble(pd.concat(score_parts, ignore_index=True), reason_parts)
    write_table(result, output)
    timings = clock.stop()
    tiers = [*sorted(cfg.score.risk_tiers, key=lambda t: -float(cfg.score.risk_tiers[t])), "low"]
    summary = summarize(result, as_of, policy, model_source, warnings, timings, tiers)
    summary.update(input=str(input_dir), output=str(output))
    if summary_path is not None:
        write_json(summary, summary_path)
    return summary


# --- models -------------------------------------------------------------------------------------


def load_models(models_dir: Path, model_uri: str | None, tracking_uri: str | None) -> tuple[Any, Any, str]:
    """The churn and phase-out estimators, from ``models_dir`` or from the MLflow registry.

    ``model_uri`` is ``models:/omvald-churn@<alias>``; the phase-out model
    comes from ``omvald-phase-out@<alias>`` (same alias), so a champion is
    always scored with its own phase-out partner.
    """
    if model_uri is None:
        from omvald.model.train import skipped_targets

        skipped = skipped_targets(models_dir)
        models = []
        for target in ("churn", "phase_out"):
            path = models_dir / f"{target}.joblib"
            if target in skipped and target != "churn":
                log.warning("score: no %s model (%s); p_%s stays empty", target, skipped[target], target)
                models.append(None)
                continue
            if not path.exists():
                raise ModelError(f"{path}: model not found; run `omvald train` or pass --models-dir / --model-uri.")
            models.append(joblib.load(path))
        return models[0], models[1], str(models_dir)
    from omvald.model.tracking import REGISTERED_NAMES, load_pyfunc

    match = MODELS_URI.match(model_uri)
    if not match or match["name"] != REGISTERED_NAMES["churn"]:
        raise ConfigError(
            f"--model-uri {model_uri!r}: expected models:/{REGISTERED_NAMES['churn']}@<alias> "
            "(e.g. @champion); the phase-out model is taken from the same alias"
        )
    uris = {t: f"models:/{REGISTERED_NAMES[t]}@{match['alias']}" for t in ("churn", "phase_out")}
    if tracking_uri is None:
        raise ConfigError("--model-uri needs an MLflow tracking URI (mlflow.tracking_uri or MLFLOW_TRACKING_URI)")
    models = []
    for uri in uris.values():
        try:
            pyfunc = load_pyfunc(uri, tracking_uri)
        except Exception as exc:  # MLflow raises several types for a missing model/alias/artifact
            raise ModelError(f"cannot load {uri} from {tracking_uri}: {exc}") from exc
        # The pyfunc wrapper only returns probabilities; reason codes need the estimator inside.
        models.append(pyfunc.unwrap_python_model().model)
    return models[0], models[1], model_uri


# --- data ---------------------------------------------------------------------------------------


def read_and_validate(
    cfg: Config, input_dir: Path, as_of: dt.date | None
) -> tuple[dict[str, pd.DataFrame], dict, list]:
    """Read the contract files of ``input_dir`` and validate them (``as_of``: later rows are errors)."""
    from omvald.data.read import read_tables
    from omvald.data.validate import validate_tables

    raw, paths = read_tables(input_dir, cfg.data.personal_columns)
    clean, meta, warnings = validate_tables(raw, cfg.data, as_of=as_of, paths=paths)
    for w in warnings:
        log.warning("%s", w)
    return clean, meta, list(warnings)


def _bucket_features(bucket: BucketTables, as_of: dt.date, cfg: Config, meta: dict) -> pd.DataFrame:
    from omvald.features.build import build_features

    return build_features(bucket, [as_of], cfg.features, meta, with_labels=False)


def _business_meta(meta: dict, tables: dict[str, pd.DataFrame]) -> dict:
    from omvald.features.build import feature_meta

    # Which features exist must follow the columns, not the row count: a scoring
    # file with an empty touchpoints table means "nobody had a touchpoint" (counts
    # of 0), not "this business has no touchpoint data". The registry drops a
    # family whose table has no rows (right for training), so scoring leaves the
    # row counts out.
    meta = {k: v for k, v in meta.items() if k != "rows"}
    return feature_meta(meta, BucketTables(**tables))


def complete_empty_tables(tables: dict[str, pd.DataFrame], meta: dict) -> tuple[dict[str, pd.DataFrame], dict]:
    """Give a table with no rows every optional contract column (empty), so its features can be built.

    A header-only export often carries just the required columns; with no
    rows, an absent optional column and an empty one mean the same thing.
    """
    from omvald.data.contract import OPTIONAL

    dtypes = {"date": "datetime64[us]", "timestamp": "datetime64[us]", "number": "float64", "bool": "bool"}
    tables, columns = dict(tables), {t: list(c) for t, c in meta.get("columns", {}).items()}
    for name, df in tables.items():
        if len(df) or name == "customers":
            continue
        extra = {c: pd.Series(dtype=dtypes.get(kind, "str")) for c, kind in OPTIONAL[name].items() if c not in df}
        if extra:
            tables[name] = df.assign(**extra)
            columns[name] = [*columns.get(name, []), *extra]
    return tables, {**meta, "columns": columns}


def _specs(cfg: Config, meta: dict) -> dict[str, Any]:
    from omvald.features.registry import all_specs

    return {s.name: s for s in all_specs(cfg.features, meta)}


def _bucket_slices(df: pd.DataFrame, n_buckets: int) -> list[np.ndarray | slice]:
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


def _contactable(customers: pd.DataFrame) -> pd.Series:
    ids = customers["customer_id"].astype("str").to_numpy()
    if "marketing_opt_in" not in customers:
        return pd.Series(False, index=ids)
    return pd.Series(customers["marketing_opt_in"].fillna(False).astype(bool).to_numpy(), index=ids)


# --- reason codes -------------------------------------------------------------------------------


def _reasons(feats: pd.DataFrame, churn_model: Any, phase_out_model: Any, specs: dict) -> pd.DataFrame:
    reasons = sc.reason_codes(feats, churn_model, phase_out_model, specs)
    reasons.index = feats["customer_id"].astype("str").to_numpy()
    return reasons


def _merge_candidates(
    candidates: pd.DataFrame | None, feats: pd.DataFrame, scores: pd.DataFrame, columns: list[str], n: int
) -> pd.DataFrame | None:
    """Keep the best ``n`` by revenue at risk (ties: lowest id) among the old candidates and this bucket."""
    if n <= 0:
        return None
    keep = top_n_positions(scores, n)
    fresh = feats.iloc[keep][["customer_id", *[c for c in columns if c != "customer_id"]]].copy()
    fresh["customer_id"] = fresh["customer_id"].astype("str")
    fresh["revenue_at_risk"] = scores["revenue_at_risk"].to_numpy()[keep]
    pool = fresh if candidates is None else pd.concat([candidates, fresh], ignore_index=True)
    return pool.iloc[top_n_positions(pool, n)].reset_index(drop=True)


# --- output -------------------------------------------------------------------------------------


def assemble(scores: pd.DataFrame, reason_parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Scores with reason columns (empty for customers not explained), sorted by ``customer_id``."""
    scores = scores.sort_values("customer_id", kind="stable").reset_index(drop=True)
    ids = scores["customer_id"].to_numpy()
    if reason_parts:
        reasons = pd.concat(reason_parts)
        reasons = reasons.reindex(ids)
        explained = reasons.index.isin(pd.concat(reason_parts).index)
        # reindex turns all-missing str columns into object/float: restore the schema
        reasons = reasons.astype({c: ("float64" if c.endswith("_contribution") else "str") for c in reasons.columns})
    else:
        reasons = sc.empty_reason_frame(pd.RangeIndex(len(scores)))
        explained = np.zeros(len(scores), dtype=bool)
    reasons = reasons.reset_index(drop=True)
    out = pd.concat([scores, reasons], axis=1)
    out["explained"] = np.asarray(explained, dtype=bool)
    return out[sc.OUTPUT_COLUMNS]


def summarize(
    result: pd.DataFrame,
    as_of: dt.date,
    policy: ExplainPolicy,
    model_source: str,
    warnings: list,
    timings: dict[str, float],
    tier_order: Sequence[str] = (),
) -> dict[str, Any]:
    """The numbers printed after a run and written to ``--summary`` (money in the input's currency).

    ``by_tier_segment`` lists tiers in ``tier_order`` (highest risk first).
    """
    by = (
        result.groupby(["risk_tier", "segment"], observed=True)
        .agg(
            customers=("customer_id", "size"),
            revenue_at_risk=("revenue_at_risk", "sum"),
            contactable=("contactable", "sum"),
        )
        .reset_index()
    )
    rank = {t: i for i, t in enumerate(tier_order)}
    by = by.sort_values(
        ["risk_tier", "segment"], key=lambda s: s.map(rank).fillna(len(rank)) if s.name == "risk_tier" else s
    )
    table: dict[str, dict[str, dict[str, float]]] = {}
    for row in by.itertuples(index=False):
        table.setdefault(str(row.risk_tier), {})[str(row.segment)] = {
            "customers": int(row.customers),
            "revenue_at_risk": round(float(row.revenue_at_risk), 2),
            "contactable": int(row.contactable),
        }
    return {
        "as_of": as_of.isoformat(),
        "explain_policy": str(policy),
        "models": model_source,
        "n_scored": int(len(result)),
        "n_explained": int(result["explained"].sum()),
        "n_contactable": int(result["contactable"].sum()),
        "monthly_revenue": round(float(result["monthly_revenue"].clip(lower=0).sum()), 2),
        "revenue_at_risk": round(float(result["revenue_at_risk"].sum()), 2),
        "revenue_at_risk_contactable": round(float(result.loc[result["contactable"], "revenue_at_risk"].sum()), 2),
        "mean_p_churn": round(float(result["p_churn"].mean()), 6),
        "mean_p_phase_out": None
        if result["p_phase_out"].isna().all()
        else round(float(result["p_phase_out"].mean()), 6),
        "by_tier_segment": table,
        "warnings": [str(w) for w in warnings],
        "timings_s": timings,
    }


def _check_output(output: Path) -> None:
    if output.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise ConfigError(f"--output {output}: use a .csv or .parquet file name")


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])

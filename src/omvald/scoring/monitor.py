"""``omvald monitor``: how right an old scoring run was, once its outcomes are in a newer export.

A scoring run at ``t`` wrote ``p_churn`` and ``p_phase_out`` per customer.
Once a newer export reaches ``t + horizon_days``, :func:`run_monitor`
derives each scored customer's realized labels at ``t`` from it with the
training label rules (:func:`omvald.features.build.build_features` with
labels, the SQL of :mod:`omvald.features.labels`, bucket by bucket), and
computes the evaluate stage's metrics on them (:mod:`omvald.scoring.monitor_metrics`)
beside the metrics the model had at training time: ``metrics/*.json`` for
a models folder, the registered version's logged metrics for
``--model-uri``. A realized ROC AUC more than ``monitor.max_auc_drop``
below the training-time one is flagged. The result goes to ``--output``
(JSON, atomically) and, when the model is registered in MLflow, to a
``monitor`` run whose metrics are linked to the model version.

Customers in a campaign list (``customer_id``, ``group``: ``contact`` or
``control``; e.g. ``omvald plan``'s output) are measured apart: the
headline uses the customers the campaign left alone.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from omvald.config import Config
from omvald.errors import ConfigError, DataContractError
from omvald.features import labels
from omvald.features.build import build_features
from omvald.features.facts import AttributeFacts
from omvald.features.spec import BucketTables
from omvald.io import check_outputs, read_json, write_json
from omvald.scoring import monitor_metrics as mm
from omvald.scoring.plan import FILLABLE_TABLES, population_fit, whole_input_facts
from omvald.scoring.stage import bucket_slices, read_and_validate

log = logging.getLogger(__name__)

SCORE_COLUMNS = ("customer_id", "as_of", "p_churn", "p_phase_out", "segment")
GROUPS = (mm.CONTACT, mm.CONTROL)


def read_scores(path: Path) -> tuple[pd.DataFrame, dt.date]:
    """The scores file of one run (``omvald score``'s output) and its as-of date."""
    path = Path(path)
    if not path.exists():
        raise DataContractError("scores", None, "file not found", path=str(path))
    frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    missing = [c for c in SCORE_COLUMNS if c not in frame]
    if missing:
        raise DataContractError("scores", missing[0], f"column(s) {', '.join(missing)} missing: not an omvald scores "
                                "file", path=str(path))  # fmt: skip
    dates = pd.to_datetime(frame["as_of"]).dt.date.unique()
    if len(dates) != 1:
        raise DataContractError("scores", "as_of", f"holds {len(dates)} as-of dates; monitor one scoring run at a time",
                                sorted(map(str, dates))[:5], str(path))  # fmt: skip
    frame = frame.assign(customer_id=frame["customer_id"].astype("str"))
    return frame[list(SCORE_COLUMNS)], dates[0]


def read_campaign(path: Path | None) -> pd.DataFrame | None:
    """A campaign list: ``customer_id`` and ``group`` (``contact`` or ``control``, any letter case)."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        raise DataContractError("campaign list", None, "file not found", path=str(path))
    frame = pd.read_csv(path, dtype="str") if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    for column in ("customer_id", "group"):
        if column not in frame:
            raise DataContractError("campaign list", column, "column missing (need customer_id and group)",
                                    path=str(path))  # fmt: skip
    group = frame["group"].astype("str").str.strip().str.lower()
    bad = ~group.isin(GROUPS)
    if bad.any():
        raise DataContractError("campaign list", "group", "values must be contact or control",
                                frame.loc[bad].head(5).to_dict("records"), str(path))  # fmt: skip
    return pd.DataFrame({"customer_id": frame["customer_id"].astype("str"), "group": group})


def realized_labels(cfg: Config, input_dir: Path, as_of: dt.date) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``customer_id, segment, tenure_months, churn, phase_out`` at ``as_of`` from the export in ``input_dir``.

    Refuses (:class:`ConfigError`) an export that ends before the outcomes
    are known (``as_of + horizon_days``). Returns the labels and the
    export's meta.
    """
    tables, meta, _ = read_and_validate(cfg, Path(input_dir), None)
    data_end = dt.date.fromisoformat(str(meta["data_end"]))
    known = as_of + dt.timedelta(days=cfg.features.horizon_days)
    if known > data_end:
        raise ConfigError(
            f"--input {input_dir} ends on {data_end}; the outcomes of the scores at {as_of} are known only from "
            f"{known} (features.horizon_days = {cfg.features.horizon_days}). Monitor again with an export that "
            f"reaches {known} or later."
        )
    empty = tuple(t for t in FILLABLE_TABLES if int(meta.get("rows", {}).get(t, 1)) == 0)
    facts = whole_input_facts(
        meta,
        AttributeFacts.of_customers(tables["customers"]),
        empty,
        population_fit(cfg, meta, tables["billing"], as_of),
    )
    con = duckdb.connect()
    con.register("monitor_billing", tables["billing"][["customer_id", "invoice_date"]])
    facts.update(labels.billing_coverage(con, "monitor_billing"))  # as the features stage: phase-out needs billing
    con.close()
    facts["rows"] = meta.get("rows", {})  # labels ask whether the whole export has billing, not one bucket
    n_buckets = cfg.score.chunk_buckets or cfg.features.n_buckets
    slices = {name: bucket_slices(df, n_buckets) for name, df in tables.items()}
    parts = []
    for b in range(n_buckets):
        bucket = BucketTables(**{name: df.iloc[slices[name][b]] for name, df in tables.items()})
        if not len(bucket.customers):
            continue
        built = build_features(bucket, [as_of], cfg.features, facts, with_labels=True)
        parts.append(built[["customer_id", "tenure_months", "churn", "phase_out"]])
    found = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["customer_id"])
    return found.assign(customer_id=found["customer_id"].astype("str")), meta


def training_metrics(metrics_dir: Path | None, version_metrics: dict[str, float] | None) -> dict[str, Any]:
    """``{"churn": {metric: value}, "phase_out": {...}, "source": text}`` of the model at training time.

    From ``metrics_dir`` (``metrics/*.json``, the LightGBM model's overall
    test metrics) or, for a registered version, its logged ``test.*`` metrics.
    """
    out: dict[str, Any] = {"churn": None, "phase_out": None, "source": None}
    if version_metrics:
        for target, prefix in (
            ("churn", "test.models.lgbm.overall."),
            ("phase_out", "test.combined.models.lgbm.overall."),
        ):
            found = {k[len(prefix) :]: v for k, v in version_metrics.items() if k.startswith(prefix)}
            out[target] = found or None
        out["source"] = "the registered model version's logged test metrics"
        return out
    if metrics_dir is None:
        return out
    for target in ("churn", "phase_out"):
        path = Path(metrics_dir) / f"{target}.json"
        if not path.exists():
            continue
        data = read_json(path)
        block = data if target == "churn" else data.get("combined")
        if block and not data.get("skipped"):
            out[target] = block["models"]["lgbm"]["overall"]
            out["test_dates"] = data.get("test_dates")
    out["source"] = f"{metrics_dir}/*.json (the evaluated fit on its test window)"
    return out


def monitor_scores(
    cfg: Config,
    scores: pd.DataFrame,
    as_of: dt.date,
    found: pd.DataFrame,
    campaign: pd.DataFrame | None,
    training: dict[str, Any],
) -> dict[str, Any]:
    """The monitor result (``--output``'s JSON) of ``scores`` with realized labels ``found``. Pure."""
    rows = scores.merge(found, on="customer_id", how="inner", validate="one_to_one")
    rows = rows.loc[rows["churn"].notna()].reset_index(drop=True)
    if rows.empty:
        raise DataContractError("scores", "customer_id", f"none of the {len(scores)} scored customers is in the "
                                f"newer export's population at {as_of}: is it the same business?")  # fmt: skip
    rows["group"] = mm.campaign_groups(rows["customer_id"], campaign)
    phase_out = bool(rows["p_phase_out"].notna().any())
    bins, top = cfg.evaluate.calibration_bins, cfg.evaluate.top_fraction
    headline = rows.loc[rows["group"] != mm.CONTACT]
    realized = mm.realized_blocks(headline, bins, top, phase_out)
    max_drop = cfg.monitor.max_auc_drop
    result: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "horizon_days": cfg.features.horizon_days,
        "outcomes_known_from": (as_of + dt.timedelta(days=cfg.features.horizon_days)).isoformat(),
        "n_scored": int(len(scores)),
        "n_with_outcome": int(len(rows)),
        "n_not_in_input": int(len(scores) - len(rows)),
        "groups": {g: int(n) for g, n in rows["group"].value_counts().sort_index().items()},
        "headline_rows": "every scored customer" if campaign is None else "customers not contacted (control included)",
        "max_auc_drop": max_drop,
        "training_metrics_from": training.get("source"),
        "flags": [],
    }
    targets = {"churn": realized["churn"]}
    if phase_out:
        targets["phase_out"] = realized["phase_out"]["combined"]
        result["phase_out_if_stays"] = realized["phase_out"]["if_stays"]
    for target, block in targets.items():
        comparison = mm.compare(block, training.get(target))
        result[target] = {**block, "vs_training": comparison}
        flag = mm.auc_flag(target.replace("_", "-"), comparison, max_drop)
        if flag:
            result["flags"].append(flag)
    if campaign is not None:
        result["campaign"] = {
            group: mm.realized_blocks(rows.loc[rows["group"] == group], bins, top, phase_out)
            for group in GROUPS
            if (rows["group"] == group).any()
        }
    return result


def run_monitor(
    cfg: Config,
    scores_path: Path,
    input_dir: Path,
    output: Path,
    *,
    campaign_path: Path | None = None,
    metrics_dir: Path | None = Path("metrics"),
    version_metrics: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Monitor stage: read, label, measure, write ``output``; returns the result (module docstring)."""
    check_outputs({output: "file"}, inputs=[scores_path, input_dir, campaign_path])
    scores, as_of = read_scores(scores_path)
    campaign = read_campaign(campaign_path)
    found, meta = realized_labels(cfg, input_dir, as_of)
    result = monitor_scores(cfg, scores, as_of, found, campaign, training_metrics(metrics_dir, version_metrics))
    result.update({"scores": str(scores_path), "input": str(input_dir), "input_data_end": meta["data_end"]})
    write_json(result, output)
    for flag in result["flags"]:
        log.warning("monitor: %s", flag)
    return result

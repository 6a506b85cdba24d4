"""``omvald effect --list L --input NEWER_EXPORT``: what happened to the listed customers, and what it says.

After the horizon has passed, a newer export of the same business holds the
outcome of every listed customer. This stage reads and validates it as
``omvald validate`` does, computes each listed customer's churn and
phase-out at the list's as-of date with the **training labels' own code**
(:func:`omvald.features.labels.labels`: churn in ``(t, t+H]``, phase-out by
whole months), and compares contacted and control customers
(:func:`omvald.actions.effect.measure`). It refuses, before writing anything,
when the export does not reach ``t + H`` yet ("not yet observable").

Listed customers missing from the newer export, or no longer customers at
``t`` in it (a corrected churn date), are left out and counted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from omvald.actions.effect import METHOD, measure
from omvald.config import Config
from omvald.data.retention_list import read_retention_list
from omvald.errors import DataContractError, NotObservableError
from omvald.features import labels
from omvald.features.spec import BucketTables
from omvald.io import check_outputs, read_json, write_json

log = logging.getLogger(__name__)

LIST_COLUMNS = ("customer_id", "as_of", "group", "action", "segment", "value_tier", "value", "cost")


@dataclass(frozen=True)
class EffectResult:
    """The effect JSON's content (``groups`` as in :func:`omvald.actions.effect.measure`)."""

    summary: dict[str, Any]

    @property
    def overall(self) -> dict[str, Any]:
        return self.summary["groups"][0]


def read_list(path: Path) -> pd.DataFrame:
    """A retention list of ``omvald plan`` (CSV or Parquet); a :class:`DataContractError` naming what is wrong."""
    path = Path(path)
    frame, as_of = read_retention_list(path, "--list", LIST_COLUMNS)
    bad = ~frame["group"].isin(["contact", "control"])
    if bad.any():
        raise DataContractError(
            "retention list", "group", "must be contact or control", frame.loc[bad, "group"], str(path)
        )
    if not (frame["group"] == "control").any():
        raise DataContractError(
            "retention list", "group", "no control customer: without a held-out group no effect can be measured "
            "(plan.holdout_share)", path=str(path),
        )  # fmt: skip
    if "expected_saved_revenue" not in frame:
        frame["expected_saved_revenue"] = 0.0
    return frame.assign(customer_id=frame["customer_id"].astype("str"), as_of=as_of)


def realized_outcomes(
    listed: pd.DataFrame, tables: dict[str, pd.DataFrame], meta: dict[str, Any], cfg: Config
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``listed`` with ``churn`` and ``phase_out`` at its as-of date, and counts of the customers left out."""
    as_of = listed["as_of"].iloc[0]
    customers = tables["customers"]
    known = listed["customer_id"].isin(customers["customer_id"].astype("str"))
    signup = customers.set_index(customers["customer_id"].astype("str"))["signup_date"]
    churned = (
        customers.set_index(customers["customer_id"].astype("str"))["churn_date"]
        if "churn_date" in customers
        else pd.Series(dtype=object)
    )
    ids = listed.loc[known, "customer_id"]
    before = pd.to_datetime(signup.reindex(ids)).dt.date <= as_of
    gone = pd.to_datetime(churned.reindex(ids)).dt.date <= as_of
    in_population = before.fillna(False).to_numpy() & ~gone.fillna(False).to_numpy()
    keep_ids = set(ids[in_population])
    measured = listed[listed["customer_id"].isin(keep_ids)].reset_index(drop=True)
    subset = {name: df[df["customer_id"].astype("str").isin(keep_ids)] for name, df in tables.items() if df is not None}
    spine = pd.DataFrame({"customer_id": measured["customer_id"].to_numpy(), "as_of": [as_of] * len(measured)})
    con = duckdb.connect()
    con.register("billing_all", tables["billing"])
    coverage = labels.billing_coverage(con, "billing_all")
    con.close()
    until = coverage["billing_observed_until"]
    found = labels.labels(
        BucketTables(subset["customers"], subset["billing"], subset["touchpoints"]),
        spine,
        cfg.features,
        _date(meta["data_end"]),
        bool(meta.get("contractual", True)),
        billing_empty=len(tables["billing"]) == 0,
        billing_until=_date(until) if until else None,
    )
    measured["churn"] = found["churn"].to_numpy(dtype=float)
    measured["phase_out"] = found["phase_out"].to_numpy(dtype=float)
    counts = {"listed": len(listed), "measured": len(measured), "missing_from_export": int((~known).sum())}
    counts["not_a_customer_at_as_of"] = int(len(ids) - in_population.sum())
    return measured, counts


def run_effect(
    cfg: Config,
    list_path: Path,
    input_dir: Path,
    output: Path,
    *,
    data_end: dt.date | None = None,
    run_json: Path | None = Path("models/run.json"),
    tracking_uri: str | None = None,
) -> EffectResult:
    """Measure the list's campaign on the newer export ``input_dir``; write ``output`` (JSON) and log it to MLflow.

    ``data_end`` is the newer export's end of data (default: where the bulk
    of its rows ends; ``data.data_end`` in params.yaml describes the
    training export and is not used).
    """
    check_outputs({output: "file"}, inputs=[list_path, input_dir])
    listed = read_list(list_path)
    as_of = listed["as_of"].iloc[0]
    horizon_end = as_of + dt.timedelta(days=cfg.features.horizon_days)
    from omvald.data.read import read_tables
    from omvald.data.validate import validate_tables

    raw, paths = read_tables(input_dir, cfg.data.personal_columns)
    tables, meta, warnings = validate_tables(raw, dataclasses.replace(cfg.data, data_end=data_end), paths=paths)
    export_end = _date(meta["data_end"])
    if horizon_end > export_end:
        raise NotObservableError(
            f"{input_dir}: not yet observable. The list's as-of date {as_of} plus features.horizon_days "
            f"({cfg.features.horizon_days}) is {horizon_end}, but this export's data end at {export_end}. "
            f"Measure with an export that reaches {horizon_end}."
        )
    outcomes, counts = realized_outcomes(listed, tables, meta, cfg)
    if counts["missing_from_export"] or counts["not_a_customer_at_as_of"]:
        log.warning(
            "effect: %d listed customers are not in %s and %d were no longer customers at %s there; left out",
            counts["missing_from_export"], input_dir, counts["not_a_customer_at_as_of"], as_of,
        )  # fmt: skip
    groups = measure(outcomes, cfg.effect.min_group_customers, cfg.effect.confidence)
    summary = {
        "as_of": as_of.isoformat(),
        "list": str(list_path),
        "input": str(input_dir),
        "horizon_days": cfg.features.horizon_days,
        "observed_until": horizon_end.isoformat(),
        "export_data_end": export_end.isoformat(),
        "confidence": cfg.effect.confidence,
        "min_group_customers": cfg.effect.min_group_customers,
        "method": METHOD,
        "counts": counts,
        "groups": groups,
        "warnings": list(warnings),
    }
    write_json(summary, output)
    if run_json is not None and Path(run_json).exists():
        _log_to_mlflow(Path(run_json), summary, Path(output), tracking_uri)
    return EffectResult(summary)


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _log_to_mlflow(run_json: Path, summary: dict[str, Any], output: Path, tracking_uri: str | None) -> None:
    info = read_json(run_json)
    if not info.get("parent_run_id"):
        return
    from omvald.model.tracking import log_to_run

    keys = ("n_contact", "n_control", "churn_reduction", "churn_reduction_low", "churn_reduction_high",
            "saved_revenue", "saved_revenue_low", "saved_revenue_high")  # fmt: skip
    metrics = {"effect": {}}
    for group in summary["groups"]:
        if group["level"] in ("all", "action") and group.get("churn_reduction") is not None:
            name = "all" if group["level"] == "all" else group["action"]
            metrics["effect"][name] = {k: group[k] for k in keys}
    log_to_run(info, metrics=metrics, artifacts=[output], artifact_path="effect", tracking_uri=tracking_uri)

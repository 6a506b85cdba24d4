"""``omvald plan``: a scores file in, the retention list and its summary out.

Reads any scores file of ``omvald score`` (CSV or Parquet), builds the list
with :func:`omvald.actions.plan.retention_list`, writes it (``.csv`` or
``.parquet``, atomically) and a summary by action and cell (JSON), and adds
the summary to the pipeline's MLflow run when ``models/run.json`` names one.
With ``effects`` (a JSON of ``omvald effect``) the measured effects replace
the assumed ones where they were measured precisely enough: the loop closes.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from omvald.actions.plan import CELL, MeasuredEffects, measured_effects, retention_list
from omvald.config import Config
from omvald.errors import ConfigError, DataContractError
from omvald.io import check_outputs, read_json, write_json, write_table

log = logging.getLogger(__name__)

SCORE_COLUMNS = (
    "customer_id",
    "as_of",
    "p_churn",
    "p_phase_out",
    "risk_tier",
    "value_tier",
    "segment",
    "value",
    "contactable",
    "preferred_channel",
    "churn_driver_1",
    "churn_reason_1",
    "phase_out_driver_1",
    "phase_out_reason_1",
)


@dataclass(frozen=True)
class PlanResult:
    """What ``omvald plan`` wrote: the list (one row per listed customer) and the summary (as in the JSON)."""

    retention_list: pd.DataFrame
    summary: dict[str, Any]


def read_scores(path: Path) -> pd.DataFrame:
    """The columns a plan needs from a scores file; a :class:`DataContractError` naming what is missing."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: scores file not found; run `omvald score` first.")
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype={"customer_id": "str"})
    elif path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        raise ConfigError(f"{path}: a scores file is .csv or .parquet")
    missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataContractError(
            "scores",
            ", ".join(missing),
            "missing; a retention plan needs the value tier, preferred channel and driver columns of "
            "`omvald score` (score the customers again with this version)",
            path=str(path),
        )
    frame = frame[list(SCORE_COLUMNS)].copy()
    frame["customer_id"] = frame["customer_id"].astype("str")
    duplicated = frame["customer_id"].duplicated()
    if duplicated.any():
        raise DataContractError(
            "scores", "customer_id", "a customer appears twice", frame.loc[duplicated, "customer_id"], str(path)
        )
    dates = pd.to_datetime(frame["as_of"]).dt.date.unique()
    if len(dates) != 1:
        raise DataContractError("scores", "as_of", f"a plan needs one as-of date, found {len(dates)}", dates, str(path))
    frame["as_of"] = dates[0]
    return frame


def run_plan(
    cfg: Config,
    scores_path: Path,
    output: Path,
    summary_path: Path | None = None,
    effects_path: Path | None = None,
    run_json: Path | None = Path("models/run.json"),
    tracking_uri: str | None = None,
) -> PlanResult:
    """Write the retention list to ``output`` and, if given, its summary to ``summary_path``; return both."""
    outputs = {output: "file", **({summary_path: "file"} if summary_path is not None else {})}
    if Path(output).suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"{output}: the retention list is a .csv or .parquet file")
    check_outputs(outputs, inputs=[scores_path, effects_path])
    scores = read_scores(Path(scores_path))
    measured = _measured(effects_path)
    listed, counts = retention_list(scores, cfg.plan, cfg.features.phase_out_drop, measured)
    summary = plan_summary(listed, counts, cfg, scores_path, output, measured)
    if counts["without_reason_codes"]:
        log.warning(
            "plan: %d contactable customers have no reason codes (not explained when scored), so only rules "
            "without a driver condition match them; score with --explain all or top:N to give them one",
            counts["without_reason_codes"],
        )
    out = listed.assign(as_of=listed["as_of"].map(lambda d: d.isoformat()))
    write_table(out, output)
    if summary_path is not None:
        write_json(summary, summary_path)
    if run_json is not None and Path(run_json).exists() and summary_path is not None:
        _log_to_mlflow(Path(run_json), summary, summary_path, tracking_uri)
    return PlanResult(listed, summary)


def plan_summary(
    listed: pd.DataFrame,
    counts: dict[str, int],
    cfg: Config,
    scores_path: Path,
    output: Path,
    measured: MeasuredEffects | None,
) -> dict[str, Any]:
    """Counts, budget used and the list by action and by cell (action x segment x value tier); aggregates only."""
    contact = listed["group"] == "contact"
    cost = (listed["cost"] * contact).astype(float)
    saved = listed["expected_saved_revenue"].where(contact, 0.0)
    frame = listed.assign(_contact=contact, _control=~contact, _cost=cost, _saved=saved)
    aggregates = {
        "listed": ("customer_id", "size"),
        "contact": ("_contact", "sum"),
        "control": ("_control", "sum"),
        "cost": ("_cost", "sum"),
        "expected_saved_revenue": ("_saved", "sum"),
    }
    by_cell = frame.groupby(CELL, sort=True).agg(**aggregates).reset_index()
    by_action: dict[str, Any] = {}
    for action, rows in frame.groupby("action", sort=True):
        spec = cfg.plan.actions[str(action)]
        by_action[str(action)] = {
            "listed": len(rows),
            "contact": int(rows["_contact"].sum()),
            "control": int(rows["_control"].sum()),
            "cost": round(float(rows["_cost"].sum()), 2),
            "expected_saved_revenue": round(float(rows["_saved"].sum()), 2),
            "channels": {str(k): int(v) for k, v in rows["channel"].value_counts().sort_index().items()},
            "theme": spec.theme,
            "assumed_effect": spec.effect,
            "effect_sources": {str(k): int(v) for k, v in rows["effect_source"].value_counts().sort_index().items()},
        }
    as_of = listed["as_of"].iloc[0] if len(listed) else None
    return {
        "as_of": as_of.isoformat() if isinstance(as_of, dt.date) else None,
        "scores": str(scores_path),
        "output": str(output),
        "horizon_days": cfg.features.horizon_days,
        "phase_out_drop": cfg.features.phase_out_drop,
        "budget": {"contacts": cfg.plan.budget_contacts, "cost": cfg.plan.budget_cost},
        "holdout_share": cfg.plan.holdout_share,
        "holdout_salt": cfg.plan.holdout_salt,
        "effects": measured.source if measured is not None else "assumed (plan.actions)",
        "counts": {**counts, "listed": len(listed), "contact": int(contact.sum()), "control": int((~contact).sum())},
        "contact_cost": round(float(cost.sum()), 2),
        "expected_saved_revenue": round(float(saved.sum()), 2),
        "by_action": by_action,
        "by_cell": [
            {**{k: str(row[k]) for k in CELL}, **{k: _number(row[k]) for k in aggregates}}
            for _, row in by_cell.iterrows()
        ],
    }


def _measured(effects_path: Path | None) -> MeasuredEffects | None:
    if effects_path is None:
        return None
    path = Path(effects_path)
    if not path.exists():
        raise ConfigError(f"--effects {path}: file not found; it is the JSON written by `omvald effect`.")
    measured = measured_effects(read_json(path), str(path))
    log.info("plan: %d measured effects from %s replace the assumed ones", len(measured.effects), path)
    return measured


def _number(v: Any) -> float | int:
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2**53 else round(f, 2)


def _log_to_mlflow(run_json: Path, summary: dict[str, Any], summary_path: Path, tracking_uri: str | None) -> None:
    info = read_json(run_json)
    if not info.get("parent_run_id"):
        return
    from omvald.model.tracking import log_to_run

    metrics = {
        "plan": {
            "listed": summary["counts"]["listed"],
            "contact": summary["counts"]["contact"],
            "control": summary["counts"]["control"],
            "contact_cost": summary["contact_cost"],
            "expected_saved_revenue": summary["expected_saved_revenue"],
            "by_action": {
                a: {k: v[k] for k in ("contact", "control", "cost", "expected_saved_revenue")}
                for a, v in summary["by_action"].items()
            },
        }
    }
    log_to_run(info, metrics=metrics, artifacts=[summary_path], artifact_path="plan", tracking_uri=tracking_uri)

"""Read every stage output the run report shows into one typed object.

Only this module (and :mod:`omvald.reports.stage`) opens files for the report;
:mod:`omvald.reports.html` turns the resulting :class:`ReportInputs` into a page.
The metrics files are required (a report without them says nothing); every
other input is optional and, when absent, is recorded in
``ReportInputs.missing`` so the page can say "not available" instead of failing.

Only aggregates cross this boundary: counts, rates, metrics and feature names.
No customer id, name or e-mail is kept.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from omvald.errors import ConfigError
from omvald.model.artifacts import MODEL_ORDER

TARGETS = ("churn", "phase_out")
TARGET_LABELS = {"churn": "Churn", "phase_out": "Phase-out"}
CURVES = ("gains", "calibration", "roc", "pr")
METRIC_KEYS = ("roc_auc", "pr_auc", "brier", "ece", "lift", "capture", "log_loss", "positive_rate", "mean_predicted")
SLICE_GROUPS = ("segment", "tenure")


@dataclass(frozen=True)
class TargetResults:
    """Evaluation of one target (churn or phase-out) on the test window.

    ``metrics``: one row per (``model``, ``slice``) with columns ``n_rows`` and
    :data:`METRIC_KEYS` (NaN where undefined). ``slice`` is ``overall``,
    ``segment:active``, ``segment:passive``, ``tenure:<12`` ...
    ``curves``: ``gains``/``calibration``/``roc``/``pr`` curve data as
    written by the evaluate stage (optionally with a ``model`` column).
    ``skipped``: why the train stage skipped this model (``metrics`` then
    has no rows and ``curves`` is empty); ``None`` for a trained model.
    """

    target: str
    metrics: pd.DataFrame
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


@dataclass(frozen=True)
class ReportInputs:
    """Everything the run report shows; optional parts are ``None`` and named in ``missing``."""

    generated_at: str
    targets: dict[str, TargetResults]
    explain_images: dict[str, bytes] = field(default_factory=dict)
    shap_importance: pd.DataFrame | None = None
    shap_driver_importance: pd.DataFrame | None = None
    segments: pd.DataFrame | None = None
    nps_monthly: pd.DataFrame | None = None
    nps_overall: dict[str, Any] | None = None
    nps_png: bytes | None = None
    score_summary: dict[str, Any] | None = None
    plan_summary: dict[str, Any] | None = None
    effect: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None
    monitor: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    features_meta: dict[str, Any] | None = None
    split: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportPaths:
    """Where each stage wrote its outputs (defaults = dvc.yaml)."""

    interim: Path = Path("data/interim")
    features: Path = Path("data/features")
    metrics: Path = Path("metrics")
    plots: Path = Path("plots")
    explain: Path = Path("reports/explain")
    profile: Path = Path("reports/profile.json")
    score_summary: Path = Path("reports/score_summary.json")
    models: Path = Path("models")
    plan_summary: Path = Path("reports/plan_summary.json")
    effect: Path = Path("reports/effect.json")
    drift: Path = Path("reports/drift.json")
    monitor: Path | None = None


# --------------------------------------------------------------------------- metrics


def metrics_table(raw: Mapping[str, Any]) -> pd.DataFrame:
    """Flatten a ``metrics/<target>.json`` into rows (scope, model, slice, n_rows, metric...).

    A *summary* is a dict holding at least one of :data:`METRIC_KEYS`; a
    *sliced summary* is a dict with an ``overall`` summary and optional
    ``segment``/``tenure`` groups of summaries (``omvald.model.metrics.sliced_summary``).
    Sliced summaries may sit at any depth: the last key leading to one names
    the ``model`` (``lgbm``, ``logistic``), the keys before it (without the
    container ``models``) the ``scope`` (phase-out: ``combined`` = the score
    users see, ``if_stays`` = the model on customers who did not churn).
    Rows of the primary scope (``""`` or ``combined``) come first; within a scope the kept model
    (``kept_model``, default LightGBM) first, then the others in
    :data:`omvald.model.artifacts.MODEL_ORDER` (candidates, then baselines).
    """
    rows: list[dict[str, Any]] = []

    def is_summary(d: Any) -> bool:
        return isinstance(d, Mapping) and any(k in d for k in METRIC_KEYS)

    def add(scope: str, model: str, slice_: str, summary: Mapping[str, Any]) -> None:
        row: dict[str, Any] = {"scope": scope, "model": model, "slice": slice_, "n_rows": summary.get("n_rows")}
        row.update({k: summary.get(k) for k in METRIC_KEYS})
        rows.append(row)

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, Mapping):
            return
        if is_summary(node.get("overall")):
            names = [p for p in path if p != "models"] or ["model"]
            scope, model = "/".join(names[:-1]), names[-1]
            add(scope, model, "overall", node["overall"])
            for group in SLICE_GROUPS:
                for name, summary in (node.get(group) or {}).items():
                    if is_summary(summary):
                        add(scope, model, f"{group}:{name}", summary)
            return
        for key, value in node.items():
            walk(value, (*path, str(key)))

    walk(raw, ())
    columns = ["scope", "model", "slice", "n_rows", *METRIC_KEYS]
    table = pd.DataFrame(rows, columns=columns)
    for col in columns[3:]:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    # metrics files are written with sorted keys: order explicitly, the kept model first, then the others.
    scope_rank = (~table["scope"].isin(["", "combined"])).astype(int)
    order_of = {m: i + 1 for i, m in enumerate(MODEL_ORDER)} | {raw.get("kept_model") or "lgbm": 0}
    model_rank = table["model"].map(order_of).fillna(len(order_of) + 1)
    order = pd.DataFrame({"s": scope_rank, "m": model_rank}).sort_values(["s", "m"], kind="stable").index
    return table.loc[order].reset_index(drop=True)


def read_target(target: str, metrics_dir: Path, plots_dir: Path) -> TargetResults:
    """Metrics (required) and curve data (optional) of one target.

    A metrics file with ``"skipped": true`` (the train stage skipped the
    model, e.g. no phase-out labels in a single snapshot) gives a result
    with no metrics, no curves and ``skipped`` set to its ``reason``.
    """
    path = metrics_dir / f"{target}.json"
    if not path.exists():
        raise ConfigError(
            f"{path}: metrics file not found. The report needs the evaluate stage's output; "
            f"run `omvald evaluate` first or pass --metrics <folder with {target}.json>."
        )
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); rerun `omvald evaluate`.") from exc
    if raw.get("skipped"):
        reason = str(raw.get("reason") or "no reason recorded")
        return TargetResults(target=target, metrics=metrics_table({}), raw=raw, skipped=reason)
    table = metrics_table(raw)
    if table.empty:
        raise ConfigError(f"{path}: no metrics found (expected an 'overall' summary with e.g. 'roc_auc').")
    curves = {kind: pd.read_csv(p) for kind in CURVES if (p := plots_dir / f"{kind}_{target}.csv").exists()}
    return TargetResults(target=target, metrics=table, curves=curves, raw=raw)


def read_targets(paths: ReportPaths) -> dict[str, TargetResults]:
    """Both targets' metrics and curves (a skipped one: its reason); :class:`ConfigError` when a file is missing."""
    return {t: read_target(t, paths.metrics, paths.plots) for t in TARGETS}


# --------------------------------------------------------------------------- segments


def latest_segments(features: pd.DataFrame) -> pd.Series:
    """Segment per customer: the ``segment`` at the customer's latest ``as_of`` (index ``customer_id``)."""
    latest = features[["customer_id", "as_of", "segment"]].sort_values(["customer_id", "as_of"], kind="stable")
    latest = latest.drop_duplicates("customer_id", keep="last")
    return latest.set_index("customer_id")["segment"].astype(str)


def segment_summary(training: pd.DataFrame | None, scoring: pd.DataFrame | None) -> pd.DataFrame:
    """Active vs passive: customers at the scoring date and observed label rates.

    ``customers`` counts the scoring snapshot; ``labelled_rows``,
    ``churn_rate`` and ``phase_out_rate`` come from every labelled
    (customer, as-of) row of the training table (phase-out among those who stayed).
    """
    parts: list[pd.DataFrame] = []
    if scoring is not None and "segment" in scoring:
        counts = scoring["segment"].astype(str).value_counts().rename("customers")
        parts.append(counts.to_frame())
        if "monthly_revenue" in scoring:
            revenue = pd.to_numeric(scoring["monthly_revenue"], errors="coerce")
            parts.append(revenue.groupby(scoring["segment"].astype(str)).sum().rename("monthly_revenue").to_frame())
    if training is not None and "segment" in training and "churn" in training:
        labelled = training[training["churn"].notna()]
        seg = labelled["segment"].astype(str)
        stats = pd.DataFrame({"labelled_rows": seg.value_counts()})
        stats["churn_rate"] = pd.to_numeric(labelled["churn"], errors="coerce").groupby(seg).mean()
        if "phase_out" in labelled and labelled["phase_out"].notna().any():  # none: not observed (snapshot)
            stats["phase_out_rate"] = pd.to_numeric(labelled["phase_out"], errors="coerce").groupby(seg).mean()
        parts.append(stats)
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, axis=1)
    out.index.name = "segment"
    return out.reset_index().sort_values("segment", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- the rest


def read_optional_json(path: Path, missing: dict[str, str], key: str, hint: str) -> dict[str, Any] | None:
    """A JSON file, or ``None`` with a reason recorded under ``missing[key]``."""
    if not path.exists():
        missing[key] = f"{path} not found ({hint})."
        return None
    return json.loads(path.read_text())


def read_feature_frames(features_dir: Path, missing: dict[str, str]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The columns of ``training``/``scoring.parquet`` the report aggregates (no feature values)."""
    frames: list[pd.DataFrame | None] = []
    for name in ("training", "scoring"):
        path = features_dir / f"{name}.parquet"
        if not path.exists():
            missing[f"features_{name}"] = f"{path} not found (run `omvald features`)."
            frames.append(None)
            continue
        present = set(pq.read_schema(path).names)
        wanted = ["customer_id", "as_of", "segment", "tenure_months", "monthly_revenue", "churn", "phase_out"]
        frames.append(pd.read_parquet(path, columns=[c for c in wanted if c in present]))
    return frames[0], frames[1]


def read_split(models_dir: Path) -> dict[str, Any] | None:
    """How train/test were split, from ``models/split.json`` (aggregates only: the customer lists are dropped).

    Returns ``{"strategy", "step", "out_of_time", "notes", "horizon_days", "windows": [{window, dates, first,
    last, rows, customers}], "dropped_dates", "fits", "kept"}``; ``fits`` (from ``models/targets.json``) says per
    target how the evaluated and the scoring model were fitted (model, trees, calibration, rows, as-of dates),
    ``kept`` which model was kept and each candidate's validation ROC AUC.
    """
    path = models_dir / "split.json"
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    dates = raw.get("dates") or {}
    windows = []
    for window, values in dates.items():
        values = sorted(values or [])
        windows.append(
            {
                "window": window,
                "as_of_dates": len(values),
                "first": values[0] if values else None,
                "last": values[-1] if values else None,
                "rows": (raw.get("n_rows") or {}).get(window),
                "customers": (raw.get("n_customers") or {}).get(window),
            }
        )
    strategy = raw.get("split_strategy") or raw.get("strategy")
    targets_path = models_dir / "targets.json"
    targets = json.loads(targets_path.read_text()) if targets_path.exists() else {}
    fits = targets.get("fits", {})
    return {
        "strategy": strategy,
        "step": raw.get("split_step") or ("time" if strategy == "time" else "customer"),
        "out_of_time": raw.get("out_of_time", strategy == "time"),
        "notes": list(raw.get("notes") or []),
        "horizon_days": raw.get("horizon_days"),
        "windows": windows,
        "dropped_dates": dict(raw.get("dropped_dates") or {}),
        "fits": {t: {fit: _fit_summary(r) for fit, r in pair.items()} for t, pair in fits.items()},
        "kept": dict(targets.get("kept") or {}),
    }


def _fit_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """One fit of ``targets.json`` without its file name, the as-of dates as count, first and last."""
    dates = sorted(record.get("as_of_dates") or [])
    out = {k: v for k, v in record.items() if k not in ("as_of_dates", "file")}
    return {
        **out,
        "as_of_dates": len(dates),
        "first": dates[0] if dates else None,
        "last": dates[-1] if dates else None,
    }


def read_explain(
    explain_dir: Path, missing: dict[str, str]
) -> tuple[dict[str, bytes], pd.DataFrame | None, pd.DataFrame | None]:
    """SHAP images (``*.png``, by file name), ``shap_importance.csv`` and ``shap_driver_importance.csv``."""
    if not explain_dir.exists():
        missing["explain"] = f"{explain_dir} not found (run `omvald explain`)."
        return {}, None, None
    images = {p.name: p.read_bytes() for p in sorted(explain_dir.glob("*.png"))}
    tables = []
    for name in ("shap_importance", "shap_driver_importance"):
        path = explain_dir / f"{name}.csv"
        tables.append(pd.read_csv(path) if path.exists() else None)
        if tables[-1] is None:
            missing[name] = f"{path} not found."
    return images, tables[0], tables[1]


def gather(
    paths: ReportPaths,
    *,
    targets: dict[str, TargetResults] | None = None,
    frames: tuple[pd.DataFrame | None, pd.DataFrame | None] | None = None,
    nps_monthly: pd.DataFrame | None = None,
    nps_overall: dict[str, Any] | None = None,
    nps_png: bytes | None = None,
    params: Mapping[str, Any] | None = None,
    missing: Mapping[str, str] | None = None,
) -> ReportInputs:
    """Read every stage output under ``paths`` into :class:`ReportInputs`.

    ``targets`` and ``frames`` (the (training, scoring) columns from
    :func:`read_feature_frames`): pass them when the caller already read them.
    NPS results are computed by the stage
    (which also writes them) and passed in. Raises :class:`ConfigError` when
    a metrics file is absent.
    """
    notes: dict[str, str] = dict(missing or {})
    targets = targets or read_targets(paths)
    images, importance, driver_importance = read_explain(paths.explain, notes)
    training, scoring = frames if frames is not None else read_feature_frames(paths.features, notes)
    segments = segment_summary(training, scoring)
    return ReportInputs(
        generated_at=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        targets=targets,
        explain_images=images,
        shap_importance=importance,
        shap_driver_importance=driver_importance,
        segments=segments if not segments.empty else None,
        nps_monthly=nps_monthly,
        nps_overall=nps_overall,
        nps_png=nps_png,
        score_summary=read_optional_json(paths.score_summary, notes, "score_summary", "run `omvald score`"),
        plan_summary=read_optional_json(paths.plan_summary, notes, "plan_summary", "run `omvald plan`"),
        effect=read_optional_json(
            paths.effect,
            notes,
            "effect",
            "no campaign measured yet: after the horizon has passed, run `omvald effect --list <retention list> "
            "--input <newer export>`",
        ),
        drift=read_optional_json(paths.drift, notes, "drift", "run `omvald score`, which writes it"),
        monitor=None
        if paths.monitor is None
        else read_optional_json(paths.monitor, notes, "monitor", "run `omvald monitor`"),
        profile=read_optional_json(paths.profile, notes, "profile", "run `omvald validate`"),
        features_meta=read_optional_json(paths.features / "meta.json", notes, "features_meta", "run `omvald features`"),
        split=read_split(paths.models),
        params=dict(params or {}),
        missing=notes,
    )

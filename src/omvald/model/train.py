"""Train stage: split the labelled feature rows, fit the churn and phase-out models and their baselines.

``run_train`` loads ``data/features``, calls the pure pieces (split,
estimators) and saves ``models/`` atomically; when a tracking context is
given it also creates the MLflow runs and writes their ids to
``models/run.json``.

Per target, :func:`omvald.model.candidates.fit_target` fits LightGBM (with
the budgeted search of ``train.search``), the baselines and the blend, and
keeps LightGBM, the logistic regression or the blend, judged on validation
(:mod:`omvald.model.kept`). The kept model has two fits (``models/targets.json``
records both, and which model was kept, and why):

- ``<target>.holdout.joblib``: fitted on the split's training window and
  early-stopped and calibrated on its validation window. Evaluate and
  promote use it: it never saw the test window, so its metrics are honest.
- ``<target>.joblib``: the model that ``omvald score`` loads and MLflow
  registers, fitted again on every labelled row with the holdout fit's
  trees and calibration (:mod:`omvald.model.refit`; ``train.refit: false``
  keeps the holdout fit instead).

The churn model is always trained. The phase-out model is skipped, with the
reason logged and written to ``models/targets.json``, when the data has no
usable phase-out labels (:func:`omvald.model.skips.phase_out_skip_reason`):
no phase-out model file is written. Later stages read them through :mod:`omvald.model.artifacts`.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from omvald.config import Config
from omvald.io import atomic_path, staged_files, write_json
from omvald.model.artifacts import (
    HOLDOUT,
    SCORING,
    TARGETS,
    TARGETS_FILE,
    FeatureSet,
    labelled_rows,
    load_features,
    model_path,
    target_rows,
)
from omvald.model.candidates import TargetFit, check_settings, fit_target
from omvald.model.estimators import LGBMChurnModel
from omvald.model.inputs import INPUTS_FILE, model_inputs
from omvald.model.reference import REFERENCE_FILE
from omvald.model.refit import refit
from omvald.model.skips import phase_out_skip_reason
from omvald.model.split import Split, make_split
from omvald.model.train_reference import reference_of

log = logging.getLogger(__name__)


def scoring_fit(cfg: Config, fs: FeatureSet, frame: pd.DataFrame, target: str, holdout: Any) -> Any:
    """The model ``omvald score`` uses: ``holdout`` refit on every labelled row of ``target`` (or itself)."""
    if not cfg.train.refit:
        return holdout
    rows = frame.loc[target_rows(frame, target)]
    # LightGBM reads the rows batch by batch; a kept logistic regression or blend holds them in memory
    X = fs.rows(rows) if isinstance(holdout, LGBMChurnModel) else fs.frame_of(rows)
    return refit(
        holdout, X, rows[target].astype(int), rows["customer_id"].astype(str), cfg.train.refit_calibration_folds
    )


def fit_records(
    cfg: Config, frame: pd.DataFrame, split: Split, target: str, pair: dict[str, Any], models_dir: Path, kept: str
) -> dict[str, dict[str, Any]]:
    """What ``targets.json`` says about both fits of the kept model: file, which model, trees, calibration, rows and dates."""
    rows = frame.loc[target_rows(frame, target)]
    train, valid = rows.loc[split.mask(rows, "train")], rows.loc[split.mask(rows, "valid")]

    def record(fit: str, learned: pd.DataFrame, **extra: Any) -> dict[str, Any]:
        model = pair[fit]
        return {
            "file": model_path(models_dir, target, fit).name,
            "model": kept,
            "n_trees": int(model.n_trees_),
            "calibration": model.calibration_method_,
            "n_rows": len(learned),
            "n_customers": int(learned["customer_id"].nunique()),
            "as_of_dates": sorted({pd.Timestamp(d).date().isoformat() for d in learned["as_of"]}),
            **extra,
        }

    folds = cfg.train.refit_calibration_folds if cfg.train.refit else None
    return {
        HOLDOUT: record(HOLDOUT, train, n_valid_rows=len(valid)),
        SCORING: record(SCORING, rows if cfg.train.refit else train, refit=cfg.train.refit, calibration_folds=folds),
    }


def run_train(cfg: Config, features_dir: Path, models_dir: Path, tracking: Any = None) -> dict[str, Any]:
    """Train stage: fit the models of every target that has labels and save them in ``models_dir``.

    Writes per trained target ``<target>.holdout.joblib`` and
    ``<target>.joblib`` (module docstring), ``baselines.joblib`` (every
    other candidate and baseline), ``split.json``, ``targets.json``
    (``{"trained": [...], "skipped": {target: reason}, "fits": {target:
    {"holdout": ..., "scoring": ...}}, "kept": {target: choice}, "search":
    {target: trials and best}, "baselines_unavailable": {target: {name:
    reason}}}``), ``reference.json`` (drift's training reference),
    ``inputs.json`` (what the exports it scores must hold,
    :mod:`omvald.model.inputs`) and ``run.json``, all together after the
    MLflow logging succeeded (nothing changes in ``models_dir`` otherwise).

    ``tracking`` is a :class:`omvald.model.tracking.TrackingContext` or None
    (no MLflow; ``run.json`` then records that).
    """
    check_settings(cfg)
    fs = load_features(Path(features_dir), cfg.train.customer_share)
    models_dir = Path(models_dir)
    frame = labelled_rows(fs.frame)
    horizon = int(fs.meta.get("horizon_days", cfg.features.horizon_days))
    split = make_split(
        frame,
        horizon,
        cfg.train.valid_dates,
        cfg.train.test_dates,
        cfg.train.customer_holdout_share,
        as_of_dates=[dt.date.fromisoformat(d) for d in fs.meta.get("as_of_dates", [])] or None,
        data_end=dt.date.fromisoformat(fs.meta["data_end"]) if fs.meta.get("data_end") else None,
    )
    skipped = {}
    reason = phase_out_skip_reason(frame, split, {**fs.meta, "horizon_days": horizon})
    if reason is not None:
        log.warning("train: phase-out model skipped: %s", reason)
        skipped["phase_out"] = reason
    targets = [t for t in TARGETS if t not in skipped]
    fitted: dict[str, TargetFit] = {target: fit_target(cfg, fs, frame, split, target) for target in targets}
    models = {
        t: {HOLDOUT: fitted[t].holdout, SCORING: scoring_fit(cfg, fs, frame, t, fitted[t].holdout)} for t in targets
    }
    fits = {t: fit_records(cfg, frame, split, t, models[t], models_dir, fitted[t].kept) for t in targets}
    split_json = split.to_json(frame)
    # Every file, and what MLflow records of them, changes together or not at all: a tracking server
    # that stops answering mid-run leaves the previous models/ (run.json included) as they were.
    with staged_files(models_dir) as staging:
        for target in models:
            for fit in (HOLDOUT, SCORING):
                _dump(models[target][fit], model_path(staging, target, fit))
        # every other candidate and baseline, evaluated beside the kept model
        others = {t: {k: m for k, m in fitted[t].models.items() if k != fitted[t].kept} for t in targets}
        _dump(others, staging / "baselines.joblib")
        write_json(split_json, staging / "split.json")
        write_json(reference_of(cfg, fs, frame, split, models), staging / REFERENCE_FILE)
        targets_json = {
            "trained": targets,
            "skipped": skipped,
            "fits": fits,
            "kept": {t: fitted[t].choice.record() for t in targets},
            "search": {t: fitted[t].search.record() for t in targets},
            "baselines_unavailable": {t: fitted[t].unavailable for t in targets},
        }
        write_json(targets_json, staging / TARGETS_FILE)
        write_json(model_inputs(fs.meta, fs.registry, fs.features).as_json(), staging / INPUTS_FILE)
        run_info: dict[str, Any] = {"tracking_uri": None, "runs": {}, "models": {}}
        if tracking is not None:
            from omvald.model.train_tracking import track_training

            run_info = track_training(cfg, fs, frame, split, models, fits, skipped, staging, tracking, fitted)
        run_info["skipped"] = skipped
        write_json(run_info, staging / "run.json")
    for target in skipped:  # never leave an earlier run's model beside a skip note
        for fit in (HOLDOUT, SCORING):
            model_path(models_dir, target, fit).unlink(missing_ok=True)
    return {
        "split": split_json,
        "run": run_info,
        "n_trees": {t: models[t][HOLDOUT].n_trees_ for t in targets},
        "fits": fits,
        "skipped": skipped,
        "kept": targets_json["kept"],
        "search": targets_json["search"],
    }


def _dump(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        joblib.dump(obj, tmp)

"""Train stage: split the labelled feature rows, fit the churn and phase-out models and their baselines.

``run_train`` loads ``data/features``, calls the pure pieces (split,
estimators) and saves ``models/`` atomically; when a tracking context is
given it also creates the MLflow runs and writes their ids to
``models/run.json``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from omvald.config import Config, LGBMParams
from omvald.errors import DataContractError, ModelError
from omvald.io import atomic_path, read_json, write_json
from omvald.model.baselines import HeuristicBaseline, LogisticBaseline
from omvald.model.estimators import LGBMChurnModel
from omvald.model.split import Split, make_split

log = logging.getLogger(__name__)

TARGETS = ("churn", "phase_out")
LABELS = ("churn", "phase_out", "next_revenue")


@dataclasses.dataclass(frozen=True)
class FeatureSet:
    """The feature stage's output as the model stages see it."""

    frame: pd.DataFrame
    features: list[str]
    categorical: list[str]
    meta: dict[str, Any]
    registry: list[dict[str, Any]]
    path: Path


def load_features(features_dir: Path) -> FeatureSet:
    """Read ``training.parquet``, ``registry.json`` and ``meta.json``; check the registry's columns are present."""
    features_dir = Path(features_dir)
    path = features_dir / "training.parquet"
    for needed in (path, features_dir / "registry.json", features_dir / "meta.json"):
        if not needed.exists():
            raise DataContractError("features", None, "file not found; run `omvald features` first", path=str(needed))
    frame = pd.read_parquet(path)
    registry = read_json(features_dir / "registry.json")
    meta = read_json(features_dir / "meta.json")
    features = [f["name"] for f in registry if f.get("available", True)]
    categorical = [f["name"] for f in registry if f.get("available", True) and f.get("kind") == "categorical"]
    missing = [c for c in [*features, "customer_id", "as_of", "churn"] if c not in frame.columns]
    if missing:
        raise DataContractError(
            "training",
            missing[0],
            f"column(s) {', '.join(missing)} listed in registry.json / the contract are missing",
            path=str(path),
        )
    if not features:
        raise DataContractError("registry", None, "no available features", path=str(features_dir / "registry.json"))
    return FeatureSet(frame, features, categorical, meta, registry, path)


def labelled_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose churn label is observed (``as_of + H <= data_end``)."""
    return frame.loc[frame["churn"].notna()].reset_index(drop=True)


def target_rows(frame: pd.DataFrame, target: str) -> pd.Series:
    """Phase-out is modelled on customers who stay: rows with ``phase_out`` not NaN (churn == 0)."""
    if target == "churn":
        return frame["churn"].notna()
    return frame["phase_out"].notna() & (frame["churn"] == 0)


def make_models(cfg: Config, target: str, categorical: list[str]) -> dict[str, Any]:
    """The three estimators fitted per target, keyed by the name used in metrics and plots."""
    hp: LGBMParams = getattr(cfg.train, target)
    lgbm = LGBMChurnModel(
        **dataclasses.asdict(hp), calibration=cfg.train.calibration, categorical_features=categorical, seed=cfg.seed
    )
    return {
        "lgbm": lgbm,
        "logistic": LogisticBaseline(categorical_features=categorical),
        "heuristic": HeuristicBaseline(),
    }


def fit_target(cfg: Config, fs: FeatureSet, frame: pd.DataFrame, split: Split, target: str) -> dict[str, Any]:
    """Fit the LightGBM model and both baselines for one target on the split's train / valid rows."""
    rows = target_rows(frame, target)
    train, valid = frame.loc[rows & split.mask(frame, "train")], frame.loc[rows & split.mask(frame, "valid")]
    if train[target].nunique() < 2:
        raise ModelError(
            f"{target}: the training window has a single class ({len(train)} rows); the model cannot learn."
        )
    models = make_models(cfg, target, fs.categorical)
    for name, model in models.items():
        log.info("train: %s / %s on %d rows (validation %d)", target, name, len(train), len(valid))
        model.fit(
            train[fs.features],
            train[target].astype(int),
            valid[fs.features],
            valid[target].astype(int),
            valid_groups=valid["customer_id"].astype(str).to_numpy(),
        )
    return models


def run_train(cfg: Config, features_dir: Path, models_dir: Path, tracking: Any = None) -> dict[str, Any]:
    """Train stage. Writes ``churn.joblib``, ``phase_out.joblib``, ``baselines.joblib``, ``split.json``, ``run.json``.

    ``tracking`` is a :class:`omvald.model.tracking.TrackingContext` or None
    (no MLflow; ``run.json`` then records that).
    """
    fs = load_features(Path(features_dir))
    models_dir = Path(models_dir)
    frame = labelled_rows(fs.frame)
    split = make_split(
        frame,
        int(fs.meta.get("horizon_days", cfg.features.horizon_days)),
        cfg.train.valid_dates,
        cfg.train.test_dates,
        cfg.train.snapshot_test_share,
        cfg.seed,
    )
    fitted = {target: fit_target(cfg, fs, frame, split, target) for target in TARGETS}
    split_json = split.to_json(frame)
    models_dir.mkdir(parents=True, exist_ok=True)
    for target in TARGETS:
        _dump(fitted[target]["lgbm"], models_dir / f"{target}.joblib")
    _dump({t: {k: m for k, m in fitted[t].items() if k != "lgbm"} for t in TARGETS}, models_dir / "baselines.joblib")
    write_json(split_json, models_dir / "split.json")
    run_info: dict[str, Any] = {"tracking_uri": None, "runs": {}, "models": {}}
    if tracking is not None:
        run_info = _track(cfg, fs, frame, split, fitted, models_dir, tracking)
    write_json(run_info, models_dir / "run.json")
    return {"split": split_json, "run": run_info, "n_trees": {t: fitted[t]["lgbm"].n_trees_ for t in TARGETS}}


def _track(
    cfg: Config, fs: FeatureSet, frame: pd.DataFrame, split: Split, fitted: dict, models_dir: Path, ctx: Any
) -> dict[str, Any]:
    from omvald.model import tracking

    families = fs.meta.get(
        "families_used", sorted({f.get("family", "") for f in fs.registry if f.get("available", True)})
    )
    tags = {"split_strategy": split.strategy, "feature_families": ",".join(families)}
    to_log = []
    for target in TARGETS:
        model = fitted[target]["lgbm"]
        rows = frame.loc[target_rows(frame, target) & split.mask(frame, "valid"), fs.features]
        to_log.append(
            tracking.ModelToLog(
                target=target,
                model=model,
                path=models_dir / f"{target}.joblib",
                example=rows.head(200) if len(rows) else frame[fs.features].head(200),
                params={
                    "model.n_trees": model.n_trees_,
                    "model.calibration_method": model.calibration_method_,
                    "model.n_features": len(fs.features),
                    **{f"model.calibration_logloss.{k}": round(v, 6) for k, v in model.calibration_losses_.items()},
                },
                tags={"calibration": model.calibration_method_},
            )
        )
    inputs = [fs.path.parent / "meta.json", fs.path.parent / "registry.json", models_dir / "split.json"]
    return tracking.log_training(
        ctx, params=cfg.flat(), training_path=fs.path, training=fs.frame, input_files=inputs, tags=tags, models=to_log
    )


def _dump(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        joblib.dump(obj, tmp)

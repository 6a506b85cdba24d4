"""The train stage's inputs and outputs as every later stage reads them: feature tables and the models folder.

``load_features`` reads ``data/features`` (optionally a stable share of the
customers); ``trained_targets`` / ``skipped_targets`` / ``model_path`` and
``load_evaluation_models`` read ``models/``. Train, evaluate, explain,
promote and scoring all load through here, so the layout of these folders
is decided in one module.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from omvald.buckets import N_SLOTS, hash_slot
from omvald.errors import ConfigError, DataContractError, ModelError
from omvald.io import read_json

log = logging.getLogger(__name__)

TARGETS = ("churn", "phase_out")
LABELS = ("churn", "phase_out", "next_revenue")
TARGETS_FILE = "targets.json"
HOLDOUT, SCORING = "holdout", "scoring"
# Every model name metrics can hold, in the order tables and plots list them (the kept model goes first).
MODEL_ORDER = ("lgbm", "logistic", "blend", "bgnbd", "rfm_logistic", "heuristic")


@dataclasses.dataclass(frozen=True)
class FeatureSet:
    """The feature stage's output as the model stages see it."""

    frame: pd.DataFrame
    features: list[str]
    categorical: list[str]
    meta: dict[str, Any]
    registry: list[dict[str, Any]]
    path: Path


def load_features(features_dir: Path, customer_share: float = 1.0) -> FeatureSet:
    """Read ``training.parquet``, ``registry.json`` and ``meta.json``; check the registry's columns are present.

    ``customer_share < 1`` reads only that share of the customers (all their
    as-of dates), chosen by the stable hash of ``customer_id`` that makes the
    buckets: the same customers in every stage and every run, and the rows
    of the others are never held in memory (``train.customer_share``, for a
    feature table larger than this machine's memory).
    """
    features_dir = Path(features_dir)
    path = features_dir / "training.parquet"
    for needed in (path, features_dir / "registry.json", features_dir / "meta.json"):
        if not needed.exists():
            raise DataContractError("features", None, "file not found; run `omvald features` first", path=str(needed))
    frame = read_customer_share(path, customer_share)
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


def read_customer_share(path: Path, share: float) -> pd.DataFrame:
    """The rows of the Parquet file ``path`` whose customer's hash slot is below ``share`` of the slots."""
    if not 0 < share <= 1:
        raise ConfigError(f"train.customer_share is {share}; it must be in (0, 1] (1 = every customer).")
    if share == 1:
        return pd.read_parquet(path)
    ids = pd.read_parquet(path, columns=["customer_id"])["customer_id"].drop_duplicates()
    kept = ids[(hash_slot(ids) < round(share * N_SLOTS)).to_numpy()]
    if kept.empty:
        raise ConfigError(
            f"train.customer_share = {share} keeps none of the {len(ids):,} customers in {path}; raise it."
        )
    log.info("features: reading %d of %d customers (train.customer_share = %s)", len(kept), len(ids), share)
    return pd.read_parquet(path, filters=[("customer_id", "in", kept.tolist())])


def labelled_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose churn label is observed (``as_of + H <= data_end``)."""
    return frame.loc[frame["churn"].notna()].reset_index(drop=True)


def target_rows(frame: pd.DataFrame, target: str) -> pd.Series:
    """Phase-out is modelled on customers who stay: rows with ``phase_out`` not NaN (churn == 0)."""
    if target == "churn":
        return frame["churn"].notna()
    return frame["phase_out"].notna() & (frame["churn"] == 0)


def trained_targets(models_dir: Path) -> list[str]:
    """Targets with a model in ``models_dir`` (``churn`` always; ``phase_out`` unless skipped)."""
    info_path = Path(models_dir) / TARGETS_FILE
    if not info_path.exists():  # models trained before targets.json existed had both
        return list(TARGETS)
    return list(read_json(info_path)["trained"])


def skipped_targets(models_dir: Path) -> dict[str, str]:
    """``{target: reason}`` for models the train stage skipped (empty when all were trained)."""
    info_path = Path(models_dir) / TARGETS_FILE
    return dict(read_json(info_path).get("skipped", {})) if info_path.exists() else {}


def kept_models(models_dir: Path) -> dict[str, str]:
    """``{target: kept model name}`` (``lgbm``, ``logistic`` or ``blend``); ``lgbm`` for models trained before the choice."""
    info_path = Path(models_dir) / TARGETS_FILE
    kept = read_json(info_path).get("kept", {}) if info_path.exists() else {}
    return {t: kept.get(t, {}).get("kept", "lgbm") for t in trained_targets(models_dir)}


def unavailable_baselines(models_dir: Path) -> dict[str, dict[str, str]]:
    """``{target: {baseline: why it is absent}}`` as the train stage recorded it (empty for older models)."""
    info_path = Path(models_dir) / TARGETS_FILE
    return dict(read_json(info_path).get("baselines_unavailable", {})) if info_path.exists() else {}


def ordered(names: Any, first: str | None = None) -> list[str]:
    """``names`` in :data:`MODEL_ORDER` (unknown names after, alphabetically), ``first`` moved to the front."""
    names = list(names)
    rank = {name: i for i, name in enumerate(MODEL_ORDER)}
    out = sorted(names, key=lambda n: (rank.get(n, len(rank)), n))
    if first in out:
        out.remove(first)
        out.insert(0, first)
    return out


def model_path(models_dir: Path, target: str, fit: str = SCORING) -> Path:
    """``<target>.joblib`` (the scoring model) or ``<target>.holdout.joblib`` (the evaluated fit)."""
    return Path(models_dir) / (f"{target}.joblib" if fit == SCORING else f"{target}.{fit}.joblib")


def load_evaluation_models(models_dir: Path) -> dict[str, dict[str, Any]]:
    """``{target: {name: model}}`` from ``models/`` for the trained targets, kept model first.

    Names: the kept model's (``lgbm``, ``logistic`` or ``blend``: its
    holdout fit, the one that did not see the test window) and every other
    candidate and baseline the train stage fitted (``baselines.joblib``),
    in :data:`MODEL_ORDER`.
    """
    models_dir = Path(models_dir)
    targets = trained_targets(models_dir)
    holdout = {t: model_path(models_dir, t, HOLDOUT) for t in targets}
    paths = [*holdout.values(), models_dir / "baselines.joblib", models_dir / "split.json"]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ModelError(f"missing model file(s) {', '.join(missing)}; run `omvald train` first.")
    baselines = joblib.load(models_dir / "baselines.joblib")
    kept = kept_models(models_dir)
    out = {}
    for t in targets:
        models = {kept[t]: joblib.load(holdout[t]), **baselines[t]}
        out[t] = {name: models[name] for name in ordered(models, first=kept[t])}
    return out

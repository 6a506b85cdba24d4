"""The train stage's inputs and outputs as every later stage reads them: feature tables and the models folder.

``load_features`` reads ``data/features`` (the keys and labels; the features
on demand, batch by batch; optionally a stable share of the customers); ``trained_targets`` / ``skipped_targets`` / ``model_path`` and
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
import numpy as np
import pandas as pd

from omvald.buckets import N_SLOTS, hash_slot
from omvald.errors import ConfigError, DataContractError, ModelError
from omvald.io import read_json
from omvald.model.feature_rows import ROW, FeatureFile, FeatureRows, read_keys

log = logging.getLogger(__name__)

TARGETS = ("churn", "phase_out")
LABELS = ("churn", "phase_out", "next_revenue")
TARGETS_FILE = "targets.json"
HOLDOUT, SCORING = "holdout", "scoring"
# Every model name metrics can hold, in the order tables and plots list them (the kept model goes first).
MODEL_ORDER = ("lgbm", "logistic", "blend", "bgnbd", "rfm_logistic", "heuristic")


@dataclasses.dataclass(frozen=True)
class FeatureSet:
    """The feature stage's output as the model stages see it.

    ``frame`` holds the keys and labels of every row (``customer_id``,
    ``as_of``, the labels, and ``_row``, the row's position in the file), never
    the features: :meth:`rows` reaches those, batch by batch
    (:mod:`omvald.model.feature_rows`), so no stage holds the whole table.
    """

    frame: pd.DataFrame
    features: list[str]
    categorical: list[str]
    meta: dict[str, Any]
    registry: list[dict[str, Any]]
    path: Path
    file: FeatureFile

    def rows(self, keys: pd.DataFrame, columns: list[str] | None = None) -> FeatureRows:
        """The rows of ``keys`` (rows of :attr:`frame`) with ``columns`` (default: the features), read when used."""
        rows = np.sort(keys[ROW].to_numpy())
        if len(rows) and not np.array_equal(rows, keys[ROW].to_numpy()):
            raise ValueError("FeatureSet.rows: keys must be in file order")
        return FeatureRows(self.file, rows, self.features if columns is None else columns)

    def frame_of(self, keys: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
        """The rows of ``keys`` with ``columns`` (default: the features) in memory, index as ``keys``'."""
        frame = self.rows(keys, columns).to_frame()
        frame.index = keys.index
        return frame


def load_features(features_dir: Path, customer_share: float = 1.0) -> FeatureSet:
    """Read ``registry.json``, ``meta.json`` and the keys and labels of ``training.parquet``; check its columns.

    ``customer_share < 1`` keeps only that share of the customers (all their
    as-of dates), chosen by the stable hash of ``customer_id`` that makes the
    buckets: the same customers in every stage and every run
    (``train.customer_share``, to train on fewer rows).
    """
    features_dir = Path(features_dir)
    path = features_dir / "training.parquet"
    for needed in (path, features_dir / "registry.json", features_dir / "meta.json"):
        if not needed.exists():
            raise DataContractError("features", None, "file not found; run `omvald features` first", path=str(needed))
    registry = read_json(features_dir / "registry.json")
    meta = read_json(features_dir / "meta.json")
    features = [f["name"] for f in registry if f.get("available", True)]
    categorical = [f["name"] for f in registry if f.get("available", True) and f.get("kind") == "categorical"]
    file = FeatureFile(path)
    missing = [c for c in [*features, "customer_id", "as_of", "churn"] if c not in file.columns]
    if missing:
        raise DataContractError(
            "training",
            missing[0],
            f"column(s) {', '.join(missing)} listed in registry.json / the contract are missing",
            path=str(path),
        )
    if not features:
        raise DataContractError("registry", None, "no available features", path=str(features_dir / "registry.json"))
    keys = ["customer_id", "as_of", *[c for c in LABELS if c in file.columns]]
    frame = read_keys(path, keys, _share_filter(path, customer_share))
    return FeatureSet(frame, features, categorical, meta, registry, path, file)


def _share_filter(path: Path, share: float):
    """The customers of ``train.customer_share``: hash slots below ``share`` of the slots (``None``: everyone)."""
    if not 0 < share <= 1:
        raise ConfigError(f"train.customer_share is {share}; it must be in (0, 1] (1 = every customer).")
    if share == 1:
        return None

    def keep(ids: pd.Series) -> np.ndarray:
        distinct = ids.drop_duplicates()
        kept = distinct[(hash_slot(distinct) < round(share * N_SLOTS)).to_numpy()]
        if kept.empty:
            raise ConfigError(
                f"train.customer_share = {share} keeps none of the {len(distinct):,} customers in {path}; raise it."
            )
        log.info("features: reading %d of %d customers (train.customer_share = %s)", len(kept), len(distinct), share)
        return ids.isin(set(kept)).to_numpy()

    return keep


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


def load_model_file(path: Path, estimator: bool = True) -> Any:
    """What ``omvald train`` saved at ``path`` (a joblib file), or :class:`ModelError` naming the file.

    A damaged, truncated or foreign file is a message, not a traceback.
    ``estimator``: the object must be a fitted model (``predict_proba``,
    ``feature_names_``).
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model not found; run `omvald train` first.")
    try:
        obj = joblib.load(path)
    except Exception as exc:  # pickle raises many types for a damaged file: EOFError, UnpicklingError, KeyError...
        raise ModelError(
            f"{path}: cannot be read as a model ({type(exc).__name__}: {str(exc)[:200]}); the file is damaged or "
            "was not written by `omvald train`. Run `omvald train` again (or `dvc repro train`)."
        ) from None
    if estimator and not (hasattr(obj, "predict_proba") and hasattr(obj, "feature_names_")):
        raise ModelError(
            f"{path}: holds a {type(obj).__name__}, not a model written by `omvald train`; run `omvald train` again."
        )
    return obj


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
    baselines = load_model_file(models_dir / "baselines.joblib", estimator=False)
    kept = kept_models(models_dir)
    out = {}
    for t in targets:
        models = {kept[t]: load_model_file(holdout[t]), **baselines[t]}
        out[t] = {name: models[name] for name in ordered(models, first=kept[t])}
    return out

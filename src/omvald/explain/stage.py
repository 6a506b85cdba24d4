"""Explain stage: SHAP plots and a global importance table for every trained model.

``run_explain`` reads the feature stage's ``training.parquet`` and the
train stage's ``models/``, takes a seeded sample of the **test window**
(rows the models never saw; dates from ``models/split.json``), computes
exact contributions of the evaluated (holdout) fits, the ones the metrics
describe, and writes, per trained model (``churn`` always,
``phase_out`` unless the train stage skipped it, see
:func:`omvald.model.artifacts.trained_targets`):

- ``shap_<model>_bar.png``        global importance (mean |SHAP|),
- ``shap_<model>_beeswarm.png``   every sampled customer, coloured by value,
- ``shap_<model>_dependence_<feature>.png`` for the top ``explain.dependence_plots`` features
  (features with no value in the sample, e.g. a family absent from a snapshot, are passed over),
- ``shap_<model>_segments.png``   mean |SHAP| for active vs passive customers,

and one ``shap_importance.csv`` (``model, feature, description,
mean_abs_shap, rank`` plus ``mean_abs_shap_<segment>, rank_<segment>``)
with rows for the trained models only, and the same per driver in
``shap_driver_importance.csv`` (``model, driver, features, ...``): the
registry's ``driver`` groups the features that carry one business reason
and their exact SHAP values are summed (:func:`driver_importance`), so a
reason spread over correlated features is ranked as one. A skipped model has no files (the
reason is logged; the report reads it from ``metrics/``).
The phase-out model is explained on sampled rows of customers who did not
churn, the population it was trained on. Each file is written atomically;
all of them are logged to the pipeline's MLflow run when ``run.json`` names one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from omvald.config import Config
from omvald.errors import ModelError
from omvald.explain import plots
from omvald.explain.drivers import contributions, driver_importance, shap_importance
from omvald.features.registry import feature_drivers
from omvald.io import atomic_path, read_json
from omvald.model.artifacts import (
    HOLDOUT,
    load_features,
    load_model_file,
    model_path,
    skipped_targets,
    trained_targets,
)
from omvald.model.matrix import model_matrix
from omvald.model.split import Split

log = logging.getLogger(__name__)

TITLES = {"churn": "Churn within the horizon", "phase_out": "Phase-out if the customer stays"}


def run_explain(
    cfg: Config, features_dir: Path, models_dir: Path, reports_dir: Path, tracking_uri: str | None = None
) -> dict[str, Any]:
    """Explain stage; returns ``{"files", "n", "top", "top_drivers", "skipped"}``.

    ``n`` is ``{model: rows explained}``, ``top`` ``{model: [features]}`` (the
    dependence-plot features), ``top_drivers`` ``{model: [drivers]}`` (the
    5 highest ranked) and ``skipped`` ``{model: reason}``. ``n``, ``top`` and
    ``top_drivers`` hold the trained models only; ``skipped`` the ones the
    train stage left out, with its reason.

    ``tracking_uri`` overrides the one recorded in ``run.json`` (the CLI
    passes ``MLFLOW_TRACKING_URI``).
    """
    features_dir, models_dir, reports_dir = Path(features_dir), Path(models_dir), Path(reports_dir)
    fs = load_features(features_dir, cfg.train.customer_share)
    test = _test_window(fs.frame, models_dir)
    # the sample's keys first, then only its rows of the feature file
    keys = test.sample(n=min(cfg.explain.sample_size, len(test)), random_state=cfg.seed).sort_index()
    sample = fs.frame_of(keys, fs.file.columns)
    descriptions = {f["name"]: f.get("description") or f["name"] for f in fs.registry}
    drivers = feature_drivers(fs.registry)
    files: list[Path] = []
    tables, driver_tables, n_rows, top, top_drivers = [], [], {}, {}, {}
    skipped = skipped_targets(models_dir)
    for target, reason in skipped.items():
        log.info("explain: %s model skipped in training, nothing to explain: %s", target, reason)
    for target in trained_targets(models_dir):
        # the evaluated fit: the test window is unseen by it (the scoring model was refit on it)
        model = load_model_file(model_path(models_dir, target, HOLDOUT))
        rows = sample if target == "churn" else sample.loc[sample["churn"] == 0]
        X = model_matrix(rows, model, target)
        contrib = contributions(model, X)
        segment = rows.get("segment")
        importance = shap_importance(contrib, segment)
        importance.insert(0, "model", target)
        importance.insert(2, "description", importance["feature"].map(descriptions).fillna(importance["feature"]))
        tables.append(importance)
        by_driver = driver_importance(contrib, drivers, segment)
        by_driver.insert(0, "model", target)
        driver_tables.append(by_driver)
        top_drivers[target] = by_driver["driver"].head(5).tolist()
        n_rows[target] = len(rows)
        top[target] = _plottable(importance["feature"], X).head(cfg.explain.dependence_plots).tolist()
        log.info("explain: %s on %d sampled test rows", target, len(rows))
        figures = {
            f"shap_{target}_bar.png": plots.bar_plot(contrib, descriptions, TITLES[target]),
            f"shap_{target}_beeswarm.png": plots.beeswarm_plot(contrib, X, descriptions, TITLES[target]),
        }
        for feature in top[target]:
            figures[f"shap_{target}_dependence_{feature}.png"] = plots.dependence_plot(
                contrib, X, feature, descriptions, TITLES[target]
            )
        if segment is not None:
            figures[f"shap_{target}_segments.png"] = plots.segment_plot(
                importance, descriptions, TITLES[target], len(rows)
            )
        for name, fig in figures.items():
            with atomic_path(reports_dir / name) as tmp:
                plots.save(fig, tmp)
            files.append(reports_dir / name)
    for name, parts in (("shap_importance.csv", tables), ("shap_driver_importance.csv", driver_tables)):
        with atomic_path(reports_dir / name) as tmp:
            pd.concat(parts, ignore_index=True).to_csv(tmp, index=False)
        files.append(reports_dir / name)
    _log_artifacts(models_dir / "run.json", files, tracking_uri)
    return {
        "files": [str(f) for f in files],
        "n": n_rows,
        "top": top,
        "top_drivers": top_drivers,
        "skipped": skipped,
    }


def _plottable(features: pd.Series, X: pd.DataFrame) -> pd.Series:
    """``features`` (ranked) that have at least one value in ``X``: a dependence plot of an all-missing one is empty."""
    return features[[bool(X[f].notna().any()) if f in X else False for f in features]]


def _test_window(frame: pd.DataFrame, models_dir: Path) -> pd.DataFrame:
    path = models_dir / "split.json"
    if not path.exists():
        raise ModelError(f"{path}: not found; run `omvald train` first (explain uses its test window).")
    split = Split.from_json(read_json(path))
    labelled = frame.loc[frame["churn"].notna()]
    test = labelled.loc[split.mask(labelled, "test")]
    if test.empty:
        raise ModelError(f"{path}: the test window has no rows in training.parquet; rerun `omvald train`.")
    return test


def _log_artifacts(run_json: Path, files: list[Path], tracking_uri: str | None) -> None:
    info = read_json(run_json) if run_json.exists() else {}
    if not info.get("parent_run_id"):
        log.info("explain: no MLflow run in %s; artifacts not logged", run_json)
        return
    from omvald.model.tracking import log_to_run

    log_to_run(info, artifacts=files, artifact_path="explain", tracking_uri=tracking_uri)

"""What the train stage logs to MLflow (through :mod:`omvald.model.tracking`, the only module that calls it).

Per trained target, the scoring fit is the logged and registered model (what
``omvald score`` uses) and the holdout fit rides along as an extra artifact,
so ``omvald promote`` can compare evaluated fits like with like; so does
``inputs.json`` (what the exports it scores must hold), which ``omvald score
--model-uri`` checks, and its gist is a tag (``inputs.*``) for the MLflow UI. Params say
how each fit was made (``fit.holdout.*``, ``fit.scoring.*``: rows, customers,
as-of dates, trees, calibration) and which model was kept (tag and param
``kept_model``, the blend weight, the search's best settings); metrics
``valid.<candidate>.roc_auc`` say why. Tags say how the split was made.
Each search trial is a child run of its target's run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from omvald.config import Config
from omvald.model.artifacts import HOLDOUT, SCORING, TARGETS_FILE, FeatureSet, model_path, target_rows
from omvald.model.inputs import INPUTS_FILE, ModelInputs, read_model_inputs
from omvald.model.reference import REFERENCE_FILE
from omvald.model.split import Split


def track_training(
    cfg: Config,
    fs: FeatureSet,
    frame: pd.DataFrame,
    split: Split,
    models: dict[str, dict[str, Any]],
    fits: dict[str, dict[str, Any]],
    skipped: dict[str, str],
    models_dir: Path,
    ctx: Any,
    fitted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Log the run: the scoring fit of each target is the registered model, its holdout fit an extra artifact.

    ``fitted``: the train stage's :class:`omvald.model.candidates.TargetFit` per target (kept model, search trials).
    """
    from omvald.model import tracking

    families = fs.meta.get(
        "families_used", sorted({f.get("family", "") for f in fs.registry if f.get("available", True)})
    )
    missing = fs.meta.get("families_missing", {})
    tags = {
        "split_strategy": split.strategy,
        "split_step": split.step,
        "split_out_of_time": str(split.out_of_time).lower(),
        "feature_families": ",".join(families),
        "feature_families_missing": ",".join(sorted(missing)),
        "targets_trained": ",".join(models),
        **input_tags(read_model_inputs(models_dir)),
        **{f"skipped.{t}": reason[:5000] for t, reason in skipped.items()},
    }
    to_log = []
    for target, pair in models.items():
        model, holdout = pair[SCORING], pair[HOLDOUT]
        valid = frame.loc[target_rows(frame, target) & split.mask(frame, "valid")]
        fit_params = {
            f"fit.{fit}.{key}": value
            for fit, record in fits[target].items()
            for key, value in {**record, "as_of_dates": len(record["as_of_dates"])}.items()
            if key != "file"
        }
        fit = (fitted or {}).get(target)
        kept_params, kept_metrics, trials = ({}, {}, ()) if fit is None else _kept_and_trials(fit)
        to_log.append(
            tracking.ModelToLog(
                target=target,
                model=model,
                path=model_path(models_dir, target),
                holdout_path=model_path(models_dir, target, HOLDOUT),
                inputs_path=models_dir / INPUTS_FILE,
                reference_path=models_dir / REFERENCE_FILE,
                example=fs.frame_of(valid.head(200) if len(valid) else frame.head(200)),
                params={
                    "model.n_trees": model.n_trees_,
                    "model.calibration_method": model.calibration_method_,
                    "model.n_features": len(fs.features),
                    **{f"model.calibration_logloss.{k}": round(v, 6) for k, v in holdout.calibration_losses_.items()},
                    **fit_params,
                    **kept_params,
                },
                tags={"calibration": model.calibration_method_, "kept_model": kept_params.get("kept_model", "lgbm")},
                metrics=kept_metrics,
                trials=trials,
            )
        )
    inputs = [
        fs.path.parent / "meta.json",
        fs.path.parent / "registry.json",
        models_dir / "split.json",
        models_dir / TARGETS_FILE,
        models_dir / INPUTS_FILE,
    ]
    # The dataset's schema is read from its first rows; its profile counts the whole table (never held).
    head = fs.frame_of(fs.frame.head(1000), fs.file.columns)
    return tracking.log_training(
        ctx,
        params=cfg.flat(),
        training_path=fs.path,
        training=head,
        training_shape=(len(fs.frame), len(fs.file.columns)),
        input_files=inputs,
        tags=tags,
        models=to_log,
    )


def input_tags(inputs: ModelInputs | None) -> dict[str, str]:
    """``inputs.contractual``, ``inputs.consent``, ``inputs.columns``: the model's expected export, as run tags."""
    if inputs is None:
        return {}
    return {
        "inputs.contractual": str(inputs.contractual).lower(),
        "inputs.consent": str(inputs.consent).lower(),
        "inputs.columns": ",".join(inputs.columns())[:5000],
    }


def _kept_and_trials(fit: Any) -> tuple[dict[str, Any], dict[str, Any], tuple[dict[str, Any], ...]]:
    """Params and metrics of the kept-model choice and the search, and one record per search trial."""
    choice, search = fit.choice.record(), fit.search.record()
    params = {
        "kept_model": choice["kept"],
        "kept.reason": choice["reason"],
        "kept.blend_weight": choice["blend_weight"],
        "search.trials": search["trials"],
        "search.stopped_by": search["stopped_by"],
        "search.best_trial": search["best_trial"],
        **{f"search.best.{k}": v for k, v in (search["best_params"] or {}).items()},
    }
    metrics = {"valid": {name: {"roc_auc": auc} for name, auc in choice["valid_auc"].items()}}
    trials = tuple(
        {
            "number": t.number,
            "params": t.params,
            "metrics": {"valid_roc_auc": t.valid_auc, "valid_log_loss": t.valid_log_loss, "n_trees": t.n_trees,
                        "seconds": t.seconds},
            "tags": {"fixed_settings": str(t.fixed).lower(), "best": str(t.number == search["best_trial"]).lower()},
        }
        for t in fit.search.trials
    )  # fmt: skip
    return params, metrics, trials

"""Every model fitted for one target: the searched LightGBM model, the baselines, the blend, and the one kept.

The train stage calls :func:`fit_target` per target on the split's training
and validation rows (never the test window):

1. LightGBM, with the budgeted search of ``train.search``
   (:mod:`omvald.model.search`; 0 trials = the fixed ``train.<target>``
   settings);
2. the baselines that apply (:func:`omvald.model.classical.baseline_models`:
   the logistic regression, the hand-written rule and, for a business without
   contracts, the BG/NBD probability of no purchase and the RFM logistic
   regression), and the reason for each one that does not;
3. the kept model among LightGBM, the logistic regression and their blend,
   judged on validation (:mod:`omvald.model.kept`); the blend is fitted
   whatever is kept, so its test metrics are reported too.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from omvald.config import Config, LGBMParams
from omvald.errors import ConfigError, ModelError
from omvald.model.artifacts import FeatureSet, target_rows
from omvald.model.blend import BlendModel
from omvald.model.classical import baseline_models
from omvald.model.feature_rows import per_batch
from omvald.model.kept import KEEP_CHOICES, KeptChoice, choose_kept
from omvald.model.sample import baseline_rows
from omvald.model.search import SearchResult, check_budget, search_lgbm
from omvald.model.split import Split

log = logging.getLogger(__name__)


@dataclass
class TargetFit:
    """One target's fitted models (``lgbm``, ``logistic``, ``blend``, ``heuristic`` and any classical baselines).

    ``choice`` says which of lgbm / logistic / blend is kept (the evaluated
    "holdout" fit, refit for scoring); ``unavailable`` gives why a baseline
    is absent; ``search`` holds the LightGBM search's trials.
    """

    models: dict[str, Any]
    choice: KeptChoice
    search: SearchResult
    unavailable: dict[str, str]

    @property
    def kept(self) -> str:
        return self.choice.kept

    @property
    def holdout(self) -> Any:
        return self.models[self.choice.kept]


def lgbm_settings(cfg: Config, target: str, categorical: list[str]) -> dict[str, Any]:
    """The LightGBM estimator's keyword arguments from ``train.<target>``, ``train.calibration`` and ``seed``."""
    hp: LGBMParams = getattr(cfg.train, target)
    return {
        **dataclasses.asdict(hp),
        "calibration": cfg.train.calibration,
        "categorical_features": categorical,
        "seed": cfg.seed,
        "num_threads": cfg.train.threads,
    }


def check_settings(cfg: Config) -> None:
    """:class:`ConfigError` for ``train.keep`` or ``train.search`` values that cannot work, before any fit."""
    if cfg.train.keep not in KEEP_CHOICES:
        raise ConfigError(f"train.keep is {cfg.train.keep!r}; use one of {', '.join(KEEP_CHOICES)}.")
    if cfg.train.threads < 1:
        raise ConfigError(f"train.threads is {cfg.train.threads}; it must be at least 1 (LightGBM threads per fit).")
    check_budget(cfg.train.search)


def fit_target(cfg: Config, fs: FeatureSet, frame: pd.DataFrame, split: Split, target: str) -> TargetFit:
    """Fit every model of ``target`` on the split's train rows, judged and calibrated on its validation rows."""
    rows = target_rows(frame, target)
    train, valid = frame.loc[rows & split.mask(frame, "train")], frame.loc[rows & split.mask(frame, "valid")]
    if train[target].nunique() < 2:
        raise ModelError(
            f"{target}: the training window has a single class ({len(train)} rows); the model cannot learn."
        )
    y, y_valid = train[target].astype(int), valid[target].astype(int).to_numpy()
    groups = valid["customer_id"].astype(str).to_numpy()
    # LightGBM (and its search) reads every row of the windows batch by batch from the feature file; the
    # baselines hold their rows in memory, so they learn from a stable sample of customers (omvald.model.sample)
    X, X_valid = fs.rows(train), fs.rows(valid)
    log.info("train: %s on %d rows (validation %d)", target, len(train), len(valid))
    train_ids = train["customer_id"].astype(str).to_numpy()  # the search's row sample takes whole customers
    settings = lgbm_settings(cfg, target, fs.categorical)
    search = search_lgbm(settings, cfg.train.search, X, y, X_valid, y_valid, groups, train_groups=train_ids)
    sample = baseline_rows(frame, cfg.train.baseline_sample_customers)
    in_train, in_valid = sample[train.index].to_numpy(), sample[valid.index].to_numpy()
    baselines, unavailable = baseline_models(target, fs.features, fs.categorical, fs.meta.get("families_missing", {}))
    if len(baselines):
        X_sample, X_valid_sample = fs.frame_of(train[in_train]), fs.frame_of(valid[in_valid])
    for name, model in baselines.items():
        log.info("train: %s / %s on %d rows (validation %d)", target, name, int(in_train.sum()), int(in_valid.sum()))
        model.fit(X_sample, y[in_train], X_valid_sample, y_valid[in_valid], valid_groups=groups[in_valid])
    lgbm, logistic = search.model, baselines["logistic"]
    raw_lgbm = lgbm.predict_raw(X_valid) if len(X_valid) else np.zeros(0)
    raw_logistic = per_batch(X_valid, logistic.predict_raw) if len(X_valid) else np.zeros(0)
    choice = choose_kept(y_valid, raw_lgbm, raw_logistic, groups, cfg.train.keep)
    blend = BlendModel.of_fitted(lgbm, logistic, choice.weight, cfg.train.calibration, X_valid, y_valid, groups)
    log.info("train: %s kept %s: %s", target, choice.kept, choice.reason)
    models = {"lgbm": lgbm, "logistic": logistic, "blend": blend, **baselines}
    return TargetFit(models=models, choice=choice, search=search, unavailable=unavailable)

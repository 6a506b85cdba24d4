"""A small, budgeted search of LightGBM settings on the validation window (Optuna, seeded TPE, one thread).

Why: the fixed settings in ``params.yaml`` suit the default business; a
shop's purchase export or a few thousand customers in one snapshot want
other trees (shallower, more regularised, a different learning rate), and
with them LightGBM can lose to the logistic regression. ``train.search``
gives the budget: ``n_trials`` per target (0 = the fixed settings, no
search) and ``timeout_seconds``, a safety cap.

- The first trial is always the fixed settings of ``train.<target>``, so
  the search never keeps settings that do worse on validation than those.
- The objective is the validation window's ROC AUC of the raw (uncalibrated)
  scores: calibration is fitted afterwards on the same window and is
  monotone, so what the trees must deliver is the ranking; AUC is also what
  the kept-model choice (:mod:`omvald.model.kept`) and the report judge by.
  Each trial early-stops on validation log loss, as a plain fit does.
- Only the training and validation rows reach it: the test window is never
  seen (with the ``time_test`` and ``customer`` split steps the validation
  window is customers held out of training).
- A trial fits on at most ``max_rows`` training rows (whole customers,
  chosen by the stable hash of ``customer_id``), so a trial costs about
  the same on 20 thousand customers as on a million, and is judged on at
  most ``max_rows`` validation rows, sampled the same way (a trial read
  every validation row of 1M customers from the feature file: minutes per
  trial). The best settings are then fitted on every training row,
  early-stopped on the whole validation window.
- Deterministic: a seeded TPE sampler, trials one after another, and
  LightGBM's deterministic single-thread fit. A search cut short by
  ``timeout_seconds`` depends on the machine's speed; the result records
  how it stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from omvald.buckets import customer_hash
from omvald.config import SearchConfig
from omvald.errors import ConfigError
from omvald.model.estimators import LGBMChurnModel

log = logging.getLogger(__name__)

# name: (low, high, log scale, integer). Small on purpose: the settings that move a churn model's ranking.
SPACE: dict[str, tuple[float, float, bool, bool]] = {
    "num_leaves": (4, 63, True, True),
    "min_child_samples": (10, 500, True, True),
    "learning_rate": (0.02, 0.2, True, False),
    "feature_fraction": (0.4, 1.0, False, False),
    "lambda_l2": (0.01, 30.0, True, False),
}


@dataclass(frozen=True)
class Trial:
    """One fit of the search: its settings and how it did on the validation window."""

    number: int
    params: dict[str, Any]
    valid_auc: float
    valid_log_loss: float  # raw (uncalibrated) log loss at the early-stopped tree count
    n_trees: int
    seconds: float
    fixed: bool  # the fixed settings of params.yaml


@dataclass
class SearchResult:
    """The best trial's fitted (calibrated) model and every trial, in order.

    ``stopped_by``: ``"n_trials"``, ``"timeout"`` or ``"no search"``
    (``n_trials`` 0, or a validation window without both classes).
    """

    model: LGBMChurnModel
    trials: list[Trial] = field(default_factory=list)
    best: int | None = None
    stopped_by: str = "no search"
    search_rows: int | None = None  # training rows each trial fitted on (None: no search)

    def record(self) -> dict[str, Any]:
        """Plain JSON for ``targets.json``: trials done, how it stopped, the best trial and its settings."""
        best = self.trials[self.best] if self.best is not None else None
        return {
            "trials": len(self.trials),
            "stopped_by": self.stopped_by,
            "best_trial": self.best,
            "best_is_fixed": None if best is None else best.fixed,
            "best_valid_auc": None if best is None else round(best.valid_auc, 6),
            "best_params": None if best is None else best.params,
            "search_rows": self.search_rows,
        }


def search_lgbm(
    settings: dict[str, Any],
    budget: SearchConfig,
    X_train: pd.DataFrame,
    y_train: Any,
    X_valid: pd.DataFrame,
    y_valid: Any,
    valid_groups: Sequence[Any] | None = None,
    train_groups: Sequence[Any] | None = None,
) -> SearchResult:
    """Fit ``LGBMChurnModel(**settings)`` or, with a budget, the best of a search around it.

    ``settings`` are the estimator's keyword arguments (``train.<target>``
    plus calibration, categoricals and seed). Trials replace the
    :data:`SPACE` keys and fit up to ``budget.max_trees`` trees; trial 0 is
    ``settings`` unchanged. ``train_groups`` (customer ids of the training
    rows) choose the ``budget.max_rows`` sample; without them the first rows.
    Returns the model of the trial with the highest validation AUC (the
    earliest on a tie), fitted on every training row.
    """
    check_budget(budget)
    y_valid = np.asarray(y_valid, dtype=int)
    if budget.n_trials <= 0 or len(np.unique(y_valid)) < 2:
        if budget.n_trials > 0:
            log.warning("search: the validation window has a single class; fitting the fixed settings")
        return SearchResult(LGBMChurnModel(**settings).fit(X_train, y_train, X_valid, y_valid, valid_groups))

    import optuna

    sample = search_sample(train_groups, len(X_train), budget.max_rows)
    X_search, y_search = (X_train, y_train) if sample is None else (X_train.loc[sample], np.asarray(y_train)[sample])
    X_judge, y_judge, judge_groups = _validation_sample(X_valid, y_valid, valid_groups, budget.max_rows)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=int(settings.get("seed", 0)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    result = SearchResult(model=None, search_rows=len(X_search))  # type: ignore[arg-type]  # set by the first trial
    best_auc = -np.inf

    def objective(trial: Any) -> float:
        nonlocal best_auc
        fixed = trial.number == 0
        # trial 0 takes the fixed settings as they are (they may lie outside SPACE), unseen by the sampler
        chosen = {name: settings[name] if fixed else _suggest(trial, name, *b) for name, b in SPACE.items()}
        trees = settings["n_estimators"] if fixed else budget.max_trees
        start = time.perf_counter()
        model = LGBMChurnModel(**{**settings, **chosen, "n_estimators": trees})
        model.fit(X_search, y_search, X_judge, y_judge, judge_groups)
        auc = float(roc_auc_score(y_judge, model.predict_raw(X_judge)))
        scores = model.booster_.best_score.get("valid_0", {})
        done = Trial(
            number=trial.number,
            params={**chosen, "n_estimators": trees},
            valid_auc=auc,
            valid_log_loss=float(scores.get("binary_logloss", np.nan)),
            n_trees=model.n_trees_,
            seconds=round(time.perf_counter() - start, 3),
            fixed=fixed,
        )
        result.trials.append(done)
        if auc > best_auc:
            best_auc, result.model, result.best = auc, model, trial.number
        log.info("search: trial %d: validation AUC %.4f, %d trees (%s)", trial.number, auc, model.n_trees_,
                 ", ".join(f"{k}={v:.4g}" for k, v in chosen.items()))  # fmt: skip
        return auc

    study.optimize(objective, n_trials=budget.n_trials, timeout=budget.timeout_seconds, gc_after_trial=False)
    result.stopped_by = "n_trials" if len(result.trials) >= budget.n_trials else "timeout"
    if result.stopped_by == "timeout":
        log.warning("search: stopped by train.search.timeout_seconds after %d of %d trials (not reproducible on "
                    "another machine; raise the timeout or lower n_trials)", len(result.trials), budget.n_trials)  # fmt: skip
    if sample is not None:  # the trials saw a sample: the best settings learn from every training row
        best = result.trials[result.best]
        result.model = LGBMChurnModel(**{**settings, **best.params})
        result.model.fit(X_train, y_train, X_valid, y_valid, valid_groups)
        log.info("search: best trial %d refitted on all %d training rows", best.number, len(X_train))
    return result


def search_sample(groups: Sequence[Any] | None, n_rows: int, max_rows: int) -> np.ndarray | None:
    """Boolean mask of about ``max_rows`` rows, whole customers with the lowest stable hash; None = every row.

    A customer's rows are all in or all out (a customer on the boundary
    makes the sample a few rows larger). Without ``groups``, the first
    ``max_rows`` rows.
    """
    if max_rows <= 0 or n_rows <= max_rows:
        return None
    if groups is None:
        return np.arange(n_rows) < max_rows
    key = customer_hash(pd.Series(np.asarray(groups)).astype(str)).to_numpy()
    return key <= np.sort(key)[max_rows - 1]


def _validation_sample(X_valid: Any, y_valid: np.ndarray, groups: Sequence[Any] | None, max_rows: int) -> tuple:
    """The validation rows a trial is judged on: about ``max_rows`` whole customers, or all if fewer or one class."""
    sample = search_sample(groups, len(y_valid), max_rows)
    if sample is None or len(np.unique(y_valid[sample])) < 2:
        return X_valid, y_valid, groups
    return X_valid.loc[sample], y_valid[sample], None if groups is None else np.asarray(groups)[sample]


def check_budget(budget: SearchConfig) -> None:
    """:class:`ConfigError` for a budget that cannot run (negative trials, no time, no trees)."""
    if budget.n_trials < 0 or budget.timeout_seconds <= 0 or budget.max_trees < 1 or budget.max_rows < 0:
        raise ConfigError(
            "train.search needs n_trials >= 0 (0 = no search), timeout_seconds > 0, max_trees >= 1 and max_rows "
            f">= 0 (0 = every row); got n_trials={budget.n_trials}, timeout_seconds={budget.timeout_seconds}, "
            f"max_trees={budget.max_trees}, max_rows={budget.max_rows}."
        )


def _suggest(trial: Any, name: str, low: float, high: float, log_scale: bool, integer: bool) -> Any:
    if integer:
        return trial.suggest_int(name, int(low), int(high), log=log_scale)
    return trial.suggest_float(name, low, high, log=log_scale)

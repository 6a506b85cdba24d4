"""Promote: move the registry alias ``champion`` to the ``candidate`` version when it is better.

"Better" is decided by re-scoring both registered versions on the current
test window (rows from ``data/features`` selected by ``models/split.json``),
never by comparing metrics logged at different times, which may have been
computed on different test windows. The first promotion (no champion yet)
always succeeds; ``--force`` skips the comparison.

Like with like: each version's **holdout fit** is scored (the fit that was
evaluated, registered beside the scoring model; :mod:`omvald.model.refit`).
The candidate's scoring model was refit on the current test window, so
scoring it there would favour it unfairly. The holdout fits saw neither the
current test dates (they are the latest) nor, in a customer split, the
current test customers (held out by a stable hash, the same in every run).
A version registered before holdout fits existed is scored with its one
model, which was its evaluated fit; the decision says which fit was scored.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from omvald.errors import ModelError
from omvald.io import read_json
from omvald.model import metrics as m
from omvald.model.artifacts import LABELS, labelled_rows, load_features, skipped_targets, target_rows
from omvald.model.split import Split

log = logging.getLogger(__name__)

HIGHER_IS_BETTER = {
    "roc_auc": True,
    "pr_auc": True,
    "lift": True,
    "capture": True,
    "log_loss": False,
    "brier": False,
    "ece": False,
}


@dataclass(frozen=True)
class Decision:
    """Outcome of one promotion attempt; ``reason`` is what the CLI prints."""

    model: str
    promoted: bool
    reason: str
    candidate_version: str | None = None
    champion_version: str | None = None
    candidate_score: float | None = None
    champion_score: float | None = None


def decide(
    model: str,
    metric: str,
    candidate_version: str | None,
    champion_version: str | None,
    candidate_score: float | None,
    champion_score: float | None,
    force: bool = False,
) -> Decision:
    """Pure promotion rule: strictly better on ``metric`` (same test rows), first promotion, or ``force``."""
    args = dict(
        model=model,
        candidate_version=candidate_version,
        champion_version=champion_version,
        candidate_score=candidate_score,
        champion_score=champion_score,
    )
    if candidate_version is None:
        return Decision(
            promoted=False,
            reason=f"{model}: no '{'candidate'}' version registered; run `omvald train` with mlflow.register_models: true",
            **args,
        )
    if champion_version == candidate_version:
        return Decision(promoted=False, reason=f"{model}: version {candidate_version} is already champion", **args)
    if force:
        return Decision(
            promoted=True,
            reason=f"{model}: version {candidate_version} promoted with --force (champion was {champion_version or 'none'})",
            **args,
        )
    if champion_version is None:
        return Decision(
            promoted=True, reason=f"{model}: no champion yet; version {candidate_version} becomes champion", **args
        )
    if candidate_score is None or champion_score is None:
        return Decision(
            promoted=False,
            reason=f"{model}: could not score both versions on {metric}; use --force to promote anyway",
            **args,
        )
    better = candidate_score > champion_score if HIGHER_IS_BETTER[metric] else candidate_score < champion_score
    cmp = f"{metric} {candidate_score:.4f} (v{candidate_version}) vs {champion_score:.4f} (v{champion_version}) on the current test window"
    if better:
        return Decision(promoted=True, reason=f"{model}: candidate beats champion, {cmp}", **args)
    return Decision(
        promoted=False,
        reason=f"{model}: candidate does not beat champion, {cmp}; champion kept (use --force to override)",
        **args,
    )


def score(metric: str, y: np.ndarray, p: np.ndarray) -> float | None:
    value = m.summary(y, p).get(metric)
    return None if value is None else float(value)


def run_promote(
    features_dir: Path,
    models_dir: Path,
    tracking_uri: str,
    metric: str = "roc_auc",
    force: bool = False,
    targets: tuple[str, ...] = ("churn", "phase_out"),
    customer_share: float = 1.0,
) -> list[Decision]:
    """Compare ``candidate`` with ``champion`` for each registered model and move ``champion`` when justified.

    ``customer_share``: as in training (``train.customer_share``), the test rows of that share of customers.
    """
    from omvald.model import tracking

    if metric not in HIGHER_IS_BETTER:
        raise ModelError(f"unknown metric {metric!r}; choose one of {', '.join(HIGHER_IS_BETTER)}")
    test: pd.DataFrame | None = None
    features: list[str] = []
    if not force:
        fs = load_features(Path(features_dir), customer_share)
        split = Split.from_json(read_json(Path(models_dir) / "split.json"))
        frame = labelled_rows(fs.frame)
        # Both versions see every non-label column: each picks its own features, so a
        # champion trained on another feature set still scores (or fails clearly).
        test = fs.frame_of(frame.loc[split.mask(frame, "test")], fs.file.columns)  # the test window only
        features = [c for c in test.columns if c not in LABELS]
    decisions = []
    skipped = skipped_targets(Path(models_dir))
    for target in targets:
        if target in skipped:  # its 'candidate' alias is from an earlier run on other data
            decisions.append(Decision(target, False, f"{target}: not trained in this run ({skipped[target]})"))
            continue
        name = tracking.REGISTERED_NAMES[target]
        cand = tracking.alias_version(tracking_uri, name, tracking.CANDIDATE)
        champ = tracking.alias_version(tracking_uri, name, tracking.CHAMPION)
        cand_score = champ_score = None
        scored = {}
        if test is not None and cand and champ and cand != champ:
            rows = test.loc[target_rows(test, target)]
            y = rows[target].astype(int).to_numpy()
            p, scored[cand] = tracking.predict_registered(tracking_uri, name, tracking.CANDIDATE, rows[features], True)
            cand_score = score(metric, y, p)
            try:
                p, scored[champ] = tracking.predict_registered(
                    tracking_uri, name, tracking.CHAMPION, rows[features], True
                )
                champ_score = score(metric, y, p)
            except ModelError as exc:  # e.g. the champion needs a feature that no longer exists
                log.warning("%s", exc)
        decision = decide(target, metric, cand, champ, cand_score, champ_score, force)
        if scored:
            fits = ", ".join(f"v{version}: {fit} fit" for version, fit in scored.items())
            decision = dataclasses.replace(decision, reason=f"{decision.reason} [{fits}]")
        if decision.promoted:
            tracking.set_alias(tracking_uri, name, tracking.CHAMPION, str(cand))
        decisions.append(decision)
    return decisions

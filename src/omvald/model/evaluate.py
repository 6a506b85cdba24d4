"""Evaluate stage: score the test window with every model and write metrics, curve data and plots.

The models are the ones the train stage fitted (``models/``): the kept
model (``kept_model``: LightGBM, the logistic regression or their blend,
chosen on validation) and every other candidate and baseline, among them,
for a business without contracts, the BG/NBD probability of no purchase
(``bgnbd``, churn only) and the RFM logistic regression. A baseline that
does not apply is absent, with the reason in ``baselines_unavailable``.
``comparison`` says whether LightGBM and the kept model beat, tie with or
lose to each baseline on the test window: the ROC AUC difference on the
same rows with its 95% customer-bootstrap interval (:mod:`omvald.model.compare`);
the verdict against the best baseline is the sentence the report leads with.

Phase-out is judged twice: the model itself on test rows that did not churn
(``if_stays``), and the score users see, ``p_phase_out = (1 - p_churn) x
p_phase_out_if_stays``, on all test rows with churned rows counted as 0
(``combined``). In ``combined`` each phase-out model is paired with the churn
model of the same name, the kept phase-out model with the kept churn model
(as ``omvald score`` pairs them), and a name without a churn model (none
today) with the kept churn model. The phase-out curves in ``plots/`` are of
the combined score.

The models scored are the holdout fits (``<target>.holdout.joblib``), which
never saw the test window; the model ``omvald score`` uses was refit on
every labelled date afterwards (:mod:`omvald.model.refit`), so these
metrics describe how its settings do on dates (or customers) they did not
learn from. Each metrics file names the split (``split_strategy``,
``split_step``, ``out_of_time``) and which fit was scored (``fit``).

When the train stage skipped the phase-out model (``models/targets.json``),
``metrics/phase_out.json`` says so (``"skipped": true`` and the ``reason``)
and the phase-out curve CSVs are written header-only, so every output that
``dvc.yaml`` declares exists.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from omvald.config import Config
from omvald.errors import ConfigError, ModelError
from omvald.io import read_json, write_json, write_table
from omvald.model import metrics as m
from omvald.model.artifacts import (
    HOLDOUT,
    kept_models,
    labelled_rows,
    load_evaluation_models,
    load_features,
    skipped_targets,
    unavailable_baselines,
)
from omvald.model.compare import comparison
from omvald.model.feature_rows import FeatureRows
from omvald.model.split import Split

log = logging.getLogger(__name__)

CURVES = {
    "roc": (m.roc_points, "fpr", "tpr", "false positive rate", "true positive rate"),
    "pr": (m.pr_points, "recall", "precision", "recall", "precision"),
    "calibration": (
        m.calibration_points,
        "mean_predicted",
        "observed_rate",
        "mean predicted probability",
        "observed rate",
    ),
    "gains": (
        m.gains_points,
        "share_targeted",
        "share_captured",
        "share of customers targeted",
        "share of positives captured",
    ),
}


KEY_COLUMNS = ["customer_id", "as_of", "segment", "tenure_months", "churn", "phase_out"]


def score_test(
    frame: pd.DataFrame, features: list[str], models: dict[str, dict[str, Any]], kept: dict[str, str] | None = None
) -> pd.DataFrame:
    """Test rows with ``p_churn__<model>``, ``p_phase_out_if_stays__<model>`` and ``p_phase_out__<model>`` columns.

    ``models``: ``{target: {name: model}}``; ``kept``: ``{target: name}``
    (default: each target's first model). The phase-out columns are left
    out when ``models`` has no phase-out model; their pairing with a churn
    model is the module docstring's.
    """
    kept = kept or {t: next(iter(m)) for t, m in models.items()}
    out = frame[KEY_COLUMNS].copy()
    X = frame[features]
    churn = models["churn"]
    for name, model in churn.items():
        out[f"p_churn__{name}"] = model.predict_proba(X)[:, 1]
    for name, model in models.get("phase_out", {}).items():
        partner = name if name in churn and name != kept.get("phase_out") else kept["churn"]
        p_stay = model.predict_proba(X)[:, 1]
        out[f"p_phase_out_if_stays__{name}"] = p_stay
        out[f"p_phase_out__{name}"] = (1 - out[f"p_churn__{partner}"]) * p_stay
    return out


def score_test_rows(
    rows: FeatureRows, features: list[str], models: dict[str, dict[str, Any]], kept: dict[str, str] | None = None
) -> pd.DataFrame:
    """:func:`score_test` of the test window read batch by batch (only the scores and keys are kept)."""
    parts = [score_test(batch, features, models, kept) for batch in rows.batches()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def model_names(scored: pd.DataFrame, column: str) -> list[str]:
    """The models scored in ``scored`` for ``column`` (``p_churn`` or ``p_phase_out``), in column order."""
    prefix = f"{column}__"
    return [c[len(prefix) :] for c in scored.columns if c.startswith(prefix)]


def evaluate_scores(
    scored: pd.DataFrame,
    strategy: str,
    bins: int,
    top_fraction: float,
    phase_out_skipped: str | None = None,
    kept: dict[str, str] | None = None,
    draws: int = 200,
    seed: int = 0,
) -> tuple[dict, dict, dict[str, pd.DataFrame]]:
    """Metrics dicts for churn and phase-out plus long-format curve frames keyed ``<curve>_<target>``.

    Every model scored in ``scored`` (:func:`score_test`) is measured, in
    its column order. ``kept`` (``{target: name}``, default the first
    model) fills ``kept_model`` and ``comparison`` (:func:`omvald.model.compare.comparison`:
    beat / tie / lose against the baselines, ``draws`` bootstrap draws seeded
    by ``seed``). With
    ``phase_out_skipped`` (the reason), the phase-out dict is
    ``{"split_strategy", "skipped": True, "reason"}`` and its curve frames are empty.
    """
    names = {"churn": model_names(scored, "p_churn"), "phase_out": model_names(scored, "p_phase_out")}
    kept = {t: (kept or {}).get(t) or (n[0] if n else None) for t, n in names.items()}
    stays = scored["phase_out"].notna() & (scored["churn"] == 0)
    po_label = scored["phase_out"].fillna(0).where(scored["churn"] == 0, 0)

    def block(rows: pd.Series, label: pd.Series, column: str, target: str) -> dict[str, Any]:
        sub = scored.loc[rows]
        y = label.loc[rows]
        return {
            "n_rows": int(rows.sum()),
            "positive_rate": float(y.mean()) if rows.any() else 0.0,
            "models": {
                name: m.sliced_summary(
                    y, sub[f"{column}__{name}"], sub["segment"], sub["tenure_months"], bins, top_fraction
                )
                for name in names[target]
            },
        }

    everyone = pd.Series(True, index=scored.index)
    churn = {"split_strategy": strategy, **block(everyone, scored["churn"], "p_churn", "churn")}

    def compared(rows: pd.Series, label: pd.Series, column: str, target: str, models: dict) -> dict[str, Any]:
        auc = {name: res["overall"].get("roc_auc") for name, res in models.items()}
        scores = {name: scored.loc[rows, f"{column}__{name}"].to_numpy() for name in names[target]}
        customers = scored.loc[rows, "customer_id"].to_numpy()
        return comparison(label.loc[rows].to_numpy(), scores, customers, auc, kept[target], draws, seed)

    churn["kept_model"] = kept["churn"]
    churn["comparison"] = compared(everyone, scored["churn"], "p_churn", "churn", churn["models"])
    curves: dict[str, pd.DataFrame] = {}
    for curve, (fn, *_rest) in CURVES.items():
        parts = []
        for name in names["churn"]:
            args = (scored["churn"], scored[f"p_churn__{name}"]) + ((bins,) if curve == "calibration" else ())
            parts.append(fn(*args).assign(model=name))
        curves[f"{curve}_churn"] = pd.concat(parts, ignore_index=True)
    if phase_out_skipped is not None:
        phase_out = {"split_strategy": strategy, "skipped": True, "reason": phase_out_skipped}
        for curve in CURVES:
            curves[f"{curve}_phase_out"] = curves[f"{curve}_churn"].iloc[0:0]
        return churn, phase_out, curves
    combined = block(everyone, po_label, "p_phase_out", "phase_out")
    phase_out = {
        "split_strategy": strategy,
        "skipped": False,
        "if_stays": block(stays, scored["phase_out"], "p_phase_out_if_stays", "phase_out"),
        "combined": combined,
        "kept_model": kept["phase_out"],
        "comparison": compared(everyone, po_label, "p_phase_out", "phase_out", combined["models"]),
    }
    for curve, (fn, *_rest) in CURVES.items():
        parts = []
        for name in names["phase_out"]:
            args = (po_label, scored[f"p_phase_out__{name}"]) + ((bins,) if curve == "calibration" else ())
            parts.append(fn(*args).assign(model=name))
        curves[f"{curve}_phase_out"] = pd.concat(parts, ignore_index=True)
    return churn, phase_out, curves


def plot_curve(data: pd.DataFrame, curve: str, target: str, path: Path) -> None:
    """One PNG with a line per model (no pyplot: no global state, no backend choice)."""
    _, x, y, xlabel, ylabel = CURVES[curve]
    fig = Figure(figsize=(5, 4.2), dpi=110)
    ax = fig.add_subplot()
    for name, part in data.groupby("model", sort=False):
        ax.plot(part[x], part[y], marker="o" if curve == "calibration" else None, markersize=3, label=name)
    if curve in ("roc", "calibration", "gains"):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(
        xlabel=xlabel,
        ylabel=ylabel,
        title=f"{curve} - {target.replace('_', '-')} (test window)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def run_evaluate(
    cfg: Config,
    features_dir: Path,
    models_dir: Path,
    metrics_dir: Path,
    plots_dir: Path,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Evaluate stage: ``metrics/{churn,phase_out}.json``, ``plots/<curve>_<target>.csv|png``; logged to the train runs."""
    if cfg.evaluate.comparison_draws < 0:
        raise ConfigError(f"evaluate.comparison_draws is {cfg.evaluate.comparison_draws}; use 0 (no interval) or more.")
    fs = load_features(Path(features_dir), cfg.train.customer_share)
    models_dir, metrics_dir, plots_dir = Path(models_dir), Path(metrics_dir), Path(plots_dir)
    models = load_evaluation_models(models_dir)
    split = Split.from_json(read_json(models_dir / "split.json"))
    frame = labelled_rows(fs.frame)
    test = frame.loc[split.mask(frame, "test")]
    if test.empty:
        raise ModelError(
            f"no feature rows in the test window {split.dates['test']}; features and models/split.json disagree - rerun `omvald train`."
        )
    kept = kept_models(models_dir)
    columns = list(dict.fromkeys([*KEY_COLUMNS, *fs.features]))
    scored = score_test_rows(fs.rows(test, columns), fs.features, models, kept)
    skipped = skipped_targets(models_dir).get("phase_out")
    if skipped is None and "phase_out" not in models:
        skipped = "no phase-out model in models/"
    churn, phase_out, curves = evaluate_scores(
        scored,
        split.strategy,
        cfg.evaluate.calibration_bins,
        cfg.evaluate.top_fraction,
        phase_out_skipped=skipped,
        kept=kept,
        draws=cfg.evaluate.comparison_draws,
        seed=cfg.seed,
    )
    unavailable = unavailable_baselines(models_dir)
    churn["baselines_unavailable"] = unavailable.get("churn", {})
    if not phase_out.get("skipped"):
        phase_out["baselines_unavailable"] = unavailable.get("phase_out", {})
    about = {
        "split_step": split.step,
        "out_of_time": split.out_of_time,
        "test_dates": [d.isoformat() for d in split.dates["test"]],
        "fit": HOLDOUT,
    }
    churn.update(about)
    phase_out.update(about)
    if not split.out_of_time:
        log.warning("evaluate: the test is NOT out of time (%s): customers held out at the same dates", split.strategy)
    write_json(churn, metrics_dir / "churn.json")
    write_json(phase_out, metrics_dir / "phase_out.json")
    written: dict[str, list[Path]] = {
        "churn": [metrics_dir / "churn.json"],
        "phase_out": [metrics_dir / "phase_out.json"],
    }
    for key, data in curves.items():
        curve, target = key.split("_", 1)
        write_table(data, plots_dir / f"{key}.csv")
        png = plots_dir / f"{key}.png"
        if data.empty:  # a skipped model: header-only CSV, no picture (and none left from an earlier run)
            png.unlink(missing_ok=True)
            written[target].append(plots_dir / f"{key}.csv")
            continue
        plot_curve(data, curve, target, png)
        written[target] += [plots_dir / f"{key}.csv", png]
    _log(models_dir / "run.json", churn, phase_out, written, tracking_uri)
    return {"churn": churn, "phase_out": phase_out}


def _log(
    run_json: Path, churn: dict, phase_out: dict, written: dict[str, list[Path]], tracking_uri: str | None
) -> None:
    info = read_json(run_json) if run_json.exists() else {}
    if not info.get("runs"):
        log.info("evaluate: no MLflow runs in %s; metrics written to files only", run_json)
        return
    from omvald.model import tracking

    for target, block in (("churn", churn), ("phase_out", phase_out)):
        if target not in info["runs"]:  # skipped in training: no run; the reason is a tag on the parent
            continue
        metrics = {k: v for k, v in block.items() if k not in ("split_strategy", "split_step", "test_dates", "skipped")}
        metrics.pop("baselines_unavailable", None)
        tracking.log_to_run(
            info,
            target=target,
            metrics={"test": metrics},
            artifacts=written[target],
            artifact_path="evaluation",
            tags=verdict_tags(block.get("comparison") or {}),
            tracking_uri=tracking_uri,
        )
    # the headline is the kept model's: the one `omvald score` uses (refit) and MLflow registers
    headline = {"churn": churn["models"][churn["kept_model"]]["overall"]}
    if not phase_out.get("skipped"):
        headline["phase_out"] = phase_out["combined"]["models"][phase_out["kept_model"]]["overall"]
    tracking.log_to_run(info, metrics={"test": headline}, tracking_uri=tracking_uri)


def verdict_tags(cmp: dict[str, Any]) -> dict[str, str]:
    """MLflow tags of a comparison: the kept model, the best baseline and beat / tie / lose against it."""
    tags = {"kept_model": str(cmp.get("kept_model"))} if cmp.get("kept_model") else {}
    if cmp.get("best_baseline"):
        tags["best_baseline"] = cmp["best_baseline"]
        for who in ("lgbm", "kept"):
            if cmp.get(f"{who}_vs_best_baseline"):
                tags[f"{who}_vs_best_baseline"] = cmp[f"{who}_vs_best_baseline"]["verdict"]
    return tags


def finite(obj: Any) -> bool:
    """True when every number in a nested dict / list is finite (the metrics files' promise)."""
    if isinstance(obj, dict):
        return all(finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(finite(v) for v in obj)
    if isinstance(obj, float):
        return bool(np.isfinite(obj))
    return True

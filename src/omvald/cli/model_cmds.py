"""Model commands: ``omvald train``, ``omvald evaluate``, ``omvald promote``.

Heavy imports (LightGBM, MLflow) happen inside the commands so ``omvald
--help`` stays fast. The environment (``MLFLOW_TRACKING_URI``,
``DVC_EXP_NAME``) is read here and passed down.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from omvald.cli.common import ParamsOption, app, check_tracking, console, load_params, stage
from omvald.config import resolve_tracking_uri


@app.command("train")
@stage
def train(
    features_dir: Annotated[Path, typer.Argument(help="Feature tables (training.parquet, registry.json, meta.json).")],
    models_dir: Annotated[Path, typer.Argument(help="Where models, split.json and run.json go.")],
    params: ParamsOption = Path("params.yaml"),
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Skip MLflow tracking and registration.")] = False,
) -> None:
    """Split (out of time where the history allows), fit churn and phase-out models plus baselines, refit, log to MLflow."""
    from omvald.io import check_outputs
    from omvald.model.tracking import connect, context_from_env
    from omvald.model.train import run_train

    check_outputs({models_dir: "files"}, inputs=[features_dir])
    cfg = load_params(params)
    ctx = None if no_mlflow else context_from_env(cfg.mlflow, os.environ)
    if ctx is not None:
        connect(ctx.tracking_uri)
    result = run_train(cfg, features_dir, models_dir, tracking=ctx)
    split = result["split"]
    trees = ", ".join(f"{t}={n}" for t, n in result["n_trees"].items())
    console.print(
        f"trained ({split['split_strategy']} split; rows train/valid/test = "
        f"{split['n_rows']['train']}/{split['n_rows']['valid']}/{split['n_rows']['test']}; trees {trees})",
        highlight=False,
    )
    console.print(f"  split step '{split['split_step']}': {split['split_description']}", highlight=False)
    for note in split["notes"]:
        console.print(f"  [yellow]{note}[/]", markup=True, highlight=False)
    for target, choice in result["kept"].items():
        search = result["search"][target]
        searched = (
            f"LightGBM search: {search['trials']} trials (best: trial {search['best_trial']}"
            + (", the fixed settings" if search["best_is_fixed"] else "")
            + f"; stopped by {search['stopped_by']}); "
            if search["trials"]
            else "LightGBM with the fixed settings (train.search.n_trials = 0); "
        )
        console.print(f"  {target}: {searched}kept [bold]{choice['kept']}[/]: {choice['reason']}", highlight=False)
    for target, fits in result["fits"].items():
        scoring = fits["scoring"]
        if scoring["refit"]:
            trees = f"{scoring['n_trees']} trees, " if scoring["n_trees"] else ""
            console.print(
                f"  {target}: scoring model ({scoring['model']}) refit on all {len(scoring['as_of_dates'])} labelled "
                f"as-of dates ({scoring['n_rows']} rows, test window included; {trees}"
                f"{scoring['calibration']} calibration); metrics come from the holdout fit",
                highlight=False,
            )
    for target, reason in result["skipped"].items():
        console.print(f"  {target} model skipped: {reason}", highlight=False)
    for model in result["run"].get("models", {}).values():
        if "version" in model:
            console.print(f"  {model['registered_name']} version {model['version']} -> alias 'candidate'")


@app.command("evaluate")
@stage
def evaluate(
    features_dir: Annotated[Path, typer.Argument(help="Feature tables.")],
    models_dir: Annotated[Path, typer.Argument(help="Output of `omvald train`.")],
    metrics_dir: Annotated[Path, typer.Argument(help="Where churn.json / phase_out.json go.")],
    plots_dir: Annotated[Path, typer.Argument(help="Where curve CSVs and PNGs go.")],
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Score the test window with every model; write metrics, curve data and plots; log them to the train runs."""
    from omvald.io import check_outputs
    from omvald.model.evaluate import run_evaluate

    check_outputs({metrics_dir: "files", plots_dir: "files"}, inputs=[features_dir, models_dir])
    cfg = load_params(params)
    tracking_uri = resolve_tracking_uri(cfg.mlflow, os.environ)
    check_tracking(models_dir / "run.json", tracking_uri)
    result = run_evaluate(cfg, features_dir, models_dir, metrics_dir, plots_dir, tracking_uri=tracking_uri)
    if not result["churn"]["out_of_time"]:
        console.print(
            f"[yellow]test NOT out of time ({result['churn']['split_strategy']}): customers held out at the same "
            "as-of dates, not later dates[/]",
            markup=True,
            highlight=False,
        )
    if result["phase_out"].get("skipped"):
        console.print(f"phase_out: skipped ({result['phase_out']['reason']})", highlight=False)
    blocks = [("churn", result["churn"], result["churn"].get("comparison"))]
    if not result["phase_out"].get("skipped"):
        blocks.append(("phase_out", result["phase_out"]["combined"], result["phase_out"].get("comparison")))
    for target, block, cmp in blocks:
        parts = []
        for name, res in block["models"].items():
            o = res["overall"]
            parts.append(f"{name} AUC {o.get('roc_auc', float('nan')):.3f} ECE {o['ece']:.3f}")
        console.print(f"{target}: " + "; ".join(parts))
        diff = (cmp or {}).get("lgbm_vs_best_baseline")
        if diff:  # beat / tie / lose, as the report's headline says it
            interval = "" if diff["low"] is None else f" (95% interval {diff['low']:+.3f} to {diff['high']:+.3f})"
            console.print(
                f"  {target}: LightGBM {VERBS[diff['verdict']]} the best baseline, {cmp['best_baseline']}: "
                f"ROC AUC {diff['auc_diff']:+.3f}{interval}; kept model: {cmp['kept_model']}",
                highlight=False,
            )


VERBS = {"beat": "beats", "tie": "ties with", "lose": "loses to"}


@app.command("promote")
@stage
def promote(
    features_dir: Annotated[Path, typer.Argument(help="Feature tables (the current test rows).")] = Path(
        "data/features"
    ),
    models_dir: Annotated[Path, typer.Argument(help="Output of `omvald train` (split.json).")] = Path("models"),
    params: ParamsOption = Path("params.yaml"),
    metric: Annotated[
        str, typer.Option(help="roc_auc, pr_auc, lift, capture (higher wins) or log_loss, brier, ece (lower wins).")
    ] = "roc_auc",
    force: Annotated[bool, typer.Option("--force", help="Promote the candidate without comparing.")] = False,
    model: Annotated[str, typer.Option(help="churn, phase_out or all.")] = "all",
) -> None:
    """Move alias 'champion' to the 'candidate' version if it beats the champion on the current test window."""
    from omvald.errors import ConfigError
    from omvald.model.promote import run_promote
    from omvald.model.tracking import connect, context_from_env

    if model not in ("churn", "phase_out", "all"):
        raise ConfigError(f"--model must be churn, phase_out or all, got {model!r}")
    cfg = load_params(params)
    ctx = context_from_env(cfg.mlflow, os.environ)
    connect(ctx.tracking_uri, must_exist=True)
    targets = ("churn", "phase_out") if model == "all" else (model,)
    for decision in run_promote(
        features_dir,
        models_dir,
        ctx.tracking_uri,
        metric=metric,
        force=force,
        targets=targets,
        customer_share=cfg.train.customer_share,
    ):
        mark = "[green]promoted[/]" if decision.promoted else "[yellow]kept[/]"
        console.print(f"{mark} {decision.reason}", markup=True, highlight=False)

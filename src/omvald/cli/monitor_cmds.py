"""``omvald monitor``: realized metrics of an old scoring run, once a newer export holds its outcomes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from omvald.cli.common import ParamsOption, app, console, load_params, stage
from omvald.config import resolve_tracking_uri
from omvald.errors import ConfigError
from omvald.io import read_json

TARGETS = ("churn", "phase_out")


@app.command("monitor")
@stage
def monitor(
    scores: Annotated[Path, typer.Option("--scores", help="Scores of an earlier `omvald score` run.", dir_okay=False)],
    input_dir: Annotated[
        Path,
        typer.Option(
            "--input", help="A newer export (same files as score reads) that reaches the outcomes.", file_okay=False
        ),
    ],  # fmt: skip
    output: Annotated[Path, typer.Option("--output", help="Where the monitor JSON goes.", dir_okay=False)] = Path(
        "reports/monitor.json"
    ),
    campaign: Annotated[
        Path | None,
        typer.Option(
            "--list",
            help="Campaign list (CSV/Parquet: customer_id, group = contact | control): "
            "contacted customers are measured apart.",
            dir_okay=False,
        ),
    ] = None,  # fmt: skip
    models_dir: Annotated[
        Path, typer.Option("--models-dir", help="The models that made the scores (metrics/ and run.json).")
    ] = Path("models"),
    metrics_dir: Annotated[
        Path, typer.Option("--metrics", help="Training-time metrics of those models (evaluate's output).")
    ] = Path("metrics"),
    model_uri: Annotated[
        str | None,
        typer.Option("--model-uri", help="models:/omvald-churn@<alias> if the scores came from the registry."),
    ] = None,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not log the realized metrics.")] = False,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Once the horizon after a scoring date has passed: the realized metrics beside the training-time ones."""
    from omvald.scoring.monitor import run_monitor

    cfg = load_params(params)
    tracking_uri = resolve_tracking_uri(cfg.mlflow, os.environ)
    versions = {} if no_mlflow else _versions(models_dir, model_uri, tracking_uri)
    version_metrics = versions.get("churn", {}).get("metrics") if model_uri else None
    if version_metrics and "phase_out" in versions:
        version_metrics = {**version_metrics, **versions["phase_out"]["metrics"]}
    result = run_monitor(
        cfg, scores, input_dir, output, campaign_path=campaign,
        metrics_dir=None if model_uri else metrics_dir, version_metrics=version_metrics,
    )  # fmt: skip
    _print(result)
    if versions:
        from omvald.model.tracking import log_monitoring

        realized = {t: result[t]["metrics"]["overall"] for t in TARGETS if t in result}
        run_id = log_monitoring(
            tracking_uri, cfg.mlflow.experiment, as_of=result["as_of"], versions=versions,
            metrics=realized, flags=result["flags"], artifact=output,
        )  # fmt: skip
        names = ", ".join(f"{v['name']} v{v['version']}" for v in versions.values())
        console.print(f"logged to MLflow run {run_id} and the model version(s) {names}", highlight=False)
    else:
        console.print("not logged to MLflow (no registered model version known)", highlight=False)


def _versions(models_dir: Path, model_uri: str | None, tracking_uri: str) -> dict[str, dict[str, Any]]:
    """``{target: {name, version, model_id, metrics}}`` of the models that made the scores, if registered."""
    from omvald.model.tracking import REGISTERED_NAMES, model_version

    if model_uri:
        prefix = f"models:/{REGISTERED_NAMES['churn']}@"
        if not model_uri.startswith(prefix):
            raise ConfigError(f"--model-uri {model_uri!r}: expected {prefix}<alias>")
        alias = model_uri[len(prefix) :]
        out = {}
        for target in TARGETS:
            try:
                out[target] = model_version(tracking_uri, REGISTERED_NAMES[target], alias)
            except Exception:  # a skipped phase-out model has no version under the alias
                if target == "churn":
                    raise
        return out
    run_json = Path(models_dir) / "run.json"
    info = read_json(run_json) if run_json.exists() else {}
    out = {}
    for target, model in (info.get("models") or {}).items():
        if "version" in model:
            out[target] = {"name": model["registered_name"], "version": model["version"],
                           "model_id": model.get("model_id")}  # fmt: skip
    return out


def _print(result: dict[str, Any]) -> None:
    table = Table(title=f"scores at {result['as_of']}: realized ({result['headline_rows']}) vs training")
    for col in ("target", "metric", "training", "realized", "change"):
        table.add_column(col, justify="left" if col in ("target", "metric") else "right")
    for target in TARGETS:
        if target not in result:
            continue
        for metric in ("roc_auc", "pr_auc", "log_loss", "ece", "lift"):
            row = result[target]["vs_training"][metric]
            table.add_row(target, metric, _num(row["training"]), _num(row["realized"]), _num(row["change"], "+"))
    console.print(table)
    console.print(
        f"{result['n_with_outcome']:,} of {result['n_scored']:,} scored customers have an outcome in the newer "
        f"export; groups: {result['groups']}",
        highlight=False,
    )
    for flag in result["flags"]:
        console.print(f"[bold red]flagged:[/] {flag}", markup=True, highlight=False)


def _num(value: Any, sign: str = "") -> str:
    return "-" if value is None else f"{value:{sign}.3f}"

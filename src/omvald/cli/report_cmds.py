"""``omvald report``: the one-page HTML run report and the NPS outputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from omvald.cli.common import ParamsOption, app, check_tracking, console, load_params, stage
from omvald.config import resolve_tracking_uri
from omvald.reports.gather import ReportPaths

_D = ReportPaths()


@app.command("report")
@stage
def report(
    out: Annotated[Path, typer.Option("--out", help="The HTML report; nps.csv and nps.png go next to it.")] = Path(
        "reports/report.html"
    ),
    params: ParamsOption = Path("params.yaml"),
    interim: Annotated[Path, typer.Option("--interim", help="Validated tables (touchpoints for NPS).")] = _D.interim,
    features: Annotated[Path, typer.Option("--features", help="Feature tables and meta.json.")] = _D.features,
    metrics: Annotated[Path, typer.Option("--metrics", help="metrics/{churn,phase_out}.json (required).")] = _D.metrics,
    plots: Annotated[Path, typer.Option("--plots", help="Curve data written by evaluate.")] = _D.plots,
    explain: Annotated[Path, typer.Option("--explain", help="SHAP plots and shap_importance.csv.")] = _D.explain,
    profile: Annotated[Path, typer.Option("--profile", help="Data profile written by validate.")] = _D.profile,
    score_summary: Annotated[
        Path, typer.Option("--score-summary", help="Summary written by score.")
    ] = _D.score_summary,
    models: Annotated[Path, typer.Option("--models", help="split.json and run.json (MLflow run).")] = _D.models,
    plan_summary: Annotated[
        Path, typer.Option("--plan-summary", help="Summary written by plan (the retention list).")
    ] = _D.plan_summary,
    effect: Annotated[
        Path, typer.Option("--effect", help="Measured effect written by effect (optional: after a campaign).")
    ] = _D.effect,
    drift: Annotated[Path, typer.Option("--drift", help="Drift file written by score.")] = _D.drift,
    monitor: Annotated[
        Path | None, typer.Option("--monitor", help="Realized metrics written by `omvald monitor` (optional).")
    ] = None,
) -> None:
    """Write the run report (one offline HTML page), reports/nps.csv and nps.png; log them to the MLflow run."""
    from omvald.io import check_outputs
    from omvald.reports.stage import run_report

    paths = ReportPaths(
        interim, features, metrics, plots, explain, profile, score_summary, models, plan_summary, effect, drift, monitor
    )
    # nps.csv and nps.png go next to the page
    check_outputs(
        {out: "file", out.parent / "nps.csv": "file", out.parent / "nps.png": "file"},
        inputs=[
            interim, features, metrics, plots, explain, profile, score_summary, models, plan_summary, effect, drift,
            monitor,
        ],
    )  # fmt: skip
    cfg = load_params(params)
    tracking_uri = resolve_tracking_uri(cfg.mlflow, os.environ)
    check_tracking(models / "run.json", tracking_uri)
    result = run_report(cfg, paths, out, tracking_uri=tracking_uri)
    for part, reason in result["missing"].items():
        console.print(f"[yellow]note:[/] {part} not available: {reason}", highlight=False)
    logged = f" (logged to MLflow run {result['run_id']})" if result["run_id"] else ""
    console.print(f"report: {', '.join(result['files'])}{logged}", highlight=False)

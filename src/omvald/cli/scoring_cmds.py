"""Explanation and scoring commands: ``omvald explain`` and ``omvald score``.

Heavy imports (LightGBM, SHAP, MLflow) happen inside the commands so
``omvald --help`` stays fast. The environment (``MLFLOW_TRACKING_URI``,
``OMVALD_SPARK_MASTER``) is read here and passed down.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from omvald.cli.common import ParamsOption, app, check_tracking, console, load_params, progress, stage
from omvald.config import resolve_tracking_uri
from omvald.errors import ConfigError

if TYPE_CHECKING:
    from omvald.scoring.finish import ScoreSummary


@app.command("explain")
@stage
def explain(
    features_dir: Annotated[Path, typer.Argument(help="Feature tables (training.parquet, registry.json).")],
    models_dir: Annotated[Path, typer.Argument(help="Output of `omvald train` (models, split.json, run.json).")],
    reports_dir: Annotated[Path, typer.Argument(help="Where the SHAP PNGs and importance CSVs go.")],
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """SHAP plots and global importance for both models on a sample of the test window."""
    from omvald.explain.stage import run_explain
    from omvald.io import check_outputs

    check_outputs({reports_dir: "files"}, inputs=[features_dir, models_dir])
    cfg = load_params(params)
    tracking_uri = resolve_tracking_uri(cfg.mlflow, os.environ)
    check_tracking(models_dir / "run.json", tracking_uri)
    result = run_explain(cfg, features_dir, models_dir, reports_dir, tracking_uri=tracking_uri)
    for target, features in result["top"].items():
        console.print(f"{target}: {result['n'][target]:,} test rows explained; top features: {', '.join(features)}")
        drivers = ", ".join(result["top_drivers"][target])
        console.print(f"{target}: top drivers (features of one reason summed): {drivers}")
    console.print(f"wrote {len(result['files'])} files to {reports_dir}")


@app.command("score")
@stage
def score(
    input_dir: Annotated[
        Path,
        typer.Option(
            "--input", help="Folder with customers / billing / touchpoints (.csv or .parquet).", file_okay=False
        ),
    ],
    output: Annotated[Path, typer.Option("--output", help="Scores file; .csv or .parquet.", dir_okay=False)],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Score at this date (YYYY-MM-DD); later rows are errors. Default: latest date in the files."
        ),
    ] = None,
    model_uri: Annotated[
        str | None,
        typer.Option(
            "--model-uri", help="models:/omvald-churn@<alias> from the MLflow registry (phase-out model: same alias)."
        ),
    ] = None,
    explain: Annotated[
        str | None,
        typer.Option("--explain", help="Who gets reason codes: top:N | risk:P | all | none. Default: score.explain."),
    ] = None,
    models_dir: Annotated[
        Path, typer.Option("--models-dir", help="Where churn.joblib / phase_out.joblib are.", file_okay=False)
    ] = Path("models"),
    summary: Annotated[
        Path | None, typer.Option("--summary", help="Also write the summary numbers as JSON here.", dir_okay=False)
    ] = None,
    drift: Annotated[
        Path | None,
        typer.Option(
            "--drift",
            help="Drift against the training data (JSON). Default: drift.json beside --summary, "
            "else <output stem>.drift.json beside --output.",
            dir_okay=False,
        ),
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="local or spark (default: features.engine in params.yaml).")
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Score every customer at the as-of date: probabilities, risk tier, revenue at risk, reason codes, drift."""
    from omvald.io import check_outputs
    from omvald.scoring.finish import default_drift_path
    from omvald.scoring.stage import run_score

    drift = drift or default_drift_path(output, summary)
    # before either engine does any work: an unwritable place, or one inside the export, fails now
    outputs = {output: "file", drift: "file"} | ({summary: "file"} if summary is not None else {})
    check_outputs(outputs, inputs=[input_dir, None if model_uri else models_dir])
    cfg = load_params(params)
    # only the registry (--model-uri) needs MLflow; dvc.yaml's score stage does not read mlflow.*
    tracking_uri = resolve_tracking_uri(cfg.mlflow, os.environ) if model_uri else None
    if (engine or cfg.features.engine) == "spark":
        from omvald.spark.scoring import run_score_spark_on_folder

        master = os.environ.get("OMVALD_SPARK_MASTER") or cfg.spark.master
        result = run_score_spark_on_folder(
            cfg, input_dir, output, master, as_of=_parse_date(as_of), explain=explain, models_dir=models_dir,
            model_uri=model_uri, tracking_uri=tracking_uri, summary_path=summary, drift_path=drift,
        )  # fmt: skip
        _print_summary(result)
        return
    if engine not in (None, "local"):
        raise ConfigError(f"--engine {engine!r}: use local or spark")
    with progress() as bar:
        task = bar.add_task("scoring buckets", total=None)
        result = run_score(
            cfg,
            input_dir,
            output,
            as_of=_parse_date(as_of),
            explain=explain,
            models_dir=models_dir,
            model_uri=model_uri,
            tracking_uri=tracking_uri,
            summary_path=summary,
            drift_path=drift,
            on_bucket=lambda done, total: bar.update(task, completed=done, total=total),
        )
    _print_summary(result)


def _parse_date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--as-of {text!r}: not a date; use YYYY-MM-DD") from None


def _print_summary(s: ScoreSummary) -> None:
    table = Table(title=f"scores at {s.as_of} -> {s.output}")
    table.add_column("risk tier")
    table.add_column("segment")
    table.add_column("customers", justify="right")
    table.add_column("contactable", justify="right")
    table.add_column("revenue at risk", justify="right")
    for tier, segments in s.by_tier_segment.items():
        for segment, cell in segments.items():
            table.add_row(
                tier, segment, f"{cell['customers']:,}", f"{cell['contactable']:,}", f"{cell['revenue_at_risk']:,.0f}"
            )
    table.add_section()
    table.add_row("all", "", f"{s.n_scored:,}", f"{s.n_contactable:,}", f"{s.revenue_at_risk:,.0f}")
    console.print(table)
    console.print(tier_risk_table(s))
    console.print(
        f"explained ({s.explain_policy}): {s.n_explained:,} of {s.n_scored:,}; "
        f"revenue at risk {s.revenue_at_risk:,.0f} (contactable {s.revenue_at_risk_contactable:,.0f}); "
        f"models: {s.models}"
    )
    _print_drift(s.drift)


def _print_drift(drift: dict | None) -> None:
    """The features, drivers and scores above the warning threshold (the whole table is in the drift file)."""
    if not drift:
        return
    if drift.get("skipped"):
        console.print(f"[yellow]drift not measured:[/] {drift['reason']}", markup=True, highlight=False)
        return
    warn, alert = drift["thresholds"]["warn"], drift["thresholds"]["alert"]
    features, drivers = drift["features_above_warn"], drift["drivers_above_warn"]
    scores = {name: s for name, s in drift["scores"].items() if s["level"] != "ok"}
    where = f" (all {drift['n_features']} in {drift['file']})" if drift.get("file") else ""
    if not (features or drivers or scores):
        console.print(f"drift: no feature, driver or score above PSI {warn:g}{where}", highlight=False)
        return
    table = Table(title=f"drift vs the training data: PSI above {warn:g} (alert above {alert:g})")
    for col, justify in (("what", "left"), ("name", "left"), ("driver", "left"), ("PSI", "right"), ("level", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, s in scores.items():
        table.add_row("score", name, "", f"{s['psi']:.3f}", s["level"])
    for d in drivers:
        table.add_row("driver", d["driver"], "", f"{d['psi']:.3f}", d["level"])
    for f in features:
        table.add_row("feature", f["name"], f["driver"], f"{f['psi']:.3f}", f["level"])
    console.print(table)
    if where:
        console.print(f"drift: {len(features)} of {drift['n_features']} features above PSI {warn:g}{where}")


def tier_risk_table(s: ScoreSummary) -> Table:
    """The value tier x risk tier matrix: per cell customers, revenue at risk and contactable customers."""
    months = s.value_tiers.get("lookback_months")
    table = Table(
        title=f"value tier (revenue over {months} months) x risk tier: customers / revenue at risk / contactable"
    )
    risks = list(next(iter(s.by_value_tier_risk.values()), {}))
    table.add_column("value tier")
    table.add_column("revenue", justify="right")
    for risk in risks:
        table.add_column(risk, justify="right")
    for tier, cells in s.by_value_tier_risk.items():
        revenue = sum(cell["revenue"] for cell in cells.values())
        row = [f"{c['customers']:,} / {c['revenue_at_risk']:,.0f} / {c['contactable']:,}" for c in cells.values()]
        table.add_row(tier, f"{revenue:,.0f}", *row)
    return table

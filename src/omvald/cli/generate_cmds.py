"""``omvald generate``: write the synthetic business as contract files plus its ground truth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from omvald.cli.common import ParamsOption, app, console, load_params, progress, stage
from omvald.data.generate import n_chunks, run_generate
from omvald.errors import ConfigError
from omvald.io import check_outputs


@app.command("generate")
@stage
def generate(
    out_dir: Annotated[Path, typer.Argument(help="Folder for customers / billing / touchpoints.", file_okay=False)],
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            help="Ground-truth file (.parquet or .csv); never read by the pipeline. Default: "
            "data/ground_truth.parquet, or <OUT_DIR>_truth.parquet with --campaign.",
        ),
    ] = None,
    truth_probabilities: Annotated[
        Path | None,
        typer.Option(
            "--truth-probabilities",
            help="Also write each customer's true churn and phase-out probabilities at every month end "
            "(.parquet or .csv), for features.horizon_days / phase_out_drop / lookback_days; never read by the "
            "pipeline.",
        ),
    ] = None,
    campaign: Annotated[
        Path | None,
        typer.Option(
            "--campaign",
            help="A retention list of `omvald plan` on this business: write the newer export, continued for "
            "campaign.months after the list's as-of date with the planted effects of params.yaml `campaign:`.",
            dir_okay=False,
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet | csv")] = "parquet",
    export_date: Annotated[
        str | None,
        typer.Option(
            "--export-date",
            help="Write the business as exported at the end of this day (YYYY-MM-DD): later rows held back, "
            "churn and paid dates only if they had happened. The truth files stay whole.",
        ),
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Generate a synthetic business (params.yaml `generate:` section, top-level `seed`).

    `generate.business` picks it: subscription (default), purchases or purchases_btyd.
    """
    cfg = load_params(params)
    if campaign is not None:
        _campaign(
            cfg,
            out_dir,
            campaign,
            truth or out_dir.with_name(f"{out_dir.name}_truth.parquet"),
            fmt,
            truth_probabilities,
        )
        return
    truth = truth or Path("data/ground_truth.parquet")
    outputs = {out_dir: "dir", truth: "file"}
    if truth_probabilities is not None:
        outputs[truth_probabilities] = "file"
    check_outputs(outputs)
    with progress() as bar:
        task = bar.add_task("generating customers", total=n_chunks(cfg.generate))
        summary = run_generate(
            cfg,
            out_dir,
            truth,
            fmt.lower(),
            on_chunk=lambda done, total: bar.update(task, completed=done),
            probabilities_path=truth_probabilities,
            export_date=_date(export_date),
        )
    table = Table(title=f"synthetic {summary['business']} business -> {out_dir}", show_header=False)
    for name, value in _summary_rows(summary):
        table.add_row(name, value)
    if "shift_month" in summary:
        table.add_row("shift (generate.shift)", f"from month {summary['shift_month']}")
    if "export_date" in summary:
        table.add_row("exported as of", summary["export_date"])
    table.add_row("ground truth", str(truth))
    if truth_probabilities is not None:
        table.add_row("true probabilities", str(truth_probabilities))
    console.print(table)


def _date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--export-date {text!r}: not a date; use YYYY-MM-DD") from None


def _summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    if summary["business"] == "subscription":
        return [
            ("customers", f"{summary['customers']:,}"),
            ("invoices (+ credit notes)", f"{summary['invoices']:,} (+{summary['credit_notes']:,})"),
            ("touchpoints", f"{summary['touchpoints']:,}"),
            ("churned", f"{summary['churn_share']:.1%} ({summary['monthly_churn_rate']:.2%} a month)"),
            ("ever phasing out", f"{summary['phase_out_share']:.1%}"),
            ("passive (latent)", f"{summary['passive_share']:.1%}"),
        ]
    drivers = ", ".join(f"{name} {count:,}" for name, count in summary["leave_drivers"].items())
    return [
        ("customers (buyers in the export)", f"{summary['customers']:,} ({summary['buyers']:,})"),
        ("purchases", f"{summary['invoices']:,} ({summary['purchases_per_buyer']:.1f} per buyer)"),
        ("buyers with 1-3 purchases", f"{summary['few_purchases_share']:.0%}"),
        ("left by the end (why)", f"{summary['left_share']:.1%} ({drivers or 'nobody'})"),
    ]


def _campaign(cfg: Any, out_dir: Path, campaign: Path, truth: Path, fmt: str, probabilities: Path | None) -> None:
    from omvald.data.generate_campaign import write_campaign_export

    if probabilities is not None:
        raise ConfigError("--truth-probabilities: not with --campaign (the campaign's truth file holds its own)")
    check_outputs({out_dir: "dir", truth: "file"}, inputs=[campaign])
    with progress() as bar:
        task = bar.add_task("running the campaign", total=n_chunks(cfg.generate))
        summary = write_campaign_export(
            cfg, campaign, out_dir, truth, fmt.lower(), on_chunk=lambda done, total: bar.update(task, completed=done)
        )
    table = Table(title=f"campaign of {campaign} -> {out_dir}", show_header=False)
    table.add_row("list as of", summary["as_of"])
    table.add_row("months after it", str(summary["months"]))
    table.add_row("listed (contacted)", f"{summary['listed']:,} ({summary['contacted']:,})")
    churned = ", ".join(f"{k} {v:,}" for k, v in sorted(summary["churned_after_as_of"].items())) or "none"
    table.add_row("listed customers who left after it", churned)
    table.add_row("ground truth (planted effects)", str(truth))
    console.print(table)

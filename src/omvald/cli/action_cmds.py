"""From scores to actions and back: ``omvald plan`` and ``omvald effect``."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from omvald.cli.common import ParamsOption, app, console, load_params, stage
from omvald.config import resolve_tracking_uri
from omvald.errors import ConfigError


@app.command("plan")
@stage
def plan(
    scores: Annotated[Path, typer.Argument(help="A scores file of `omvald score` (.parquet or .csv).", dir_okay=False)],
    output: Annotated[Path, typer.Argument(help="The retention list (.csv or .parquet).", dir_okay=False)],
    summary: Annotated[
        Path | None, typer.Option("--summary", help="Also write the summary by action and cell (JSON).", dir_okay=False)
    ] = None,
    effects: Annotated[
        Path | None,
        typer.Option("--effects", help="An effect JSON of `omvald effect`: measured effects replace the assumed ones."),
    ] = None,
    models_dir: Annotated[
        Path, typer.Option("--models-dir", help="Where run.json names the MLflow run to log the summary to.")
    ] = Path("models"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Whom to contact, how and with what message, within the budget, with a held-out control group per cell."""
    from omvald.actions.plan_stage import run_plan

    cfg = load_params(params)
    result = run_plan(
        cfg, scores, output, summary, effects, models_dir / "run.json", resolve_tracking_uri(cfg.mlflow, os.environ)
    )
    s = result.summary
    table = Table(title=f"retention list at {s['as_of']} -> {output}")
    for col, justify in (("action", "left"), ("contact", "right"), ("control", "right"), ("cost", "right"),
                         ("expected saved revenue", "right"), ("effect", "left")):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for action, row in s["by_action"].items():
        sources = ", ".join(f"{k} {v}" for k, v in row["effect_sources"].items())
        table.add_row(action, f"{row['contact']:,}", f"{row['control']:,}", f"{row['cost']:,.0f}",
                      f"{row['expected_saved_revenue']:,.0f}", sources)  # fmt: skip
    console.print(table)
    c = s["counts"]
    console.print(
        f"{c['contact']:,} to contact, {c['control']:,} held out as control, of {c['contactable']:,} contactable "
        f"({c['not_worth_contacting']:,} not worth a contact, {c['over_budget']:,} over the budget, "
        f"{c['no_rule']:,} without a matching rule); cost {s['contact_cost']:,.0f}, "
        f"expected saved revenue {s['expected_saved_revenue']:,.0f}",
        highlight=False,
    )


@app.command("effect")
@stage
def effect(
    list_path: Annotated[Path, typer.Option("--list", help="The retention list of `omvald plan`.", dir_okay=False)],
    input_dir: Annotated[
        Path, typer.Option("--input", help="A newer export of the same business (after the horizon).", file_okay=False)
    ],
    output: Annotated[Path, typer.Option("--output", help="The effect JSON.", dir_okay=False)] = Path(
        "reports/effect.json"
    ),
    data_end: Annotated[
        str | None, typer.Option("--data-end", help="The newer export's end of data (default: from its rows).")
    ] = None,
    models_dir: Annotated[
        Path, typer.Option("--models-dir", help="Where run.json names the MLflow run to log the effect to.")
    ] = Path("models"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Contacted vs control after the horizon: churn and phase-out, per action, segment and tier, with 95% intervals."""
    from omvald.actions.effect_stage import run_effect

    cfg = load_params(params)
    end = _date(data_end, "--data-end")
    result = run_effect(
        cfg,
        list_path,
        input_dir,
        output,
        data_end=end,
        run_json=models_dir / "run.json",
        tracking_uri=resolve_tracking_uri(cfg.mlflow, os.environ),
    )
    console.print(effect_table(result.summary))
    counts = result.summary["counts"]
    console.print(
        f"measured {counts['measured']:,} of {counts['listed']:,} listed customers over "
        f"({result.summary['as_of']}, {result.summary['observed_until']}] -> {output}",
        highlight=False,
    )


def effect_table(summary: dict[str, Any]) -> Table:
    """Churn reduction (control - contact) with its interval per group; pooled groups say where they went."""
    table = Table(title=f"measured effect of the list at {summary['as_of']} ({summary['confidence']:.0%} intervals)")
    for col in ("group", "contact", "control", "churn contact", "churn control", "reduction (pp)", "saved revenue"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for g in summary["groups"]:
        if g.get("churn_reduction") is None:
            table.add_row(
                g["label"], f"{g['n_contact']:,}", f"{g['n_control']:,}", "", "", f"pooled into {g['pooled_into']}", ""
            )
            continue
        red = f"{100 * g['churn_reduction']:+.1f} [{100 * g['churn_reduction_low']:+.1f}, {100 * g['churn_reduction_high']:+.1f}]"
        saved = f"{g['saved_revenue']:,.0f} [{g['saved_revenue_low']:,.0f}, {g['saved_revenue_high']:,.0f}]"
        note = "" if g["precise"] else " (few customers)"
        table.add_row(g["label"] + note, f"{g['n_contact']:,}", f"{g['n_control']:,}",
                      f"{g['churn_rate_contact']:.1%}", f"{g['churn_rate_control']:.1%}", red, saved)  # fmt: skip
    return table


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: not a date; use YYYY-MM-DD") from None

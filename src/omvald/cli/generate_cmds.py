"""``omvald generate``: write the synthetic business as contract files plus its ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from omvald.cli.common import ParamsOption, app, console, load_params, progress, stage
from omvald.data.generate import n_chunks, run_generate
from omvald.io import check_outputs


@app.command("generate")
@stage
def generate(
    out_dir: Annotated[Path, typer.Argument(help="Folder for customers / billing / touchpoints.", file_okay=False)],
    truth: Annotated[
        Path, typer.Option("--truth", help="Ground-truth file (.parquet or .csv); never read by the pipeline.")
    ] = Path("data/ground_truth.parquet"),
    fmt: Annotated[str, typer.Option("--format", help="parquet | csv")] = "parquet",
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Generate the synthetic subscription business (params.yaml `generate:` section, top-level `seed`)."""
    cfg = load_params(params)
    check_outputs({out_dir: "dir", truth: "file"})
    with progress() as bar:
        task = bar.add_task("generating customers", total=n_chunks(cfg.generate))
        summary = run_generate(
            cfg, out_dir, truth, fmt.lower(), on_chunk=lambda done, total: bar.update(task, completed=done)
        )
    table = Table(title=f"synthetic business -> {out_dir}", show_header=False)
    table.add_row("customers", f"{summary['customers']:,}")
    table.add_row("invoices (+ credit notes)", f"{summary['invoices']:,} (+{summary['credit_notes']:,})")
    table.add_row("touchpoints", f"{summary['touchpoints']:,}")
    table.add_row("churned", f"{summary['churn_share']:.1%} ({summary['monthly_churn_rate']:.2%} a month)")
    table.add_row("ever phasing out", f"{summary['phase_out_share']:.1%}")
    table.add_row("passive (latent)", f"{summary['passive_share']:.1%}")
    table.add_row("ground truth", str(truth))
    console.print(table)

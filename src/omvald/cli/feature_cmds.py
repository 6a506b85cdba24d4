"""``omvald features``: interim tables -> point-in-time feature tables, labels and the registry."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated

import typer

from omvald.cli.common import ParamsOption, app, console, load_params, progress, stage


@app.command("features")
@stage
def features(
    interim_dir: Annotated[Path, typer.Argument(help="Validated interim tables (output of `omvald validate`).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for training / scoring tables, registry.json, meta.json.")],
    engine: Annotated[
        str | None, typer.Option("--engine", help="local or spark (default: features.engine in params.yaml).")
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Build features and labels at monthly as-of dates, one bucket of customers at a time."""
    from omvald.features.stage import run_features
    from omvald.io import check_outputs

    cfg = load_params(params)
    check_outputs({out_dir: "dir"}, inputs=[interim_dir])
    if engine is not None:
        cfg = dataclasses.replace(cfg, features=dataclasses.replace(cfg.features, engine=engine))
    if cfg.features.engine == "spark":
        from omvald.spark.features import run_features_spark

        # The environment names the cluster where it runs (spark-submit, Databricks); params hold the default.
        master = os.environ.get("OMVALD_SPARK_MASTER") or cfg.spark.master
        meta = run_features_spark(cfg, interim_dir, out_dir, master)
    else:
        with progress() as bar:
            meta = run_features(cfg, interim_dir, out_dir, progress=bar)
    dates = meta["as_of_dates"]
    console.print(
        f"features -> {out_dir}: {meta['n_rows']['training']:,} training rows at {len(meta['labelled_dates'])} "
        f"labelled dates, {meta['n_rows']['scoring']:,} scoring rows at {meta['scoring_date']} "
        f"({len(dates)} as-of dates {dates[0]} .. {dates[-1]})"
    )
    for family, reason in meta["families_missing"].items():
        console.print(f"  family '{family}' left out: {reason}")

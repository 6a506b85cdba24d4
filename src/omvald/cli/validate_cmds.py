"""``omvald validate``: check raw tables against the data contract, write the interim tables and the profile."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from omvald.cli.common import ParamsOption, app, console, load_params, stage


@app.command("validate")
@stage
def validate(
    raw_dir: Annotated[Path, typer.Argument(help="Folder with customers, billing, touchpoints (.csv or .parquet).")],
    out_dir: Annotated[Path, typer.Argument(help="Where the validated interim tables go (e.g. data/interim).")],
    profile: Annotated[Path, typer.Option("--profile", help="Profile JSON to write.")] = Path("reports/profile.json"),
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Scoring cutoff YYYY-MM-DD: any later date is an error.")
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Validate RAW_DIR against the data contract and write OUT_DIR; nothing is written on a violation."""
    from omvald.data.validate import run_validate
    from omvald.errors import ConfigError

    cfg = load_params(params)
    try:
        cutoff = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise ConfigError(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)") from exc
    result = run_validate(cfg, raw_dir, out_dir, profile, as_of=cutoff)
    console.print(profile_table(result))
    console.print(f"[green]ok[/] {out_dir} and {profile} written", highlight=False)


def profile_table(profile: dict[str, Any]) -> Table:
    """The profile as a Rich table: one row per table, then the label rates and warnings."""
    kind = "contractual" if profile["contractual"] else "non-contractual"
    table = Table(title=f"data profile: {profile['customers']:,} customers, {kind}", title_justify="left")
    for name in ("table", "rows", "first date", "last date", "optional columns present", "duplicates dropped"):
        table.add_column(name, justify="right" if name in ("rows", "duplicates dropped") else "left")
    for name, t in profile["tables"].items():
        table.add_row(
            name,
            f"{t['rows']:,}",
            t["first_date"] or "-",
            t["last_date"] or "-",
            ", ".join(t["optional_columns_present"]) or "-",
            str(t["duplicates_dropped"]),
        )
    rates = [r for r in profile["label_rates"] if r["churn_rate"] is not None]
    caption = [profile["churn_definition"]]
    if rates:
        values = [r["churn_rate"] for r in rates]
        caption.append(
            f"churn label rate over {len(rates)} monthly as-of dates: "
            f"min {min(values):.1%}, median {sorted(values)[len(values) // 2]:.1%}, max {max(values):.1%}"
        )
    else:
        caption.append("no as-of date with an observed horizon: no churn labels")
    caption += [f"warning: {w}" for w in profile["warnings"]]
    table.caption = "\n".join(caption)
    table.caption_justify = "left"
    return table

"""Reading a retention list that ``omvald plan`` wrote, for the commands that take one back (effect, generate)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from omvald.errors import ConfigError, DataContractError


def read_retention_list(path: Path, option: str, columns: Sequence[str]) -> tuple[pd.DataFrame, dt.date]:
    """The list at ``path`` (CSV or Parquet) and its one as-of date.

    ``option`` names the command-line option in the not-found message;
    ``columns`` are the ones the caller needs. A missing file is a
    :class:`ConfigError`; missing columns or several as-of dates a
    :class:`DataContractError` naming the list.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{option} {path}: file not found; it is the retention list `omvald plan` wrote.")
    frame = pd.read_csv(path, dtype={"customer_id": "str"}) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataContractError(
            "retention list", ", ".join(missing), "missing (write it with `omvald plan`)", path=str(path)
        )
    dates = pd.to_datetime(frame["as_of"]).dt.date.unique()
    if len(dates) != 1:
        raise DataContractError(
            "retention list", "as_of", f"one as-of date expected, found {len(dates)}", dates, str(path)
        )
    return frame, dates[0]

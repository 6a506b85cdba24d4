"""Out-of-time split of the labelled feature rows into train / validation / test.

The latest ``test_dates`` labelled as-of dates are the test window, the
``valid_dates`` before them validation (early stopping and calibration), the
rest training. A label at ``t`` looks at ``(t, t+H]``, so a training row at
``t`` with ``t + H`` after the first validation date has seen the validation
period's outcomes: the **embargo** drops such dates (and likewise validation
dates whose label window reaches into the test window).

With a single labelled as-of date there is no "later": we fall back to a
customer split stratified by the label and say so in ``strategy``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from omvald.errors import ConfigError

log = logging.getLogger(__name__)

TIME = "time"
CUSTOMER = "customer (single snapshot)"
WINDOWS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    """Which rows belong to which window.

    ``strategy == "time"``: windows are sets of as-of dates. ``strategy ==
    CUSTOMER``: windows are sets of customer ids (all at the one as-of date).
    ``dropped_dates`` maps an ISO date to why it was left out (embargo).
    """

    strategy: str
    horizon_days: int
    dates: dict[str, tuple[dt.date, ...]]
    customers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dropped_dates: dict[str, str] = field(default_factory=dict)

    def mask(self, frame: pd.DataFrame, window: str) -> pd.Series:
        """Boolean mask of ``frame`` rows (needs ``as_of``; ``customer_id`` for a customer split) in ``window``."""
        as_of = _to_timestamps(frame["as_of"])
        in_dates = as_of.isin(pd.to_datetime(list(self.dates[window])))
        if self.strategy == TIME:
            return in_dates
        return in_dates & frame["customer_id"].astype(str).isin(set(self.customers[window]))

    def to_json(self, frame: pd.DataFrame | None = None) -> dict[str, Any]:
        """Plain-JSON description (dates as ISO strings); with ``frame``, rows and customers per window."""
        out: dict[str, Any] = {
            "split_strategy": self.strategy,
            "horizon_days": self.horizon_days,
            "dates": {w: [d.isoformat() for d in self.dates[w]] for w in WINDOWS},
            "dropped_dates": dict(self.dropped_dates),
        }
        if self.strategy == CUSTOMER:
            out["customers"] = {w: list(self.customers[w]) for w in WINDOWS}
        if frame is not None:
            out["n_rows"] = {w: int(self.mask(frame, w).sum()) for w in WINDOWS}
            out["n_customers"] = {w: int(frame.loc[self.mask(frame, w), "customer_id"].nunique()) for w in WINDOWS}
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Split:
        return cls(
            strategy=obj["split_strategy"],
            horizon_days=int(obj["horizon_days"]),
            dates={w: tuple(dt.date.fromisoformat(d) for d in obj["dates"][w]) for w in WINDOWS},
            customers={w: tuple(obj["customers"][w]) for w in WINDOWS} if "customers" in obj else {},
            dropped_dates=dict(obj.get("dropped_dates", {})),
        )


def time_split(labelled_dates: Sequence[dt.date], horizon_days: int, valid_dates: int, test_dates: int) -> Split:
    """Split labelled as-of dates out of time, with an embargo of ``horizon_days``.

    Test = the latest ``test_dates`` dates. Validation = the latest
    ``valid_dates`` dates with ``t + H <= first test date``. Training = every
    date with ``t + H <= first validation date``. Dates in the gaps are
    dropped and reported. Raises :class:`ConfigError` when too few remain.
    """
    dates = sorted({_to_date(d) for d in labelled_dates})
    horizon = dt.timedelta(days=horizon_days)
    need = f"train.test_dates={test_dates} + train.valid_dates={valid_dates} + at least 1 training date"
    if valid_dates < 1 or test_dates < 1:
        raise ConfigError("train.valid_dates and train.test_dates must both be >= 1.")
    if len(dates) < test_dates + valid_dates + 1:
        raise ConfigError(
            f"{len(dates)} labelled as-of date(s) ({_fmt(dates)}) are too few for {need}. "
            "Lower train.test_dates / train.valid_dates, start features.as_of_first earlier, or provide more history."
        )
    test = dates[-test_dates:]
    dropped: dict[str, str] = {}
    before_test = dates[:-test_dates]
    ok_valid = [d for d in before_test if d + horizon <= test[0]]
    for d in before_test[len(ok_valid) :]:
        dropped[d.isoformat()] = f"embargo: label window reaches the test window (t + {horizon_days}d > {test[0]})"
    valid = ok_valid[-valid_dates:]
    before_valid = ok_valid[: -len(valid)] if valid else []
    train = [d for d in before_valid if d + horizon <= valid[0]] if valid else []
    for d in before_valid[len(train) :]:
        dropped[d.isoformat()] = (
            f"embargo: label window reaches the validation window (t + {horizon_days}d > {valid[0]})"
        )
    if len(valid) < valid_dates or not train:
        raise ConfigError(
            f"after the {horizon_days}-day embargo, {len(dates)} labelled as-of dates ({_fmt(dates)}) leave "
            f"{len(train)} training and {len(valid)} validation date(s); the split needs {need}. "
            "Lower train.test_dates / train.valid_dates or features.horizon_days, or provide more history."
        )
    if dropped:
        log.info("split: embargo dropped %d as-of date(s): %s", len(dropped), ", ".join(sorted(dropped)))
    return Split(TIME, horizon_days, {"train": tuple(train), "valid": tuple(valid), "test": tuple(test)}, {}, dropped)


def customer_split(frame: pd.DataFrame, label: str, horizon_days: int, test_share: float, seed: int) -> Split:
    """Single snapshot: customers split stratified by ``label``; validation carved from training the same way."""
    if not 0 < test_share < 0.5:
        raise ConfigError(f"train.snapshot_test_share must be in (0, 0.5), got {test_share}.")
    log.warning("split: only one labelled as-of date; falling back to a customer split (not out of time)")
    per_customer = frame[["customer_id", label]].drop_duplicates("customer_id")
    ids = per_customer["customer_id"].astype(str).to_numpy()
    y = per_customer[label].fillna(0).astype(int).to_numpy()
    stratify = y if np.bincount(y).min() >= 2 else None
    rest, test = train_test_split(ids, test_size=test_share, random_state=seed, stratify=stratify)
    y_rest = pd.Series(y, index=ids).loc[rest].to_numpy()
    stratify = y_rest if np.bincount(y_rest, minlength=2).min() >= 2 else None
    train, valid = train_test_split(rest, test_size=test_share, random_state=seed + 1, stratify=stratify)
    (as_of,) = sorted({_to_date(d) for d in frame["as_of"]})
    return Split(
        CUSTOMER,
        horizon_days,
        {w: (as_of,) for w in WINDOWS},
        {"train": tuple(sorted(train)), "valid": tuple(sorted(valid)), "test": tuple(sorted(test))},
    )


def make_split(
    labelled: pd.DataFrame, horizon_days: int, valid_dates: int, test_dates: int, test_share: float, seed: int
) -> Split:
    """Time split when there are several labelled as-of dates, customer split for exactly one."""
    dates = sorted({_to_date(d) for d in labelled["as_of"]})
    if not dates:
        raise ConfigError("no labelled rows: every as-of date is within features.horizon_days of the end of the data.")
    if len(dates) == 1:
        return customer_split(labelled, "churn", horizon_days, test_share, seed)
    return time_split(dates, horizon_days, valid_dates, test_dates)


def _to_timestamps(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.normalize()


def _to_date(value: Any) -> dt.date:
    return pd.Timestamp(value).date()


def _fmt(dates: Sequence[dt.date]) -> str:
    return ", ".join(d.isoformat() for d in dates) if len(dates) <= 6 else f"{dates[0]} .. {dates[-1]}"

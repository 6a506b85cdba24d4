"""Split the labelled feature rows into train / validation / test, with the history there is.

A label at ``t`` looks at ``(t, t+H]``, so a row at ``t`` with ``t + H`` after
the first date of a later window has seen that window's outcomes: the
**embargo** drops such dates. The split takes the first step that fits:

``time`` (out of time)
    test = the latest ``train.test_dates`` labelled as-of dates, validation
    = the ``train.valid_dates`` before them, training = the dates before
    those, with the embargo between the windows.
``time_test`` (test out of time, validation on held-out customers)
    too few dates for a validation window: test = the latest labelled
    date(s) (``train.test_dates``, fewer if none would be left to train
    on), training = the dates whose label window ends before the test; a
    share of their customers (``train.customer_holdout_share``) is held out
    for early stopping and calibration.
``customer`` (NOT out of time)
    no date survives the embargo (e.g. one snapshot, or a 180-day horizon
    on nine months): customers are held out across all labelled dates
    (test, then validation from the rest); a customer is on one side only,
    with all their dates. The test then says how well the model ranks
    *other customers* of the same period, not how it does on a later one.

Held-out customers are chosen by the stable hash of ``customer_id``
(:func:`omvald.buckets.customer_hash`) within each class of "ever churned",
so each side gets its share of churners, and the same customer lands on the
same side in every run (a later export keeps yesterday's test customers in
the test). :mod:`omvald.model.split_hints` says what data or settings would
allow a fuller step.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from omvald.buckets import customer_hash
from omvald.errors import ConfigError
from omvald.model.split_hints import fuller_split_hint, no_label_hint

log = logging.getLogger(__name__)

WINDOWS = ("train", "valid", "test")
STEP_TIME, STEP_TIME_TEST, STEP_CUSTOMER = "time", "time_test", "customer"
TIME = "time"
TIME_TEST = "time test, customer validation"
CUSTOMER_DATES = "customer (not out of time)"
CUSTOMER = "customer (single snapshot)"
STEP_TEXT = {
    STEP_TIME: "out of time: trained on earlier as-of dates, validated and tested on later ones",
    STEP_TIME_TEST: "test out of time (the latest as-of dates); validation on customers held out of training",
    STEP_CUSTOMER: "NOT out of time: tested on customers held out of training, at the same as-of dates",
}


@dataclass(frozen=True)
class Split:
    """Which rows belong to which window.

    ``step``: ``time``, ``time_test`` or ``customer`` (module docstring);
    ``strategy``: its short human name, as in ``metrics/*.json``. A window
    is a set of as-of dates (``dates``), narrowed to a set of customer ids
    where ``customers`` has the window. ``dropped_dates`` maps an ISO date
    to why it was left out (embargo); ``notes`` say why the split stepped
    down and what would allow a fuller one.
    """

    strategy: str
    horizon_days: int
    dates: dict[str, tuple[dt.date, ...]]
    customers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dropped_dates: dict[str, str] = field(default_factory=dict)
    step: str = STEP_TIME
    notes: tuple[str, ...] = ()

    @property
    def out_of_time(self) -> bool:
        """True when the test window is later than every training label window."""
        return self.step != STEP_CUSTOMER

    def mask(self, frame: pd.DataFrame, window: str) -> pd.Series:
        """Boolean mask of ``frame`` rows (``as_of``; ``customer_id`` for a customer window) in ``window``."""
        as_of = pd.to_datetime(frame["as_of"]).dt.normalize()
        in_dates = as_of.isin(pd.to_datetime(list(self.dates[window])))
        if window not in self.customers:
            return in_dates
        return in_dates & frame["customer_id"].astype(str).isin(set(self.customers[window]))

    def to_json(self, frame: pd.DataFrame | None = None) -> dict[str, Any]:
        """Plain-JSON description (dates as ISO strings); with ``frame``, rows and customers per window."""
        out: dict[str, Any] = {
            "split_strategy": self.strategy,
            "split_step": self.step,
            "split_description": STEP_TEXT[self.step],
            "out_of_time": self.out_of_time,
            "horizon_days": self.horizon_days,
            "dates": {w: [d.isoformat() for d in self.dates[w]] for w in WINDOWS},
            "dropped_dates": dict(self.dropped_dates),
            "notes": list(self.notes),
        }
        if self.customers:
            out["customers"] = {w: list(ids) for w, ids in self.customers.items()}
        if frame is not None:
            out["n_rows"] = {w: int(self.mask(frame, w).sum()) for w in WINDOWS}
            out["n_customers"] = {w: int(frame.loc[self.mask(frame, w), "customer_id"].nunique()) for w in WINDOWS}
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Split:
        strategy = obj["split_strategy"]
        return cls(
            strategy=strategy,
            horizon_days=int(obj["horizon_days"]),
            dates={w: tuple(dt.date.fromisoformat(d) for d in obj["dates"][w]) for w in WINDOWS},
            customers={w: tuple(ids) for w, ids in obj.get("customers", {}).items()},
            dropped_dates=dict(obj.get("dropped_dates", {})),
            step=obj.get("split_step", STEP_TIME if strategy == TIME else STEP_CUSTOMER),
            notes=tuple(obj.get("notes", ())),
        )


def time_windows(
    dates: Sequence[dt.date], horizon_days: int, valid_dates: int, test_dates: int
) -> tuple[dict[str, tuple[dt.date, ...]], dict[str, str]] | None:
    """The ``time`` step's windows and embargo-dropped dates, or None when they do not fit.

    Test = the latest ``test_dates`` dates; validation = the latest
    ``valid_dates`` dates with ``t + H <= first test date``; training =
    every date with ``t + H <= first validation date`` (at least one).
    """
    dates = sorted(set(dates))
    if len(dates) < test_dates + valid_dates + 1:
        return None
    horizon = dt.timedelta(days=horizon_days)
    test, before_test = dates[-test_dates:], dates[:-test_dates]
    ok_valid = [d for d in before_test if d + horizon <= test[0]]
    valid = ok_valid[-valid_dates:]
    if len(valid) < valid_dates:
        return None
    before_valid = ok_valid[: -len(valid)]
    train = [d for d in before_valid if d + horizon <= valid[0]]
    if not train:
        return None
    dropped = {d.isoformat(): _embargo("test", horizon_days, test[0]) for d in before_test[len(ok_valid) :]}
    dropped |= {d.isoformat(): _embargo("validation", horizon_days, valid[0]) for d in before_valid[len(train) :]}
    return {"train": tuple(train), "valid": tuple(valid), "test": tuple(test)}, dropped


def time_test_windows(
    dates: Sequence[dt.date], horizon_days: int, test_dates: int
) -> tuple[dict[str, tuple[dt.date, ...]], dict[str, str]] | None:
    """The ``time_test`` step's dates: the most test dates (<= ``test_dates``) that leave a training date.

    ``valid`` holds the training dates (its customers are chosen later).
    """
    dates = sorted(set(dates))
    horizon = dt.timedelta(days=horizon_days)
    for k in range(min(test_dates, len(dates) - 1), 0, -1):
        test = dates[-k:]
        train = [d for d in dates[:-k] if d + horizon <= test[0]]
        if train:
            dropped = {d.isoformat(): _embargo("test", horizon_days, test[0]) for d in dates[len(train) : -k]}
            return {"train": tuple(train), "valid": tuple(train), "test": tuple(test)}, dropped
    return None


def time_split(labelled_dates: Sequence[dt.date], horizon_days: int, valid_dates: int, test_dates: int) -> Split:
    """The ``time`` step on its own; :class:`ConfigError` when it does not fit (``make_split`` steps down instead)."""
    _check_counts(valid_dates, test_dates)
    dates = sorted({_to_date(d) for d in labelled_dates})
    found = time_windows(dates, horizon_days, valid_dates, test_dates)
    if found is None:
        raise ConfigError(
            f"after the {horizon_days}-day embargo, {len(dates)} labelled as-of date(s) ({_fmt(dates)}) do not "
            f"fit train.test_dates={test_dates} + train.valid_dates={valid_dates} + at least 1 training date."
        )
    windows, dropped = found
    return Split(TIME, horizon_days, windows, {}, dropped, STEP_TIME)


def held_out_customers(ever_positive: pd.Series, share: float) -> set[str]:
    """``share`` of the customers (index = customer id), per class of ``ever_positive``, by stable hash.

    Within each class the customers with the lowest hash are held out,
    ``round(share x class size)`` of them (halves round up).
    """
    ids = pd.Series(ever_positive.index.astype(str), index=ever_positive.index)
    table = pd.DataFrame({"id": ids.to_numpy(), "cls": ever_positive.to_numpy(), "key": customer_hash(ids).to_numpy()})
    out: set[str] = set()
    for _, group in table.groupby("cls", sort=True):
        n = int(np.floor(share * len(group) + 0.5))
        out.update(group.sort_values(["key", "id"], kind="stable")["id"].head(n))
    return out


def make_split(
    labelled: pd.DataFrame,
    horizon_days: int,
    valid_dates: int,
    test_dates: int,
    holdout_share: float,
    as_of_dates: Sequence[dt.date] | None = None,
    data_end: dt.date | None = None,
) -> Split:
    """Split the labelled rows (``customer_id, as_of, churn``) by the first step that fits (module docstring).

    ``as_of_dates`` (every as-of date, labelled or not) and ``data_end`` let
    the notes say what would allow a fuller split. Raises
    :class:`ConfigError` only when no step fits, saying what would.
    """
    _check_counts(valid_dates, test_dates)
    if not 0 < holdout_share < 0.5:
        raise ConfigError(f"train.customer_holdout_share must be in (0, 0.5), got {holdout_share}.")
    dates = sorted({_to_date(d) for d in labelled["as_of"]})
    calendar = sorted({_to_date(d) for d in as_of_dates}) if as_of_dates is not None else None
    if not dates:
        raise ConfigError(
            "no labelled rows: every as-of date is within features.horizon_days of the end of the data. "
            + no_label_hint(calendar, data_end, horizon_days)
        )
    found = time_windows(dates, horizon_days, valid_dates, test_dates)
    if found is not None:
        windows, dropped = found
        if dropped:
            log.info("split: embargo dropped %d as-of date(s): %s", len(dropped), ", ".join(sorted(dropped)))
        return Split(TIME, horizon_days, windows, {}, dropped, STEP_TIME)

    def fits(labelled_dates: list[dt.date], horizon: int) -> bool:
        return time_windows(labelled_dates, horizon, valid_dates, test_dates) is not None

    hint = fuller_split_hint(calendar, data_end, horizon_days, fits, valid_dates, test_dates)
    found = time_test_windows(dates, horizon_days, test_dates)
    if found is not None:
        windows, dropped = found
        rows = labelled.loc[_in_dates(labelled, windows["train"])]
        valid = held_out_customers(_ever_positive(rows), holdout_share)
        train = set(rows["customer_id"].astype(str)) - valid
        learnable = rows.loc[rows["customer_id"].astype(str).isin(train), "churn"].nunique() == 2
        if valid and train and learnable:  # else the customer step, which may still learn
            k = len(windows["test"])
            notes = [
                f"too few labelled as-of dates for an out-of-time validation window (train.valid_dates="
                f"{valid_dates} after the {horizon_days}-day embargo): {len(valid)} customers "
                f"(train.customer_holdout_share = {holdout_share}) of the training dates are held out instead."
            ]
            if k < test_dates:
                notes.append(f"the test window has {k} as-of date(s), not train.test_dates={test_dates}: more "
                             "would leave no training date before it.")  # fmt: skip
            customers = {"train": tuple(sorted(train)), "valid": tuple(sorted(valid))}
            notes = [*notes, hint] if hint else notes
            return _announce(Split(TIME_TEST, horizon_days, windows, customers, dropped, STEP_TIME_TEST, tuple(notes)))
    return _announce(customer_split(labelled, horizon_days, holdout_share, hint))


def customer_split(labelled: pd.DataFrame, horizon_days: int, holdout_share: float, hint: str = "") -> Split:
    """The ``customer`` step: test, then validation customers held out across every labelled date."""
    dates = tuple(sorted({_to_date(d) for d in labelled["as_of"]}))
    ever = _ever_positive(labelled)
    test = held_out_customers(ever, holdout_share)
    valid = held_out_customers(ever.drop(list(test)), holdout_share)
    train = set(ever.index.astype(str)) - test - valid
    if not (test and valid and train):
        raise ConfigError(
            f"{len(ever)} labelled customer(s) are too few to hold out test and validation customers "
            f"(train.customer_holdout_share = {holdout_share}); training needs at least 3 customers, both "
            "churners and stayers among them. Provide more customers or more history. " + hint
        )
    if len(dates) == 1:
        why = f"only one labelled as-of date ({dates[0]}), so no later date can test the model."
        strategy = CUSTOMER
    else:
        why = (
            f"no labelled as-of date ends its {horizon_days}-day label window before a later labelled date "
            f"({_fmt(list(dates))}), so no date can be tested out of time."
        )
        strategy = CUSTOMER_DATES
    note = (
        f"{why} The test is {len(test)} customers held out of training (train.customer_holdout_share = "
        f"{holdout_share}, all their dates): NOT out of time."
    )
    customers = {"train": tuple(sorted(train)), "valid": tuple(sorted(valid)), "test": tuple(sorted(test))}
    notes = (note, hint) if hint else (note,)
    return Split(strategy, horizon_days, {w: dates for w in WINDOWS}, customers, {}, STEP_CUSTOMER, notes)


def _announce(split: Split) -> Split:
    log.warning("split: %s (%s)", split.strategy, STEP_TEXT[split.step])
    for note in split.notes:
        log.warning("split: %s", note)
    return split


def _ever_positive(rows: pd.DataFrame) -> pd.Series:
    """Per customer (index, as str): 1 if churned at any of their labelled dates, else 0."""
    churn = pd.to_numeric(rows["churn"], errors="coerce").fillna(0).astype(int)
    return churn.groupby(rows["customer_id"].astype(str)).max().sort_index()


def _in_dates(frame: pd.DataFrame, dates: Sequence[dt.date]) -> pd.Series:
    return pd.to_datetime(frame["as_of"]).dt.normalize().isin(pd.to_datetime(list(dates)))


def _check_counts(valid_dates: int, test_dates: int) -> None:
    if valid_dates < 1 or test_dates < 1:
        raise ConfigError("train.valid_dates and train.test_dates must both be >= 1.")


def _embargo(window: str, horizon_days: int, first: dt.date) -> str:
    return f"embargo: label window reaches the {window} window (t + {horizon_days}d > {first})"


def _to_date(value: Any) -> dt.date:
    return pd.Timestamp(value).date()


def _fmt(dates: Sequence[dt.date]) -> str:
    return ", ".join(d.isoformat() for d in dates) if len(dates) <= 6 else f"{dates[0]} .. {dates[-1]}"

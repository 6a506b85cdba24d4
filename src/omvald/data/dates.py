"""The range of an export's dates: where the bulk of the data lies, not where its single oddest row lies.

One touchpoint typed as 2099-01-01, or an invoice with the placeholder
9999-12-31, must not move the end of data (and with it the scoring date)
by decades; a few invoices dated 1850 must not add a century of as-of
dates. Rows that lie outside the bulk are excluded with a counted warning
per table (:func:`exclude_outside_bulk`); docs/data-contract.md lists the rules:

- any date before :data:`EARLIEST` (1900-01-01) is a placeholder, not a date;
- the bulk of the dated values is cut where more than :data:`GAP_DAYS`
  days lie between one dated day and the next (not one dated row in any
  table in between) and at most :data:`STRAY_SHARE` of the values lie
  beyond that silence. The start is cut on activity
  (invoices and touchpoints, which start the data: signups may reach back
  years, sparsely); the end on every dated column (signup, churn, invoice,
  payment, touchpoint), as the end of data is defined.

The end is cut only when neither ``data.data_end`` nor a scoring ``--as-of``
fixes it: a date the user gives wins, and later rows are then kept as before.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from omvald.errors import DataContractError

EARLIEST = dt.date(1900, 1, 1)
# More than a quarter without one dated row in any table: a live business is never that quiet,
# while a business billed monthly (or quarterly) on one day has gaps of up to 31 (92) days.
GAP_DAYS = 92
STRAY_SHARE = 0.01
ACTIVITY = {"billing": "invoice_date", "touchpoints": "date"}  # the row date of each activity table
EVENTS = {
    "customers": ("signup_date", "churn_date"),
    "billing": ("invoice_date", "paid_date"),
    "touchpoints": ("date",),
}
N_EXAMPLES = 3


def day_numbers(s: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 (int64) of the non-missing values of a datetime column."""
    values = s.to_numpy()
    values = values[~np.isnat(values)]
    return values.astype("datetime64[D]").astype(np.int64)


def day_histogram(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(days, counts)``: the distinct day numbers of ``columns`` (sorted) and how many values fall on each."""
    columns = [c for c in columns if len(c)]
    if not columns:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lo, hi = min(int(c.min()) for c in columns), max(int(c.max()) for c in columns)
    counts = np.zeros(hi - lo + 1, np.int64)
    for c in columns:
        counts += np.bincount(c - lo, minlength=hi - lo + 1)
    days = np.flatnonzero(counts)
    return days + lo, counts[days]


def bulk_last_day(days: np.ndarray, counts: np.ndarray, gap_days: int = GAP_DAYS, share: float = STRAY_SHARE) -> int:
    """The last day of the bulk: the day before the first silence of more than ``gap_days`` days
    after which at most ``share`` of the values lie (``days[-1]`` when there is none)."""
    total = counts.sum()
    after = total - np.cumsum(counts)  # values after each day
    cut = np.flatnonzero((np.diff(days) > gap_days) & (after[:-1] <= share * total))
    return int(days[cut[0]] if len(cut) else days[-1])


def bulk_first_day(days: np.ndarray, counts: np.ndarray, gap_days: int = GAP_DAYS, share: float = STRAY_SHARE) -> int:
    """The first day of the bulk (:func:`bulk_last_day` read backwards in time)."""
    return -bulk_last_day(-days[::-1], counts[::-1], gap_days, share)


def _day(number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(number))


def _number(date: dt.date) -> int:
    return (date - dt.date(1970, 1, 1)).days


def data_bounds(tables: dict[str, pd.DataFrame], cut_end: bool) -> tuple[dt.date, dt.date | None]:
    """``(first, last)`` allowed day of the activity rows; ``last`` is ``None`` unless ``cut_end``."""
    earliest = _number(EARLIEST)
    start = [d[d >= earliest] for t, c in ACTIVITY.items() if c in tables[t] for d in [day_numbers(tables[t][c])]]
    events = [
        d[d >= earliest]
        for t, cols in EVENTS.items()
        for c in cols
        if c in tables[t]
        for d in [day_numbers(tables[t][c])]
    ]
    if not any(len(d) for d in start):
        start = events  # no activity at all: the data starts with the first signup
    first = _day(bulk_first_day(*day_histogram(start))) if any(len(d) for d in start) else EARLIEST
    last = _day(bulk_last_day(*day_histogram(events))) if cut_end and any(len(d) for d in events) else None
    return first, last


def exclude_outside_bulk(
    tables: dict[str, pd.DataFrame], cut_end: bool, path: str | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, int]], list[str]]:
    """Exclude dated values outside the bulk: ``(tables, {table: {what: count}}, warnings)``.

    Invoices and touchpoints outside ``[first, last]`` are dropped; payment and
    churn dates after ``last``, and payment dates before 1900, are read as
    empty: not known by the end of data. A signup or churn date before 1900, or a signup after the
    end, is a :class:`DataContractError`: a customer cannot be dropped without
    their history. ``cut_end=False`` keeps every row after the bulk (the user
    fixed the end). ``path`` (the customers file) only names the file in messages.
    """
    first, last = data_bounds(tables, cut_end)
    lo = pd.Timestamp(first)
    hi = pd.Timestamp(last) + pd.Timedelta(days=1) if last is not None else None
    customers = tables["customers"]
    hints = {
        "signup_date": "a placeholder for an unknown date? correct these dates",
        "churn_date": "a placeholder? leave churn_date empty for a customer who has not churned",
    }
    for column, hint in hints.items():
        if column in customers:
            _refuse(customers, column, customers[column] < pd.Timestamp(EARLIEST), "before 1900-01-01", hint, path)
    if hi is not None:
        _refuse(customers, "signup_date", customers["signup_date"] >= hi, f"after the end of the data ({last})",
                "correct these dates, or set data.data_end (rows after it are then kept)", path)  # fmt: skip
    out, excluded, warnings = dict(tables), {}, []
    for table, column in ACTIVITY.items():
        df = out[table]
        early = (df[column] < lo).to_numpy()
        late = (df[column] >= hi).to_numpy() if hi is not None else np.zeros(len(df), bool)
        if early.any() or late.any():
            out[table] = df[~(early | late)].reset_index(drop=True)
            excluded[table] = {"rows": int(early.sum() + late.sum())}
            parts = [f"{early.sum()} before {first}"] * bool(early.any()) + [f"{late.sum()} after {last}"] * bool(
                late.any()
            )
            warnings.append(
                f"{table}: {excluded[table]['rows']} row(s) dated outside the bulk of the data excluded "
                f"({', '.join(parts)}; e.g. {_examples(df.loc[early | late, column])}); set data.data_end to fix "
                "the end of data yourself"
            )
    for table, column in (("billing", "paid_date"), ("customers", "churn_date")):
        df = out[table]
        if column not in df:
            continue
        late = (df[column] < pd.Timestamp(EARLIEST)) | ((df[column] >= hi) if hi is not None else False)
        if late.any():
            out[table] = df.assign(**{column: df[column].mask(late)})
            excluded.setdefault(table, {})[column] = int(late.sum())
            warnings.append(
                f"{table}: {int(late.sum())} {column} value(s) outside the data's range read as empty (not known "
                f"by the end of data; e.g. {_examples(df.loc[late.to_numpy(), column])})"
            )
    return out, excluded, warnings


def _refuse(customers: pd.DataFrame, column: str, mask: pd.Series, problem: str, hint: str, path: str | None) -> None:
    if mask.any():
        rows = customers[mask.to_numpy()].head(5)
        examples = [
            f"customer_id={c!r}, {column}={d:%Y-%m-%d}" for c, d in zip(rows["customer_id"], rows[column], strict=True)
        ]
        problem = f"{column} {problem} ({int(mask.sum())} row(s)); {hint}"
        raise DataContractError("customers", column, problem, examples, path)


def _examples(values: pd.Series) -> str:
    days = sorted({f"{v:%Y-%m-%d}" for v in values.head(1000)})
    return ", ".join(days[:N_EXAMPLES])

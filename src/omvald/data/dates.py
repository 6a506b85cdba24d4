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
from dataclasses import dataclass, field

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


Histogram = tuple[np.ndarray, np.ndarray]  # (days, counts) of :func:`day_histogram`


def table_histograms(tables: dict[str, pd.DataFrame]) -> tuple[Histogram, Histogram]:
    """``(activity, events)``: day histograms (from 1900 on) of the activity rows and of every dated column.

    The histograms of two sets of customers add up (:func:`add_histograms`),
    so :func:`bounds` of the whole input can be found bucket by bucket.
    """
    earliest = _number(EARLIEST)
    start = [d[d >= earliest] for t, c in ACTIVITY.items() if c in tables[t] for d in [day_numbers(tables[t][c])]]
    events = [
        d[d >= earliest]
        for t, cols in EVENTS.items()
        for c in cols
        if c in tables[t]
        for d in [day_numbers(tables[t][c])]
    ]
    return day_histogram(start), day_histogram(events)


def add_histograms(histograms: list[Histogram]) -> Histogram:
    """The day histogram of the union of the values behind ``histograms``."""
    days = np.concatenate([np.zeros(0, np.int64), *(h[0] for h in histograms)])
    counts = np.concatenate([np.zeros(0, np.int64), *(h[1] for h in histograms)])
    merged, where = np.unique(days, return_inverse=True)
    return merged, np.bincount(where, weights=counts, minlength=len(merged)).astype(np.int64)


def bounds(activity: Histogram, events: Histogram, cut_end: bool) -> tuple[dt.date, dt.date | None]:
    """``(first, last)`` allowed day from the histograms of :func:`table_histograms`; ``last`` is ``None`` unless ``cut_end``."""
    start = activity if len(activity[0]) else events  # no activity at all: the data starts with the first signup
    first = _day(bulk_first_day(*start)) if len(start[0]) else EARLIEST
    last = _day(bulk_last_day(*events)) if cut_end and len(events[0]) else None
    return first, last


def data_bounds(tables: dict[str, pd.DataFrame], cut_end: bool) -> tuple[dt.date, dt.date | None]:
    """``(first, last)`` allowed day of the activity rows; ``last`` is ``None`` unless ``cut_end``."""
    return bounds(*table_histograms(tables), cut_end)


# The refusals of exclude_outside_bulk, in the order they are checked: (column, problem, hint).
HINTS = {
    "signup_date": "a placeholder for an unknown date? correct these dates",
    "churn_date": "a placeholder? leave churn_date empty for a customer who has not churned",
}
AFTER_END_HINT = "correct these dates, or set data.data_end (rows after it are then kept)"


@dataclass
class Refusal:
    """Customers whose date makes them unusable: ``count`` rows, the first five shown in ``examples``."""

    column: str
    problem: str
    hint: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, other: Refusal) -> Refusal:
        """The refusal of ``self``'s customers followed by ``other``'s (e.g. the next bucket)."""
        return Refusal(self.column, self.problem, self.hint, self.count + other.count,
                       (self.examples + other.examples)[:5])  # fmt: skip

    def raise_if_any(self, path: str | None) -> None:
        if self.count:
            problem = f"{self.column} {self.problem} ({self.count} row(s)); {self.hint}"
            raise DataContractError("customers", self.column, problem, self.examples, path)


def refusals(customers: pd.DataFrame, last: dt.date | None) -> list[Refusal]:
    """The checks of :func:`exclude_outside_bulk` that refuse a customer, in order, with their counts."""
    checks = [
        (column, customers[column] < pd.Timestamp(EARLIEST), "before 1900-01-01", hint)
        for column, hint in HINTS.items()
        if column in customers
    ]
    if last is not None:
        hi = pd.Timestamp(last) + pd.Timedelta(days=1)
        checks.append(("signup_date", customers["signup_date"] >= hi, f"after the end of the data ({last})",
                       AFTER_END_HINT))  # fmt: skip
    out = []
    for column, mask, problem, hint in checks:
        rows = customers[mask.to_numpy()].head(5)
        examples = [
            f"customer_id={c!r}, {column}={d:%Y-%m-%d}" for c, d in zip(rows["customer_id"], rows[column], strict=True)
        ]
        out.append(Refusal(column, problem, hint, int(mask.sum()), examples))
    return out


@dataclass
class Exclusions:
    """What :func:`exclude_rows` took out: per ``(table, what)`` a count and the first excluded values in order.

    ``what`` is ``"early"``/``"late"`` for activity rows (their values: ``"rows"``), or the column read as empty.
    """

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    examples: dict[tuple[str, str], pd.Series] = field(default_factory=dict)

    def add(self, other: Exclusions) -> Exclusions:
        """The exclusions of ``self``'s customers followed by ``other``'s."""
        counts = {
            k: self.counts.get(k, 0) + other.counts.get(k, 0) for k in dict.fromkeys([*self.counts, *other.counts])
        }
        examples = {}
        for k in dict.fromkeys([*self.examples, *other.examples]):
            parts = [p for p in (self.examples.get(k), other.examples.get(k)) if p is not None]
            examples[k] = pd.concat(parts).head(N_EXAMPLE_VALUES) if len(parts) > 1 else parts[0]
        return Exclusions(counts, examples)

    def report(self, first: dt.date, last: dt.date | None) -> tuple[dict[str, dict[str, int]], list[str]]:
        """``({table: {what: count}}, warnings)`` as :func:`exclude_outside_bulk` reports them."""
        excluded: dict[str, dict[str, int]] = {}
        warnings = []
        for table in ACTIVITY:
            early, late = self.counts.get((table, "early"), 0), self.counts.get((table, "late"), 0)
            if not (early or late):
                continue
            excluded[table] = {"rows": early + late}
            parts = [f"{early} before {first}"] * bool(early) + [f"{late} after {last}"] * bool(late)
            values = self.examples[(table, "rows")]
            warnings.append(
                f"{table}: {excluded[table]['rows']} row(s) dated outside the bulk of the data excluded "
                f"({', '.join(parts)}; e.g. {_examples(values)}); set data.data_end to fix "
                "the end of data yourself"
            )
        for table, column in MASKED:
            n = self.counts.get((table, column), 0)
            if n:
                excluded.setdefault(table, {})[column] = n
                warnings.append(
                    f"{table}: {n} {column} value(s) outside the data's range read as empty (not known "
                    f"by the end of data; e.g. {_examples(self.examples[(table, column)])})"
                )
        return excluded, warnings


MASKED = (("billing", "paid_date"), ("customers", "churn_date"))  # dates read as empty outside the range
N_EXAMPLE_VALUES = 1000  # excluded values the examples are drawn from (the first ones in table order)


def exclude_rows(
    tables: dict[str, pd.DataFrame], first: dt.date, last: dt.date | None
) -> tuple[dict[str, pd.DataFrame], Exclusions]:
    """Drop invoices and touchpoints outside ``[first, last]``; read payment and churn dates after ``last``
    (and payment dates before 1900) as empty. Returns the tables and what was taken out."""
    lo = pd.Timestamp(first)
    hi = pd.Timestamp(last) + pd.Timedelta(days=1) if last is not None else None
    out, found = dict(tables), Exclusions()
    for table, column in ACTIVITY.items():
        df = out[table]
        early = (df[column] < lo).to_numpy()
        late = (df[column] >= hi).to_numpy() if hi is not None else np.zeros(len(df), bool)
        if early.any() or late.any():
            out[table] = df[~(early | late)].reset_index(drop=True)
            for what, mask in (("early", early), ("late", late)):
                if mask.any():
                    found.counts[(table, what)] = int(mask.sum())
            found.examples[(table, "rows")] = df.loc[early | late, column].head(N_EXAMPLE_VALUES)
    for table, column in MASKED:
        df = out[table]
        if column not in df:
            continue
        late = (df[column] < pd.Timestamp(EARLIEST)) | ((df[column] >= hi) if hi is not None else False)
        if late.any():
            out[table] = df.assign(**{column: df[column].mask(late)})
            found.counts[(table, column)] = int(late.sum())
            found.examples[(table, column)] = df.loc[late.to_numpy(), column].head(N_EXAMPLE_VALUES)
    return out, found


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
    for refusal in refusals(tables["customers"], last):
        refusal.raise_if_any(path)
    out, found = exclude_rows(tables, first, last)
    excluded, warnings = found.report(first, last)
    return out, excluded, warnings


def _examples(values: pd.Series) -> str:
    days = sorted({f"{v:%Y-%m-%d}" for v in values.head(N_EXAMPLE_VALUES)})
    return ", ".join(days[:N_EXAMPLES])

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
from typing import Any

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
EXAMPLE_ROWS = 1000  # the examples are the earliest days among the first this many excluded values


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


def date_histograms(tables: dict[str, pd.DataFrame]) -> dict[str, dict[int, int]]:
    """``{"activity": {day: count}, "events": {day: count}}`` of the dates from 1900-01-01 on (day numbers).

    What the bounds are cut on (:func:`bounds_of`). The histograms of
    disjoint sets of customers add up (:func:`add_histograms`), so an engine
    that sees one bucket at a time finds the whole input's bounds.
    """
    earliest = _number(EARLIEST)

    def histogram(columns: list[np.ndarray]) -> dict[int, int]:
        days, counts = day_histogram([d[d >= earliest] for d in columns])
        return dict(zip(days.tolist(), counts.tolist(), strict=True))

    activity = [day_numbers(tables[t][c]) for t, c in ACTIVITY.items() if c in tables[t]]
    events = [day_numbers(tables[t][c]) for t, cols in EVENTS.items() for c in cols if c in tables[t]]
    return {"activity": histogram(activity), "events": histogram(events)}


def add_histograms(parts: list[dict[str, dict]]) -> dict[str, dict[int, int]]:
    """The :func:`date_histograms` of the union of disjoint sets of customers (keys may be JSON text)."""
    total: dict[str, dict[int, int]] = {"activity": {}, "events": {}}
    for part in parts:
        for kind, histogram in part.items():
            for day, n in histogram.items():
                total[kind][int(day)] = total[kind].get(int(day), 0) + int(n)
    return total


def bounds_of(histograms: dict[str, dict[int, int]], cut_end: bool) -> tuple[dt.date, dt.date | None]:
    """``(first, last)`` allowed day of the activity rows from :func:`date_histograms`; ``last`` is ``None``
    unless ``cut_end``."""

    def arrays(histogram: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
        days = np.array(sorted(histogram), dtype=np.int64)
        return days, np.array([histogram[d] for d in days.tolist()], dtype=np.int64)

    activity, events = arrays(histograms["activity"]), arrays(histograms["events"])
    start = activity if len(activity[0]) else events  # no activity at all: the data starts with the first signup
    first = _day(bulk_first_day(*start)) if len(start[0]) else EARLIEST
    last = _day(bulk_last_day(*events)) if cut_end and len(events[0]) else None
    return first, last


def data_bounds(tables: dict[str, pd.DataFrame], cut_end: bool) -> tuple[dt.date, dt.date | None]:
    """``(first, last)`` allowed day of the activity rows; ``last`` is ``None`` unless ``cut_end``."""
    return bounds_of(date_histograms(tables), cut_end)


def exclude_outside_bulk(
    tables: dict[str, pd.DataFrame],
    cut_end: bool,
    path: str | None = None,
    bounds: tuple[dt.date, dt.date | None] | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, int]], list[str]]:
    """Exclude dated values outside the bulk: ``(tables, {table: {what: count}}, warnings)``.

    Invoices and touchpoints outside ``[first, last]`` are dropped; payment and
    churn dates after ``last``, and payment dates before 1900, are read as
    empty: not known by the end of data. A signup or churn date before 1900, or a signup after the
    end, is a :class:`DataContractError`: a customer cannot be dropped without
    their history. ``cut_end=False`` keeps every row after the bulk (the user
    fixed the end). ``path`` (the customers file) only names the file in messages.
    ``bounds``: the whole input's ``(first, last)`` (:func:`bounds_of`), for
    an engine that excludes one bucket at a time; by default they come from ``tables``.
    """
    first, last = bounds if bounds is not None else data_bounds(tables, cut_end)
    check_customer_dates(tables["customers"], last, path)
    out, facts = excluded_rows(tables, first, last)
    excluded, warnings = exclusion_warnings(facts, first, last)
    return out, excluded, warnings


# The refusals of check_customer_dates in the order they are checked, numbered after every check of
# omvald.data.validate.validate_rows: an engine that checks bucket by bucket reports the one the
# whole table reports first (omvald.spark.validate.merge_errors).
REFUSAL_STEP = 10_000


def check_customer_dates(customers: pd.DataFrame, last: dt.date | None, path: str | None = None) -> None:
    """Refuse signup or churn dates before 1900 and (with ``last``) signups after the end of data."""
    hints = {
        "signup_date": "a placeholder for an unknown date? correct these dates",
        "churn_date": "a placeholder? leave churn_date empty for a customer who has not churned",
    }
    for step, (column, hint) in enumerate(hints.items(), start=1):
        if column in customers:
            mask = customers[column] < pd.Timestamp(EARLIEST)
            _refuse(customers, column, mask, "before 1900-01-01", hint, path, REFUSAL_STEP + step)
    if last is not None:
        hi = pd.Timestamp(last) + pd.Timedelta(days=1)
        _refuse(customers, "signup_date", customers["signup_date"] >= hi, f"after the end of the data ({last})",
                "correct these dates, or set data.data_end (rows after it are then kept)", path,
                REFUSAL_STEP + 3)  # fmt: skip


def excluded_rows(
    tables: dict[str, pd.DataFrame], first: dt.date, last: dt.date | None
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, Any]]]:
    """Drop activity rows outside ``[first, last]``, blank payment and churn dates outside the data.

    Returns the tables and what was excluded: ``{table: {"early": n, "late": n,
    "days": [...]}}`` for invoices and touchpoints, ``{"table.column": {"n": n,
    "days": [...]}}`` for payment and churn dates; ``days`` are the first
    :data:`EXAMPLE_ROWS` excluded dates in table order (ISO), from which
    warnings take their examples. Facts of disjoint sets of customers add up
    in table order (:func:`add_exclusion_facts`).
    """
    lo = pd.Timestamp(first)
    hi = pd.Timestamp(last) + pd.Timedelta(days=1) if last is not None else None
    out, facts = dict(tables), {}
    for table, column in ACTIVITY.items():
        df = out[table]
        early = (df[column] < lo).to_numpy()
        late = (df[column] >= hi).to_numpy() if hi is not None else np.zeros(len(df), bool)
        if early.any() or late.any():
            out[table] = df[~(early | late)].reset_index(drop=True)
            facts[table] = {
                "early": int(early.sum()),
                "late": int(late.sum()),
                "days": _days(df.loc[early | late, column]),
            }
    for table, column in (("billing", "paid_date"), ("customers", "churn_date")):
        df = out[table]
        if column not in df:
            continue
        late = (df[column] < pd.Timestamp(EARLIEST)) | ((df[column] >= hi) if hi is not None else False)
        if late.any():
            out[table] = df.assign(**{column: df[column].mask(late)})
            facts[f"{table}.{column}"] = {"n": int(late.sum()), "days": _days(df.loc[late.to_numpy(), column])}
    return out, facts


def add_exclusion_facts(parts: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The :func:`excluded_rows` facts of disjoint sets of customers given in table order (e.g. buckets)."""
    total: dict[str, dict[str, Any]] = {}
    for part in parts:
        for key, fact in part.items():
            into = total.setdefault(key, {k: (0 if k != "days" else []) for k in fact})
            for k, v in fact.items():
                into[k] = (into[k] + v)[:EXAMPLE_ROWS] if k == "days" else into[k] + v
    return total


def exclusion_warnings(
    facts: dict[str, dict[str, Any]], first: dt.date, last: dt.date | None
) -> tuple[dict[str, dict[str, int]], list[str]]:
    """``({table: {"rows" or a date column: count}}, warnings)`` of the :func:`excluded_rows` facts."""
    excluded: dict[str, dict[str, int]] = {}
    warnings = []
    for table in ACTIVITY:
        if table not in facts:
            continue
        early, late = facts[table]["early"], facts[table]["late"]
        excluded[table] = {"rows": early + late}
        parts = [f"{early} before {first}"] * bool(early) + [f"{late} after {last}"] * bool(late)
        warnings.append(
            f"{table}: {early + late} row(s) dated outside the bulk of the data excluded "
            f"({', '.join(parts)}; e.g. {_examples(facts[table]['days'])}); set data.data_end to fix "
            "the end of data yourself"
        )
    for table, column in (("billing", "paid_date"), ("customers", "churn_date")):
        fact = facts.get(f"{table}.{column}")
        if fact is None:
            continue
        excluded.setdefault(table, {})[column] = fact["n"]
        warnings.append(
            f"{table}: {fact['n']} {column} value(s) outside the data's range read as empty (not known "
            f"by the end of data; e.g. {_examples(fact['days'])})"
        )
    return excluded, warnings


def _refuse(
    customers: pd.DataFrame, column: str, mask: pd.Series, problem: str, hint: str, path: str | None, step: int
) -> None:
    if mask.any():
        rows = customers[mask.to_numpy()].head(5)
        examples = [
            f"customer_id={c!r}, {column}={d:%Y-%m-%d}" for c, d in zip(rows["customer_id"], rows[column], strict=True)
        ]
        problem = f"{column} {problem} ({int(mask.sum())} row(s)); {hint}"
        err = DataContractError("customers", column, problem, examples, path)
        err.step, err.sorted_rows = step, True  # type: ignore[attr-defined]
        raise err


def _days(values: pd.Series) -> list[str]:
    return [f"{v:%Y-%m-%d}" for v in values.head(EXAMPLE_ROWS)]


def _examples(days: list[str]) -> str:
    return ", ".join(sorted(set(days))[:N_EXAMPLES])

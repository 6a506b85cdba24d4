"""The data profile (issue #9): what the validated tables hold and what churn labels they give.

Pure: interim tables + meta in, a JSON-ready dict out. ``omvald validate``
prints it and writes ``reports/profile.json``; the HTML report and MLflow
show the same dict.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from omvald.data.contract import OPTIONAL, ROW_DATE, TABLES, column_kind


class Profile(TypedDict):
    """JSON-ready profile; every date is an ISO string."""

    customers: int
    contractual: bool
    churn_definition: str
    horizon_days: int
    lookback_days: int
    data_start: str
    data_end: str
    tables: dict[str, dict[str, Any]]
    label_rates: list[dict[str, Any]]
    warnings: list[str]
    personal_data_dropped: dict[str, dict[str, str]]  # {table: {column: reason}}, never values
    dates_excluded: dict[str, dict[str, int]]  # {table: {"rows" or a date column: count}} outside the bulk


def build_profile(
    tables: dict[str, pd.DataFrame],
    meta: dict[str, Any],
    warnings: list[str],
    horizon_days: int,
    lookback_days: int,
) -> Profile:
    """Profile of the validated tables; label rates use horizon ``H`` and lookback ``L`` in days."""
    facts = {t: table_facts(t, tables[t]) for t in TABLES}
    dates = label_dates(facts, dt.date.fromisoformat(meta["data_end"]), horizon_days)
    counts = label_counts(tables, bool(meta["contractual"]), dates, horizon_days, lookback_days)
    return profile_from_facts(facts, meta, warnings, horizon_days, lookback_days, dates, counts)


def profile_from_facts(
    facts: dict[str, TableFacts],
    meta: dict[str, Any],
    warnings: list[str],
    horizon_days: int,
    lookback_days: int,
    dates: list[dt.date],
    counts: tuple[np.ndarray, np.ndarray],
) -> Profile:
    """The profile from each table's :class:`TableFacts` and the label counts at ``dates`` (:func:`label_counts`)."""
    contractual = bool(meta["contractual"])
    definition = (
        f"contractual: churned at t = churn_date in (t, t+{horizon_days}d]; "
        "population = signed up on or before t and not churned by t"
        if contractual
        else f"non-contractual: churned at t = no invoice in (t, t+{horizon_days}d]; "
        f"population = at least one invoice in (t-{lookback_days}d, t]"
    )
    return Profile(
        customers=facts["customers"].rows,
        contractual=contractual,
        churn_definition=definition,
        horizon_days=horizon_days,
        lookback_days=lookback_days,
        data_start=meta["data_start"],
        data_end=meta["data_end"],
        tables={t: _table_profile(t, facts[t], meta) for t in TABLES},
        label_rates=label_rates_from_counts(dates, *counts),
        warnings=list(warnings),
        personal_data_dropped=meta.get("personal_data_dropped", {}),
        dates_excluded=meta.get("dates_excluded", {}),
    )


@dataclass(frozen=True)
class TableFacts:
    """What the profile says about one validated table; the facts of two sets of customers add up (:meth:`add`)."""

    rows: int
    first: pd.Timestamp | None  # earliest and latest row date
    last: pd.Timestamp | None
    per_month: dict[str, int]  # "YYYY-MM" -> rows
    columns: tuple[str, ...]

    def add(self, other: TableFacts) -> TableFacts:
        firsts = [d for d in (self.first, other.first) if d is not None]
        lasts = [d for d in (self.last, other.last) if d is not None]
        months = dict(self.per_month)
        for month, n in other.per_month.items():
            months[month] = months.get(month, 0) + n
        return TableFacts(
            self.rows + other.rows,
            min(firsts) if firsts else None,
            max(lasts) if lasts else None,
            dict(sorted(months.items())),
            self.columns,
        )


def table_facts(table: str, df: pd.DataFrame) -> TableFacts:
    """The :class:`TableFacts` of a validated table (or of one bucket of it)."""
    dates = df[ROW_DATE[table]].dropna()
    months = dates.to_numpy().astype("datetime64[M]")
    per_month = pd.Series(months).value_counts().sort_index()
    return TableFacts(
        rows=len(df),
        first=dates.min() if len(dates) else None,
        last=dates.max() if len(dates) else None,
        per_month={f"{m:%Y-%m}": int(n) for m, n in per_month.items()},
        columns=tuple(df.columns),
    )


def _table_profile(table: str, facts: TableFacts, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "rows": facts.rows,
        "date_column": ROW_DATE[table],
        "first_date": facts.first.date().isoformat() if facts.first is not None else None,
        "last_date": facts.last.date().isoformat() if facts.last is not None else None,
        "rows_per_month": dict(facts.per_month),
        "optional_columns_present": [c for c in OPTIONAL[table] if c in facts.columns],
        "optional_columns_absent": [c for c in OPTIONAL[table] if c not in facts.columns],
        "attributes": [c for c in facts.columns if column_kind(table, c) is None and c not in ("hash_slot", "date")],
        "duplicates_dropped": int(meta.get("duplicates_dropped", {}).get(table, 0)),
    }


def monthly_as_of_dates(data_start: dt.date, data_end: dt.date, horizon_days: int) -> list[dt.date]:
    """Month ends ``t`` from the first one on or after ``data_start`` with ``t + H <= data_end``."""
    last = data_end - dt.timedelta(days=horizon_days)
    if last < data_start:
        return []
    ends = pd.date_range(data_start, last, freq="ME")
    return [d.date() for d in ends]


def label_dates(facts: dict[str, TableFacts], data_end: dt.date, horizon_days: int) -> list[dt.date]:
    """The as-of dates of the label rates: month ends from the first recorded activity with ``t + H <= data_end``.

    Label rates only mean something where activity is recorded: signups
    reach back years before the first invoice of an export.
    """
    activity = [facts[t].first.date() for t in ("billing", "touchpoints") if facts[t].first is not None]
    customers = facts["customers"].first
    start = min(activity) if activity else (customers.date() if customers is not None else data_end)
    return monthly_as_of_dates(start, data_end, horizon_days)


def label_rates(
    tables: dict[str, pd.DataFrame], contractual: bool, data_end: dt.date, horizon_days: int, lookback_days: int
) -> list[dict[str, Any]]:
    """Churn label rate at every monthly as-of date whose horizon is observed.

    Contractual: population at t = ``signup_date <= t`` and no churn by t;
    churned = ``churn_date`` in (t, t+H]. Non-contractual: population = an
    invoice in (t-L, t]; churned = no invoice in (t, t+H].
    """
    facts = {t: table_facts(t, tables[t]) for t in TABLES}
    dates = label_dates(facts, data_end, horizon_days)
    return label_rates_from_counts(dates, *label_counts(tables, contractual, dates, horizon_days, lookback_days))


def label_counts(
    tables: dict[str, pd.DataFrame], contractual: bool, as_of: list[dt.date], horizon_days: int, lookback_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(population, churners)`` at each date of ``as_of``; the counts of two sets of customers add up."""
    if not as_of:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    customers, billing = tables["customers"], tables["billing"]
    t = np.array(as_of, dtype="datetime64[D]")
    if contractual:
        signup = customers["signup_date"].to_numpy().astype("datetime64[D]")[:, None]
        churn = customers["churn_date"].to_numpy().astype("datetime64[D]")[:, None]
        churned_by_t = ~np.isnat(churn) & (churn <= t)
        population = (signup <= t) & ~churned_by_t
        churned = population & (churn <= t + np.timedelta64(horizon_days, "D"))
    else:
        population, churned = _non_contractual(billing, t, horizon_days, lookback_days)
    return population.sum(axis=0), churned.sum(axis=0)


def label_rates_from_counts(as_of: list[dt.date], population: np.ndarray, churners: np.ndarray) -> list[dict[str, Any]]:
    """One ``{as_of, population, churners, churn_rate}`` per date."""
    return [
        {
            "as_of": d.isoformat(),
            "population": int(p),
            "churners": int(c),
            "churn_rate": round(float(c / p), 6) if p else None,
        }
        for d, p, c in zip(as_of, population, churners, strict=True)
    ]


def _non_contractual(billing: pd.DataFrame, t: np.ndarray, horizon_days: int, lookback_days: int):
    """(customers x as-of) masks from invoice days, by interval counting: no per-date loop over rows."""
    # Interim billing is sorted by customer, so a customer's code is a run number (cheaper than factorize).
    ids = pa.chunked_array([pa.array(billing["customer_id"].array)]).combine_chunks()
    changed = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)).to_numpy(zero_copy_only=False)
    codes = np.concatenate([[0], np.cumsum(changed)]) if len(ids) else np.zeros(0, dtype=np.int64)
    n, k = codes.max() + 1 if len(codes) else 0, len(t)
    day = billing["invoice_date"].to_numpy().astype("datetime64[D]")

    def covered(lo_day: np.ndarray, hi_day: np.ndarray) -> np.ndarray:
        # Invoice covers the as-of dates t with lo_day <= t < hi_day.
        lo, hi = np.searchsorted(t, lo_day, "left"), np.searchsorted(t, hi_day, "left")
        flat = np.concatenate([codes * (k + 1) + lo, codes * (k + 1) + hi])
        weight = np.concatenate([np.ones(len(lo)), -np.ones(len(hi))])
        diff = np.bincount(flat, weights=weight, minlength=n * (k + 1)).reshape(n, k + 1)
        return np.cumsum(diff, axis=1)[:, :k] > 0

    # invoice d in (t-L, t]  <=>  d <= t < d+L ;  invoice d in (t, t+H]  <=>  d-H <= t < d
    active = covered(day, day + np.timedelta64(lookback_days, "D"))
    billed_next = covered(day - np.timedelta64(horizon_days, "D"), day)
    return active, active & ~billed_next

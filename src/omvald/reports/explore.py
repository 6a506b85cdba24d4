"""What ``notebooks/01-explore.ipynb`` shows: pure functions over the interim and feature tables.

The notebook only loads (:func:`load_project`), calls these and plots; any
number it shows can be recomputed (and tested) from here. Every function
returns aggregates (counts and rates), never customer rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from omvald.model.metrics import TENURE_COHORTS

# Customer-initiated touchpoints (the active/passive rule's evidence): inbound, or a reaction to an outbound message.
REACTIONS = ("opened", "clicked", "login", "survey", "nps", "complaint", "contact", "downgrade_request")


@dataclass(frozen=True)
class ExploreData:
    """The tables the exploration reads (personal columns were dropped by `omvald validate`)."""

    customers: pd.DataFrame
    billing: pd.DataFrame
    touchpoints: pd.DataFrame
    training: pd.DataFrame


def load_project(project_dir: str | Path) -> ExploreData:
    """``data/interim/*.parquet`` and ``data/features/training.parquet`` of a project folder."""
    root = Path(project_dir)
    interim = root / "data" / "interim"
    missing = [p for p in (interim / "customers.parquet", root / "data/features/training.parquet") if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"{', '.join(map(str, missing))} not found; run `dvc repro features` (or the pipeline) in {root}."
        )
    tp = interim / "touchpoints.parquet"
    return ExploreData(
        customers=pd.read_parquet(interim / "customers.parquet"),
        billing=pd.read_parquet(interim / "billing.parquet"),
        touchpoints=pd.read_parquet(tp) if tp.exists() else pd.DataFrame(columns=["customer_id", "date", "event"]),
        training=pd.read_parquet(root / "data/features/training.parquet"),
    )


def customers_over_time(customers: pd.DataFrame) -> pd.DataFrame:
    """Per month: ``customers`` at month end, ``signups`` and ``churns`` during the month.

    A customer counts at month end ``m`` when ``signup_date <= m`` and
    (``churn_date`` empty or ``> m``), the contract's population rule.
    """
    signup = pd.to_datetime(customers["signup_date"])
    churn = (
        pd.to_datetime(customers["churn_date"])
        if "churn_date" in customers
        else pd.Series(pd.NaT, index=customers.index)
    )
    last = max(signup.max(), churn.max() if churn.notna().any() else signup.max())
    months = pd.date_range(
        signup.min().to_period("M").to_timestamp("M"), last.to_period("M").to_timestamp("M"), freq="ME"
    )
    signups = signup.dt.to_period("M").value_counts()
    churns = churn.dropna().dt.to_period("M").value_counts()
    s_sorted, c_sorted = np.sort(signup.to_numpy()), np.sort(churn.dropna().to_numpy())
    active = [
        np.searchsorted(s_sorted, m.to_datetime64(), "right") - np.searchsorted(c_sorted, m.to_datetime64(), "right")
        for m in months
    ]
    periods = months.to_period("M")
    return pd.DataFrame(
        {
            "month": periods.to_timestamp(),
            "customers": active,
            "signups": [int(signups.get(p, 0)) for p in periods],
            "churns": [int(churns.get(p, 0)) for p in periods],
        }
    )


def tenure_cohort(tenure_months: pd.Series) -> pd.Series:
    """``<12``, ``12-24``, ``24+`` (the evaluation's cohorts, :data:`omvald.model.metrics.TENURE_COHORTS`)."""
    edges = [lo for _, lo, _ in TENURE_COHORTS] + [math.inf]
    labels = [name for name, _, _ in TENURE_COHORTS]
    return pd.cut(pd.to_numeric(tenure_months, errors="coerce"), bins=edges, labels=labels, right=False)


def label_rates_by(training: pd.DataFrame, by: str | pd.Series) -> pd.DataFrame:
    """Churn and phase-out rates of the labelled (customer, as-of) rows by a column (or a Series aligned to them).

    ``rows``: labelled rows; ``churn_rate``: share churned within the
    horizon; ``phase_out_rate``: share phasing out among those who stayed.
    """
    labelled = training[training["churn"].notna()]
    key = labelled[by] if isinstance(by, str) else pd.Series(by, index=training.index).loc[labelled.index]
    key = key.astype("str").rename(by if isinstance(by, str) else (key.name or "group"))
    grouped = labelled.groupby(key, observed=True, sort=True)
    out = pd.DataFrame({"rows": grouped.size(), "churn_rate": grouped["churn"].mean()})
    if "phase_out" in labelled:
        out["phase_out_rate"] = grouped["phase_out"].mean()
    return out.reset_index()


def price_change_vs_churn(
    training: pd.DataFrame,
    feature: str = "price_shock_pct_3m",
    bins: tuple[float, ...] = (-math.inf, -0.01, 0.01, 5, 10, 20, math.inf),
) -> pd.DataFrame:
    """Churn rate by the size of the recent invoice change (``feature`` in %): does a price rise precede churn?"""
    if feature not in training:
        return pd.DataFrame(columns=["change", "rows", "churn_rate", "phase_out_rate"])
    change = pd.cut(pd.to_numeric(training[feature], errors="coerce"), bins=list(bins), right=False)
    labels = change.astype("str").replace({"nan": "unknown"}).rename("change")
    return label_rates_by(training, labels)


def touchpoint_activity(touchpoints: pd.DataFrame, segments: pd.Series) -> pd.DataFrame:
    """Per month and segment: ``customers`` with a touchpoint, ``events_per_customer``, ``customer_initiated_share``.

    ``segments``: segment per customer (index ``customer_id``), e.g. the latest from the feature table.
    Customer-initiated = direction ``inbound`` or an event in :data:`REACTIONS`.
    """
    if touchpoints.empty:
        return pd.DataFrame(
            columns=["month", "segment", "customers", "events_per_customer", "customer_initiated_share"]
        )
    tp = touchpoints[
        [
            "customer_id",
            "date" if "date" in touchpoints else "timestamp",
            "event",
            *(["direction"] if "direction" in touchpoints else []),
        ]
    ]
    tp = tp.assign(
        month=pd.to_datetime(tp.iloc[:, 1]).dt.to_period("M").dt.to_timestamp(),
        segment=tp["customer_id"].map(segments).fillna("unknown").astype("str"),
        initiated=tp["event"].astype("str").isin(REACTIONS)
        | (tp["direction"].astype("str") == "inbound" if "direction" in tp else False),
    )
    g = tp.groupby(["month", "segment"], sort=True)
    out = pd.DataFrame(
        {"customers": g["customer_id"].nunique(), "events": g.size(), "customer_initiated_share": g["initiated"].mean()}
    )
    out["events_per_customer"] = out.pop("events") / out["customers"]
    return out.reset_index()


def latest_segment(training: pd.DataFrame) -> pd.Series:
    """Segment per customer at their latest as-of date (index ``customer_id``)."""
    latest = training.sort_values("as_of", kind="stable").drop_duplicates("customer_id", keep="last")
    return latest.set_index("customer_id")["segment"].astype("str")


def bar_chart(df: pd.DataFrame, x: str, ys: list[str], title: str, percent: bool = True) -> Figure:
    """Grouped bars of rates (``ys``) per ``x`` value, labelled with the rows behind each group when present."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    width = 0.8 / max(len(ys), 1)
    pos = np.arange(len(df))
    for i, y in enumerate(ys):
        ax.bar(pos + i * width, df[y] * (100 if percent else 1), width, label=y.replace("_", " "))
    labels = [f"{v}\n(n={n:,})" for v, n in zip(df[x], df["rows"], strict=True)] if "rows" in df else df[x].astype(str)
    ax.set_xticks(pos + width * (len(ys) - 1) / 2, labels, fontsize=8)
    ax.set(title=title, ylabel="%" if percent else "")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def line_chart(df: pd.DataFrame, x: str, y: str, hue: str | None, title: str) -> Figure:
    """One line per ``hue`` value (or a single line)."""
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    for name, part in df.groupby(hue, sort=True) if hue else [(y, df)]:
        ax.plot(part[x], part[y], label=str(name))
    ax.set(title=title, ylabel=y.replace("_", " "))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig

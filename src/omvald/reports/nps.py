"""Net Promoter Score with its uncertainty, overall and per segment, by month.

NPS = % promoters (9-10) - % detractors (0-6), in points from -100 to 100.
A month with 8 answers says little; the interval makes that visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from omvald.features.touchpoints import is_nps_answer

Z_95 = float(norm.ppf(0.975))  # 1.959964
# Adjusted Wald pseudo-answers (Rocks 2016): 3 in total, 3/4 promoter, 3/4 detractor, 3/2 passive.
PSEUDO_N = 3.0
PSEUDO_PROMOTERS = 0.75
PSEUDO_DETRACTORS = 0.75
SEGMENTS = ("all", "active", "passive")
COLUMNS = ["month", "segment", "n", "nps", "low", "high"]


def nps_summary(scores) -> dict[str, float]:
    """NPS of 0-10 answers with a 95% interval, all in NPS points (-100..100).

    Returns ``{"nps", "low", "high", "n", "promoters", "passives", "detractors"}``
    (the last three are counts; missing answers are ignored; no answers ->
    NaN NPS and interval).

    The interval is the *adjusted Wald* interval for a difference of two
    multinomial proportions (Rocks, B. 2016, "Interval Estimation for the
    'Net Promoter Score'", The American Statistician 70(4), 365-372,
    arXiv:1601.07235; recommended also by Lewis & Sauro, MeasuringU,
    "Confidence Intervals for Net Promoter Scores"). Add 3 pseudo-answers,
    3/4 to promoters and 3/4 to detractors::

        n~   = n + 3
        p~_P = (P + 3/4) / n~          p~_D = (D + 3/4) / n~
        Var  = (p~_P + p~_D - (p~_P - p~_D)^2) / n~
        interval = (p~_P - p~_D) +/- z * sqrt(Var),   z = 1.959964

    ``Var`` is the variance of ``p_P - p_D`` for a multinomial sample. The
    pseudo-answers keep the interval wide and inside the scale when n is
    small or every answer is a promoter (the plain Wald interval collapses
    to a point there). ``nps`` is the plain sample NPS; the interval is
    centred on the shrunk estimate, so with very few answers it may not
    contain ``nps`` (one promoter: NPS 100, interval -48.5..98.5). Bounds
    are clipped to [-100, 100].
    """
    values = pd.to_numeric(pd.Series(np.asarray(scores, dtype=float).ravel()), errors="coerce").dropna()
    n = int(len(values))
    promoters = int((values >= 9).sum())
    detractors = int((values <= 6).sum())
    passives = n - promoters - detractors
    if n == 0:
        nps = low = high = float("nan")
    else:
        nps = 100.0 * (promoters - detractors) / n
        n_adj = n + PSEUDO_N
        p_pro = (promoters + PSEUDO_PROMOTERS) / n_adj
        p_det = (detractors + PSEUDO_DETRACTORS) / n_adj
        centre = p_pro - p_det
        half = Z_95 * np.sqrt((p_pro + p_det - centre**2) / n_adj)
        low = float(np.clip(100.0 * (centre - half), -100.0, 100.0))
        high = float(np.clip(100.0 * (centre + half), -100.0, 100.0))
    return {
        "nps": nps,
        "low": low,
        "high": high,
        "n": n,
        "promoters": promoters,
        "passives": passives,
        "detractors": detractors,
    }


def monthly_nps(touchpoints: pd.DataFrame, segments: pd.DataFrame | None = None) -> pd.DataFrame:
    """NPS per calendar month, for all answers and per segment.

    ``touchpoints``: interim touchpoints (answers are event ``nps``, or
    ``survey`` with a 0-10 ``value``). ``segments``: optional
    ``customer_id, segment`` table; with an ``as_of`` column the latest row
    per customer is used. Returns ``month`` (first day of the month),
    ``segment`` ('all' | 'active' | 'passive'), ``n``, ``nps``, ``low``,
    ``high``; only groups with at least one answer.
    """
    if "value" not in touchpoints.columns or touchpoints.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(COLUMNS, _DTYPES, strict=True)})
    answers = touchpoints.loc[is_nps_answer(touchpoints), ["customer_id", "value"]].copy()
    when = touchpoints.loc[answers.index, "date" if "date" in touchpoints.columns else "timestamp"]
    answers["month"] = pd.to_datetime(when).dt.to_period("M").dt.to_timestamp()
    groups = [answers.assign(segment="all")]
    if segments is not None:
        seg = segments.sort_values("as_of") if "as_of" in segments.columns else segments
        seg = seg.drop_duplicates("customer_id", keep="last")[["customer_id", "segment"]]
        groups.append(answers.merge(seg, on="customer_id", how="inner"))
    rows = [
        {"month": month, "segment": segment, **nps_summary(group["value"])}
        for part in groups
        for (month, segment), group in part.groupby(["month", "segment"], sort=True)
    ]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(COLUMNS, _DTYPES, strict=True)})
    out = pd.DataFrame(rows)[COLUMNS]
    order = {s: i for i, s in enumerate(SEGMENTS)}
    out = out.sort_values(["month", "segment"], key=lambda c: c.map(order) if c.name == "segment" else c)
    return out.astype({"segment": "str", "n": "int64"}).reset_index(drop=True)


_DTYPES = ["datetime64[s]", "str", "int64", "float64", "float64", "float64"]


def plot_monthly_nps(df: pd.DataFrame, path: str | Path) -> None:
    """Line per segment with the 95% interval as a shaded band; PNG at ``path``.

    n (answers) is written at each point of the ``all`` line and as a total per segment in the legend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for segment in [s for s in SEGMENTS if s in set(df["segment"])]:
        part = df[df["segment"] == segment].sort_values("month")
        line = ax.plot(part["month"], part["nps"], marker="o", label=f"{segment} (n = {int(part['n'].sum())})")[0]
        ax.fill_between(part["month"], part["low"], part["high"], color=line.get_color(), alpha=0.15)
        if segment == "all":  # one row of labels stays readable; segment totals are in the legend
            for month, nps, n in zip(part["month"], part["nps"], part["n"], strict=True):
                ax.annotate(f"n={n}", (month, nps), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylim(-100, 100)
    ax.set_title("Net Promoter Score by month (shaded: 95% interval, adjusted Wald)")
    ax.set_xlabel("month")
    ax.set_ylabel("NPS (% promoters - % detractors)")
    if len(df):
        ax.legend(loc="lower left")
    fig.autofmt_xdate()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)

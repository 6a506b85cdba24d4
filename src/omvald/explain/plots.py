"""SHAP figures for the report: global bar, beeswarm, dependence, active vs passive.

Each function takes contributions (raw log-odds, from
:func:`omvald.explain.drivers.contributions`), the feature values and the
plain-word descriptions, and returns a matplotlib Figure; the stage saves
it. Axes use descriptions rather than column names, and every title carries
the sample size so nobody reads a 500-row plot as the whole base.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # no display on servers and in DVC; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from omvald.explain.drivers import BIAS  # noqa: E402

MAX_DISPLAY = 15
SHAP_AXIS = "SHAP value (log-odds; > 0 raises the risk)"


def to_explanation(contrib: pd.DataFrame, X: pd.DataFrame, descriptions: Mapping[str, str]) -> shap.Explanation:
    """A ``shap.Explanation`` with numeric data (categoricals as level codes) and described feature names."""
    features = [c for c in contrib.columns if c != BIAS]
    data = np.column_stack([_numeric(X[f]) for f in features]) if features else np.zeros((len(X), 0))
    return shap.Explanation(
        values=contrib[features].to_numpy(dtype=float),
        base_values=contrib[BIAS].to_numpy(dtype=float) if BIAS in contrib else None,
        data=data,
        feature_names=[_label(f, descriptions) for f in features],
    )


def bar_plot(contrib: pd.DataFrame, descriptions: Mapping[str, str], title: str) -> Figure:
    """Global importance: mean |SHAP| per feature, largest on top."""
    features = [c for c in contrib.columns if c != BIAS]
    imp = contrib[features].abs().mean().sort_values(ascending=True).tail(MAX_DISPLAY)
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(imp) + 1.6))
    ax.barh([_label(f, descriptions) for f in imp.index], imp.to_numpy(), color="#1E88E5")
    ax.set_xlabel("mean |SHAP value| (log-odds): average impact on the score")
    ax.set_title(f"{title}\n{_n(len(contrib))}")
    fig.tight_layout()
    return fig


def beeswarm_plot(contrib: pd.DataFrame, X: pd.DataFrame, descriptions: Mapping[str, str], title: str) -> Figure:
    """Every customer's contribution per feature, coloured by the feature value.

    Features with no value in the sample and no contribution (e.g. a family
    absent from a snapshot export) are left out: they would only take a row.
    One with no value but a contribution stays, drawn grey ("missing").
    """
    silent = [f for f in contrib.columns if f != BIAS and not X[f].notna().any() and not contrib[f].to_numpy().any()]
    expl = to_explanation(contrib.drop(columns=silent), X, descriptions)
    n_show = min(MAX_DISPLAY, expl.values.shape[1])
    fig, ax = plt.subplots(figsize=(10, 0.42 * n_show + 2.0))
    with warnings.catch_warnings():
        # shap takes the colour range of an all-missing feature with nanpercentile; it then draws it grey
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        shap.plots.beeswarm(expl, max_display=n_show, ax=ax, show=False, plot_size=None)
    ax.set_xlabel(SHAP_AXIS)
    ax.set_title(f"{title}\n{_n(len(contrib))}")
    fig.tight_layout()
    return fig


def dependence_plot(
    contrib: pd.DataFrame, X: pd.DataFrame, feature: str, descriptions: Mapping[str, str], title: str
) -> Figure:
    """Contribution of ``feature`` against its value (levels on the x axis for a categorical)."""
    label = _label(feature, descriptions)
    fig, ax = plt.subplots(figsize=(7, 4.8))
    values = X[feature]
    shap_values = contrib[feature].to_numpy(dtype=float)
    if _is_categorical(values):
        levels = values.astype(object).where(values.notna(), "(missing)").astype(str)
        order = sorted(levels.unique())
        ax.boxplot([shap_values[(levels == lv).to_numpy()] for lv in order], tick_labels=order, vert=True)
        ax.tick_params(axis="x", rotation=30)
    else:
        expl = to_explanation(contrib[[feature]], X[[feature]], descriptions)
        shap.plots.scatter(expl[:, 0], ax=ax, show=False, hist=True)
    ax.axhline(0.0, color="#999999", linewidth=0.8)
    ax.set_xlabel(label)
    ax.set_ylabel("SHAP value (log-odds)")
    ax.set_title(f"{title}: {label}\n{_n(len(contrib))}")
    fig.tight_layout()
    return fig


def segment_plot(importance: pd.DataFrame, descriptions: Mapping[str, str], title: str, n: int) -> Figure:
    """Mean |SHAP| per feature side by side for active and passive customers.

    ``importance`` is :func:`omvald.explain.drivers.shap_importance` with a
    segment; ``n`` the sample size shown.
    """
    seg_cols = [c for c in importance.columns if c.startswith("mean_abs_shap_")]
    top = importance.sort_values("rank").head(MAX_DISPLAY).iloc[::-1]
    y = np.arange(len(top))
    height = 0.8 / max(len(seg_cols), 1)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(top) + 1.8))
    colors = ["#D81B60", "#1E88E5", "#FFC107", "#004D40"]
    for i, col in enumerate(seg_cols):
        ax.barh(
            y + i * height,
            top[col].fillna(0).to_numpy(),
            height=height,
            label=col.removeprefix("mean_abs_shap_"),
            color=colors[i % 4],
        )
    ax.set_yticks(y + height * (len(seg_cols) - 1) / 2, [_label(f, descriptions) for f in top["feature"]])
    ax.set_xlabel("mean |SHAP value| (log-odds)")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], title="segment", loc="lower right")  # same top-down order as the bars
    ax.set_title(f"{title}: active vs passive customers\n{_n(n)}")
    fig.tight_layout()
    return fig


def save(fig: Figure, path) -> None:
    """Save as PNG and free the figure (plots are made in a loop)."""
    # shap's beeswarm draws its colour bar outside the axes: "tight" keeps it and long titles on the page
    fig.savefig(path, dpi=110, format="png", bbox_inches="tight")
    plt.close(fig)


def _numeric(values: pd.Series) -> np.ndarray:
    if _is_categorical(values):
        codes = pd.Categorical(values.astype(object).where(values.notna(), None)).codes.astype(float)
        codes[codes < 0] = np.nan
        return codes
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _is_categorical(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values)


def _label(feature: str, descriptions: Mapping[str, str]) -> str:
    return descriptions.get(feature) or feature.replace("_", " ")


def _n(n: int) -> str:
    return f"sample of {n:,} customer-dates held out for testing"  # later dates, or held-out customers (snapshot)

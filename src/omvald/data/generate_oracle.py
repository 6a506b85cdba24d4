"""The oracle: how well the true probabilities rank the realised labels, the limit for any model.

``labelled`` rows are the features stage's (``customer_id, as_of, churn,
phase_out``, e.g. the test window of ``data/features/training.parquet``);
``probabilities`` is the generator's true-probability file
(:mod:`omvald.data.generate_truth`). The targets are scored as
``omvald evaluate`` scores them (``metrics/*.json``):

- ``churn``: the churn label, every labelled row;
- ``phase_out``: the phase-out label with churners counted as 0 (``combined``);
- ``phase_out_if_stays``: the phase-out label of rows that did not churn.

:func:`score_metrics` takes any number of named score columns, so models can be
set beside the oracle in one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from omvald.model.metrics import summary

TARGETS = ("churn", "phase_out", "phase_out_if_stays")
ORACLE_COLUMNS = {
    "churn": "p_churn_true",
    "phase_out": "p_phase_out_true",
    "phase_out_if_stays": "p_phase_out_if_stays_true",
}


def join_truth(probabilities: pd.DataFrame, labelled: pd.DataFrame) -> pd.DataFrame:
    """``labelled`` with the true-probability columns; raises ValueError if a labelled row has none.

    A row without truth means the two disagree on the population or the
    as-of dates, and any oracle number would be meaningless.
    """
    keys = ["customer_id", "as_of"]
    truth = probabilities.assign(as_of=pd.to_datetime(probabilities["as_of"]))
    rows = labelled.assign(as_of=pd.to_datetime(labelled["as_of"]), customer_id=labelled["customer_id"].astype(str))
    joined = rows.merge(truth, on=keys, how="left", validate="one_to_one", indicator=True)
    missing = joined["_merge"] == "left_only"
    if missing.any():
        examples = joined.loc[missing, keys].head(5).to_dict("records")
        raise ValueError(f"{int(missing.sum())} labelled row(s) have no true probability, e.g. {examples}")
    return joined.drop(columns="_merge")


def targets(rows: pd.DataFrame) -> pd.DataFrame:
    """The three 0/1 targets of labelled rows (``phase_out_if_stays`` NaN where it does not apply)."""
    churn = rows["churn"].astype(float)
    stays = (churn == 0) & rows["phase_out"].notna()
    return pd.DataFrame(
        {
            "churn": churn,
            "phase_out": rows["phase_out"].fillna(0.0).where(churn == 0, 0.0),
            "phase_out_if_stays": rows["phase_out"].where(stays),
        },
        index=rows.index,
    )


def score_metrics(
    rows: pd.DataFrame, scores: Mapping[str, Mapping[str, str]], bins: int = 10, top_fraction: float = 0.1
) -> dict[str, dict[str, dict[str, float]]]:
    """``scores``: name -> {target -> score column of ``rows``}; returns name -> target -> metrics.

    Metrics are :func:`omvald.model.metrics.summary`'s (n_rows, positive_rate,
    roc_auc, pr_auc, log_loss, brier, ece, lift, capture), on the rows where
    the target applies.
    """
    y = targets(rows)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, columns in scores.items():
        out[name] = {}
        for target, column in columns.items():
            has = y[target].notna() & rows[column].notna()
            out[name][target] = summary(
                y.loc[has, target].to_numpy(), rows.loc[has, column].to_numpy(), bins, top_fraction
            )
    return out


def oracle_auc(probabilities: pd.DataFrame, labelled: pd.DataFrame) -> dict[str, Any]:
    """The oracle's metrics per target on ``labelled`` rows, plus their dates and label rates.

    Returns ``{"dates": [...], "n_rows": int, "churn_rate": float,
    "phase_out_rate": float, "churn": {...}, "phase_out": {...},
    "phase_out_if_stays": {...}}`` with each target's metrics as in
    :func:`score_metrics` (``roc_auc`` is the limit).
    """
    rows = join_truth(probabilities, labelled)
    metrics = score_metrics(rows, {"oracle": ORACLE_COLUMNS})["oracle"]
    y = targets(rows)
    dates = sorted({d.date().isoformat() for d in rows["as_of"]})
    return {
        "dates": dates,
        "n_rows": len(rows),
        "churn_rate": float(y["churn"].mean()) if len(rows) else float("nan"),
        "phase_out_rate": float(y["phase_out"].mean()) if len(rows) else float("nan"),
        **metrics,
    }


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Rows binned by equal-count quantiles of ``p``: mean p, observed rate and count per bin."""
    frame = pd.DataFrame({"y": np.asarray(y, float), "p": np.asarray(p, float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False)
    return frame.groupby("bin").agg(mean_p=("p", "mean"), observed=("y", "mean"), n=("y", "size"))

"""A small learnable feature frame in the shape of ``data/features`` (docs/architecture.md), for model tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from omvald.config import config_from_dict

FEATURES = [
    ("tenure_months", "profile", "numeric"),
    ("monthly_revenue", "billing", "numeric"),
    ("price_shock_pct_3m", "billing", "numeric"),
    ("inbound_events_90d", "touchpoints", "numeric"),
    ("days_late_max_180d", "billing", "numeric"),
    ("plan", "profile", "categorical"),
]

# LightGBM settings small enough for the suite: every key the search varies, early stopping, a categorical
SMALL_LGBM = {
    "n_estimators": 30,
    "num_leaves": 15,
    "learning_rate": 0.05,
    "min_child_samples": 20,
    "feature_fraction": 0.8,
    "lambda_l2": 1.0,
    "early_stopping_rounds": 10,
    "categorical_features": ["plan"],
    "seed": 5,
}


def make_feature_frame(
    n_customers: int = 400, n_dates: int = 12, seed: int = 0, shuffle_labels: bool = False
) -> pd.DataFrame:
    """Customers x month-end as-of dates; churn driven by price shock, short tenure, low activity and plan."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-31", periods=n_dates, freq="ME").date
    ids = np.array([f"C{i:05d}" for i in range(n_customers)])
    signup_months = rng.integers(0, 48, n_customers)
    plan = rng.choice(["basic", "plus", "pro"], n_customers, p=[0.5, 0.3, 0.2])
    rows = []
    for k, as_of in enumerate(dates):
        n = n_customers
        tenure = (signup_months + k).astype(float)
        shock = np.where(rng.random(n) < 0.3, rng.uniform(5, 30, n), 0.0)
        inbound = rng.poisson(np.where(rng.random(n) < 0.5, 4, 0.5)).astype(float)
        late = np.where(rng.random(n) < 0.1, np.nan, rng.exponential(5, n))
        revenue = rng.gamma(3, 100, n)
        logit = -2.2 + 0.08 * shock - 0.04 * tenure - 0.35 * inbound + 0.6 * (plan == "basic")
        churn = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
        po_logit = -1.8 + 0.05 * shock - 0.2 * inbound
        phase_out = (rng.random(n) < 1 / (1 + np.exp(-po_logit))).astype(float)
        phase_out[churn == 1] = np.nan
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": ids,
                    "as_of": as_of,
                    "tenure_months": tenure,
                    "monthly_revenue": revenue,
                    "price_shock_pct_3m": shock,
                    "inbound_events_90d": inbound,
                    "days_late_max_180d": late,
                    "plan": plan,
                    "segment": np.where(inbound >= 2, "active", "passive"),
                    "churn": churn,
                    "phase_out": phase_out,
                    "next_revenue": revenue * 3 * (1 - churn),
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    frame["plan"] = frame["plan"].astype("category")
    if shuffle_labels:
        perm = np.random.default_rng(seed + 1).permutation(len(frame))
        frame["churn"] = frame["churn"].to_numpy()[perm]
        frame["phase_out"] = np.where(frame["churn"] == 1, np.nan, np.nan_to_num(frame["phase_out"].to_numpy()[perm]))
    return frame.sort_values(["as_of", "customer_id"]).reset_index(drop=True)


def write_features(features_dir: Path, frame: pd.DataFrame, horizon_days: int = 60) -> Path:
    features_dir.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(features_dir / "training.parquet", index=False)
    registry = [
        {"name": n, "family": f, "description": n, "unit": "", "kind": k, "available": True, "missing_reason": None}
        for n, f, k in FEATURES
    ] + [
        {
            "name": "nps_last",
            "family": "nps",
            "description": "",
            "unit": "",
            "kind": "numeric",
            "available": False,
            "missing_reason": "no nps",
        }
    ]
    dates = sorted({str(d) for d in frame["as_of"]})
    meta = {
        "as_of_dates": dates,
        "labelled_dates": dates,
        "horizon_days": horizon_days,
        "phase_out_drop": 0.3,
        "contractual": True,
        "families_used": ["billing", "profile", "touchpoints"],
        "families_missing": {"nps": "no nps"},
        "n_rows": len(frame),
    }
    (features_dir / "registry.json").write_text(json.dumps(registry))
    (features_dir / "meta.json").write_text(json.dumps(meta))
    return features_dir


def small_config(n_estimators: int = 60, explain: dict | None = None, **train):
    lgbm = {"n_estimators": n_estimators, "min_child_samples": 20, "early_stopping_rounds": 10}
    raw = {
        "seed": 7,
        "features": {"horizon_days": 60},
        "train": {"valid_dates": 2, "test_dates": 2, "churn": lgbm, "phase_out": lgbm, **train},
        "mlflow": {"experiment": "omvald-test"},
    }
    if explain is not None:
        raw["explain"] = explain
    return config_from_dict(raw)

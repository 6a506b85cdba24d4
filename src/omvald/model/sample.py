"""The stable sample of customers the baselines learn from (``train.baseline_sample_customers``).

A logistic regression and a hand-written rule need far fewer rows than
LightGBM to settle, and unlike LightGBM's dataset they hold their rows in
memory. They learn from every as-of date of a sample of whole customers,
chosen as the buckets are: the customers whose hash slot is below
``ceil(N_SLOTS x S / N)`` for ``N`` customers and a sample of ``S`` (all
of them when ``N <= S``). The same customers in every run and stage.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from omvald.buckets import N_SLOTS, hash_slot


def sample_slots(n_customers: int, sample_customers: int) -> int:
    """Hash slots below this number are in the sample (``N_SLOTS``: every customer)."""
    if n_customers <= sample_customers:
        return N_SLOTS
    return math.ceil(N_SLOTS * sample_customers / n_customers)


def baseline_rows(frame: pd.DataFrame, sample_customers: int) -> pd.Series:
    """Boolean mask of the rows of ``frame`` whose customer is in the sample of about ``sample_customers``."""
    ids = frame["customer_id"].astype(str)
    distinct = ids.drop_duplicates()
    slots = sample_slots(len(distinct), sample_customers)
    if slots >= N_SLOTS:
        return pd.Series(True, index=frame.index)
    kept = set(distinct[(hash_slot(distinct) < slots).to_numpy()])
    return pd.Series(np.asarray(ids.isin(kept)), index=frame.index)

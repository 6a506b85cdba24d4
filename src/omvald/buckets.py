"""Customer buckets: a stable hash of ``customer_id`` that splits work.

Every feature depends only on one customer's rows and the as-of date, so
feature building and scoring run per bucket of customers: locally in a
loop (bounding memory), on Spark one task per bucket. The hash must be the
same on every machine and Python version, hence blake2b rather than
``hash()`` (salted per process) or pandas' hashing (not a stable API).

Validation stores a ``hash_slot`` in 0..N_SLOTS-1 on every row and sorts the
tables by it. A bucket is a contiguous range of slots, so with any bucket
count a bucket's rows are one slice of the sorted files (row groups pruned
by min/max statistics).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

N_SLOTS = 1024


def customer_hash(customer_ids: pd.Series) -> pd.Series:
    """Stable 64-bit hash (uint64) of each customer id: blake2b, the same on every machine and run."""
    ids = customer_ids.astype("string")
    uniques = pd.unique(ids.to_numpy(dtype=object))
    hashes = np.fromiter(
        (int.from_bytes(hashlib.blake2b(str(u).encode(), digest_size=8).digest(), "little") for u in uniques),
        dtype=np.uint64,
        count=len(uniques),
    )
    lookup = pd.Series(hashes, index=uniques)
    return pd.Series(lookup.reindex(ids.to_numpy(dtype=object)).to_numpy(), index=customer_ids.index, name="hash")


def hash_slot(customer_ids: pd.Series) -> pd.Series:
    """Stable slot in ``[0, N_SLOTS)`` for each customer id (same id, same slot, everywhere)."""
    slots = (customer_hash(customer_ids).to_numpy() % np.uint64(N_SLOTS)).astype(np.int16)
    return pd.Series(slots, index=customer_ids.index, name="hash_slot")


def slot_range(bucket: int, n_buckets: int) -> tuple[int, int]:
    """Half-open slot range ``[lo, hi)`` that makes up ``bucket`` of ``n_buckets``."""
    if not 1 <= n_buckets <= N_SLOTS:
        raise ValueError(f"n_buckets must be between 1 and {N_SLOTS}, got {n_buckets}")
    if not 0 <= bucket < n_buckets:
        raise ValueError(f"bucket must be in [0, {n_buckets}), got {bucket}")
    return bucket * N_SLOTS // n_buckets, (bucket + 1) * N_SLOTS // n_buckets


def bucket_of_slot(slots: pd.Series | np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket number of each slot (the inverse of :func:`slot_range`)."""
    upper_bounds = [slot_range(b, n_buckets)[1] for b in range(n_buckets)]
    return np.searchsorted(upper_bounds, np.asarray(slots, dtype=np.int64), side="right")

"""Faster feature code gives the same features, bit for bit.

The features stage runs on two small synthetic businesses (a subscription
business with every billing and touchpoint column, and a purchase-only one)
and every column of ``training.parquet`` and ``scoring.parquet`` is hashed:
the exact bits of each float (NaN included), the text of every other value.
``feature_digests.json`` holds the hashes written by the feature code as it
was before the speed-ups of issue #21 (billing SQL, touchpoint pivot), so a
rewrite that moves one feature by one bit in one row fails here, naming the
column.

A deliberate change of a feature's definition changes its hash: rewrite the
file with ``python tests/unit/test_feature_digests.py`` and say why in the
commit. A new DuckDB, numpy or pandas may also change the last bits of a sum;
check such a diff before rewriting.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omvald.config import config_from_dict
from omvald.data.generate import generate_business
from omvald.data.validate import run_validate
from omvald.features.stage import run_features

DIGESTS = Path(__file__).with_name("feature_digests.json")
BUSINESSES = {
    "subscription": {"seed": 11, "generate": {"n_customers": 400, "months": 24, "start_date": "2023-01-01"}},
    "purchases": {
        "seed": 12,
        "generate": {
            "n_customers": 400,
            "start_date": "2023-01-01",
            "business": "purchases",
            "purchases": {"months": 24},
        },
    },
}
OUTPUTS = ("training.parquet", "scoring.parquet")
# The BG/NBD columns come out of scipy's optimizer, whose last bits follow the BLAS kernel OpenBLAS picks
# for the CPU: the same code gave other bits with OPENBLAS_CORETYPE=Haswell than without it (2026-12-02).
# Their values are checked against the library's own predictions in tests/unit/test_features_purchases.py.
OPTIMIZER_COLUMNS = ("btyd_",)


def column_digests(table: pd.DataFrame) -> dict[str, str]:
    """sha256 of each column: float bits (so -0.0, NaN and the last bit count), else each value's text."""
    out = {}
    for name in table.columns:
        values = table[name]
        if pd.api.types.is_float_dtype(values.dtype):
            data = np.ascontiguousarray(values.to_numpy(dtype="float64")).view(np.uint64).tobytes()
        else:
            data = "\x1f".join("<NA>" if pd.isna(v) else str(v) for v in values.astype(object)).encode()
        out[name] = hashlib.sha256(data).hexdigest()[:16]
    return out


def feature_digests(business: str, work: Path) -> dict[str, dict[str, str]]:
    """Generate, validate and build features for ``business`` in ``work``; digests per output file."""
    cfg = config_from_dict({**BUSINESSES[business], "features": {"n_buckets": 3, "workers": 1}})
    raw = work / "raw"
    raw.mkdir(parents=True)
    tables = generate_business(cfg.generate, cfg.seed)
    for name in ("customers", "billing", "touchpoints"):
        tables[name].to_parquet(raw / f"{name}.parquet", index=False)
    run_validate(cfg, raw, work / "interim", work / "profile.json")
    run_features(cfg, work / "interim", work / "features")
    return {name: column_digests(pd.read_parquet(work / "features" / name)) for name in OUTPUTS}


@pytest.mark.pipeline  # validate and features on two generated businesses
@pytest.mark.parametrize("business", list(BUSINESSES))
def test_features_are_bit_for_bit_what_they_were(tmp_path, business):
    expected = json.loads(DIGESTS.read_text())[business]
    got = feature_digests(business, tmp_path)
    for name in OUTPUTS:
        assert list(got[name]) == list(expected[name]), f"{business} {name}: columns differ"
        changed = [
            col
            for col, digest in got[name].items()
            if expected[name][col] != digest and not col.startswith(OPTIMIZER_COLUMNS)
        ]
        assert not changed, f"{business} {name}: these columns changed: {changed}"


if __name__ == "__main__":  # rewrite the digests from the code as it is now
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        found = {b: feature_digests(b, Path(tmp) / b) for b in BUSINESSES}
    DIGESTS.write_text(json.dumps(found, indent=1) + "\n")
    print(f"wrote {DIGESTS}", file=sys.stderr)

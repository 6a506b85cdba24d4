"""Drift of ~190 features between two frames: omvald's bin counts vs Evidently and NannyML.

Why omvald counts its own bins (docs/monitoring.md): the libraries compare two whole frames in one
process, while a scoring run sees one bucket of customers at a time (and Spark tasks) and must merge;
this script measures what they would cost anyway. Evidently and NannyML are not omvald dependencies:
run the script in a separate environment that has the library (and omvald, for ``ours``)::

    python benchmarks/bench_drift_libraries.py --library ours --rows 200000
    /path/to/other/venv/bin/python benchmarks/bench_drift_libraries.py --library evidently --rows 200000
    /path/to/other/venv/bin/python benchmarks/bench_drift_libraries.py --library nannyml --rows 200000

Both frames have ``--rows`` rows: 150 continuous features (5% missing), 30 zero-heavy counts and
10 categorical ones (6 levels); the current frame is shifted in 5 features. Prints one JSON line:
seconds to learn the reference (where the library separates it) and to compare, and peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import pandas as pd

N_CONTINUOUS, N_COUNTS, N_CATEGORICAL = 150, 30, 10


def frame(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for i in range(N_CONTINUOUS):
        x = rng.lognormal(0, 0.7, rows) if i % 2 else rng.normal(0, 1, rows)
        if shifted and i < 3:
            x = x + 0.3
        x[rng.random(rows) < 0.05] = np.nan
        cols[f"num_{i}"] = x
    for i in range(N_COUNTS):
        cols[f"count_{i}"] = rng.poisson(0.6 if shifted and i == 0 else 0.3, rows).astype("float64")
    levels = np.array(["a", "b", "c", "d", "e", "f"])
    for i in range(N_CATEGORICAL):
        p = np.array([0.3, 0.25, 0.2, 0.12, 0.08, 0.05])
        if shifted and i == 0:
            p = p[::-1]
        cols[f"cat_{i}"] = levels[rng.choice(6, rows, p=p)]
    return pd.DataFrame(cols)


def categorical_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith("cat_")]


def run_ours(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    import datetime as dt

    from omvald.model.reference import Reference, build_reference, kinds_of
    from omvald.scoring.drift import drift_report

    start = time.perf_counter()
    kinds = kinds_of(list(reference.columns), categorical_columns(reference))
    ref = Reference.from_json(build_reference(reference, kinds, {}, {}, {}))
    learned = time.perf_counter()
    counts = ref.count_features(current)
    report = drift_report(ref, counts, {}, as_of=dt.date(2026, 1, 31), warn=0.1, alert=0.25)
    done = time.perf_counter()
    return {
        "reference_s": learned - start,
        "compare_s": done - learned,
        "drifted": len(report["above_warn"]["features"]),
    }


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame, method: str) -> dict[str, float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    cats = categorical_columns(reference)
    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c not in cats], categorical_columns=cats
    )
    start = time.perf_counter()
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(current, data_definition=definition)
    Report([DataDriftPreset(method=method)]).run(cur, ref)
    return {"reference_s": 0.0, "compare_s": time.perf_counter() - start}


def run_nannyml(reference: pd.DataFrame, current: pd.DataFrame, method: str) -> dict[str, float]:
    import nannyml as nml

    calc = nml.UnivariateDriftCalculator(
        column_names=list(reference.columns),
        treat_as_categorical=categorical_columns(reference),
        continuous_methods=[method],
        categorical_methods=["chi2"],
        chunk_number=1,
    )
    start = time.perf_counter()
    calc.fit(reference)
    learned = time.perf_counter()
    calc.calculate(current)
    return {"reference_s": learned - start, "compare_s": time.perf_counter() - learned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", choices=["ours", "evidently", "nannyml"], required=True)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--method", default=None, help="evidently: psi (default); nannyml: jensen_shannon (default)")
    args = parser.parse_args()
    reference, current = frame(args.rows, 1, False), frame(args.rows, 2, True)
    if args.library == "ours":
        result = run_ours(reference, current)
    elif args.library == "evidently":
        result = run_evidently(reference, current, args.method or "psi")
    else:
        result = run_nannyml(reference, current, args.method or "jensen_shannon")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(json.dumps({"library": args.library, "method": args.method, "rows": args.rows, **result, "peak_gb": peak_gb}))


if __name__ == "__main__":
    main()

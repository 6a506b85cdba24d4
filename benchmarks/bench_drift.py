"""Benchmark the cost of drift in ``omvald score``: ``--explain none`` with and without a training reference.

    python benchmarks/bench_drift.py                                   # 1M customers (the target), 3 runs each
    python benchmarks/bench_drift.py --customers 200000 --repeats 3    # what a shared machine allows

Same data and models as ``bench_score.py`` (``--work``, ``--models-dir``;
quick models when there are none). The same models score twice per
repeat, alternating, each run in a fresh subprocess: once from a folder
without ``reference.json`` (drift is skipped with a note) and once with it
(every bucket counts its ~190 features in the reference's bins, and the
finisher computes PSI, the tests and the drivers). A models folder without
a reference gets one built from the 20k-customer business's features at
its latest labelled date. Prints the median total seconds of each, the
``drift`` phase and the overhead; the issue's target is at most 10% at 1M
customers. The 1-minute load average is printed with each run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from bench_score import ensure_data, ensure_models, run_child, run_one

from omvald.config import Config, load_config
from omvald.model.reference import REFERENCE_FILE


def ensure_reference(cfg: Config, models_dir: Path, work: Path) -> tuple[Path, Path]:
    """(a models folder with ``reference.json``, the same models without one)."""
    with_ref, without = work / "drift_models_with_reference", work / "drift_models_without_reference"
    for folder in (with_ref, without):  # every file the models folder has (model inputs, skipped targets, ...)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(models_dir, folder, ignore=shutil.ignore_patterns("*.tmp", "mlruns"))
    (without / REFERENCE_FILE).unlink(missing_ok=True)
    if (models_dir / REFERENCE_FILE).exists():
        shutil.copy(models_dir / REFERENCE_FILE, with_ref / REFERENCE_FILE)
    elif not (with_ref / REFERENCE_FILE).exists():
        (with_ref / REFERENCE_FILE).write_text(json.dumps(_quick_reference(cfg, with_ref, work)))
    return with_ref, without


def _quick_reference(cfg: Config, models_dir: Path, work: Path) -> dict:
    import datetime as dt

    import joblib

    from omvald.features.asof import month_end
    from omvald.features.build import build_features
    from omvald.features.registry import registry_entries
    from omvald.features.spec import BucketTables
    from omvald.model.reference import training_reference
    from omvald.scoring.stage import read_and_validate

    folder = ensure_data(cfg, 20_000, 24, work)
    tables, meta, _ = read_and_validate(cfg, folder, None)
    end = dt.date.fromisoformat(str(meta["data_end"])[:10])
    date = month_end(end - dt.timedelta(days=cfg.features.horizon_days + 31))
    frame = build_features(BucketTables(**tables), [date], cfg.features, meta, with_labels=False)
    models = {t: joblib.load(models_dir / f"{t}.joblib") for t in ("churn", "phase_out")}
    features = list(dict.fromkeys(c for m in models.values() for c in m.feature_names_))
    specs = {e.spec.name: e.spec for e in registry_entries(cfg.features, {**meta, "binding_column": "contract_type"})}
    categorical = [f for f in features if f in specs and specs[f].kind == "categorical"]
    drivers = {f: specs[f].driver or f for f in features if f in specs}
    about = {"rows_from": f"bench_drift: 20k-customer business at {date}"}
    return training_reference(frame, frame, features, categorical, drivers, models, about)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=14)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "omvald-bench")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cfg = load_config(args.params)
    args.work.mkdir(parents=True, exist_ok=True)
    folder = ensure_data(cfg, args.customers, args.months, args.work)
    if args.child:  # one run in this process (bench_score's child protocol)
        print("RESULT " + json.dumps(run_one(cfg, folder, args.models_dir, args.child, args.work)))
        return
    with_ref, without = ensure_reference(cfg, ensure_models(cfg, args.models_dir, args.work), args.work)
    runs: dict[str, list[dict]] = {"without drift": [], "with drift": []}
    for i in range(args.repeats):
        for name, models in (("without drift", without), ("with drift", with_ref)):
            result = run_child(argparse.Namespace(**{**vars(args), "models_dir": models}), "none", script=__file__)
            runs[name].append(result)
            print(f"  run {i + 1}/{args.repeats} {name}: {result['total_s']:.1f} s (drift phase "
                  f"{result['timings_s'].get('drift', 0.0):.2f} s), load {result['load'][0]} -> {result['load'][1]}",
                  flush=True)  # fmt: skip
    base = statistics.median(r["total_s"] for r in runs["without drift"])
    drift = statistics.median(r["total_s"] for r in runs["with drift"])
    phase = statistics.median(r["timings_s"].get("drift", 0.0) for r in runs["with drift"])
    print(f"\ncustomers {args.customers:,} --explain none, median of {args.repeats}:")
    print(f"  without drift {base:.1f} s; with drift {drift:.1f} s (drift phases {phase:.2f} s)")
    print(f"  overhead {drift - base:+.1f} s = {100 * (drift - base) / base:+.1f}% (target: at most +10%)")
    for name, results in runs.items():
        peak = max(max(r["peak_rss_gb"].values(), default=0.0) for r in results)
        print(f"  peak memory {name}: {peak:.2f} GB (largest phase of any run)")
    print("RESULTS " + json.dumps({"customers": args.customers, "runs": runs}))


if __name__ == "__main__":
    main()

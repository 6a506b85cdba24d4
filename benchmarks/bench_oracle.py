"""The limit, measured: the oracle ROC AUC at the test window of each synthetic business (issue #16).

For each business kind and seed: generate ``--customers`` customers with their
true probabilities (``omvald generate --truth-probabilities``), run the
validate and features stages (their stage functions, with params.yaml's
settings), take the test window of the feature table's labelled rows (the
latest ``train.test_dates`` labelled as-of dates, from
``omvald.model.split.make_split``) and rank them by the true probabilities
(``omvald.data.generate_oracle``). Prints, per run, the label rates and the
oracle's ROC AUC (churn; phase-out with churners as 0, as ``metrics/phase_out.json``
``combined``; phase-out of those who stay), its churn log loss, and the
generation time and size.

    python benchmarks/bench_oracle.py                                    # 3 kinds x 3 seeds, 20k customers
    python benchmarks/bench_oracle.py --kinds purchases --seeds 1 --customers 5000

Purchase exports are 12 months long; with ``features.lookback_days`` 365 the
default first as-of date would leave none labelled, so ``features.as_of_first``
is set to the end of the third month (``--history-months``).

To set models beside the oracle: add their score columns to the test rows in
:func:`score_columns` and name them there; :func:`omvald.data.generate_oracle.score_metrics`
scores every named column the same way. The last line, ``RESULTS [...]``, holds the numbers as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from omvald.config import Config, load_config
from omvald.data.generate import run_generate
from omvald.data.generate_oracle import ORACLE_COLUMNS, join_truth, score_metrics, targets
from omvald.data.validate import run_validate
from omvald.errors import ConfigError
from omvald.features.asof import month_end
from omvald.features.stage import run_features
from omvald.model.split import make_split

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("subscription", "purchases", "purchases_btyd")


def run_config(params: Config, kind: str, seed: int, customers: int, history_months: int) -> Config:
    """params.yaml's settings for one run: this business, seed and size."""
    gen = dataclasses.replace(params.generate, business=kind, n_customers=customers)
    features = params.features
    if kind != "subscription":
        start = gen.start_date.replace(day=1)
        first = month_end((pd.Timestamp(start) + pd.DateOffset(months=history_months - 1)).date())
        features = dataclasses.replace(features, as_of_first=first)
    return dataclasses.replace(params, seed=seed, generate=gen, features=features)


def build(cfg: Config, folder: Path) -> dict:
    """Generate, validate and build features in ``folder``; returns seconds and sizes."""
    timings = {}
    start = time.perf_counter()
    run_generate(cfg, folder / "synthetic", folder / "truth.parquet", probabilities_path=folder / "truth_asof.parquet")
    timings["generate_s"] = time.perf_counter() - start
    timings["generate_mb"] = (
        sum(p.stat().st_size for p in [*(folder / "synthetic").iterdir(), folder / "truth.parquet"]) / 2**20
    )
    timings["truth_asof_mb"] = (folder / "truth_asof.parquet").stat().st_size / 2**20
    start = time.perf_counter()
    run_validate(cfg, folder / "synthetic", folder / "interim", profile_path=None)
    run_features(cfg, folder / "interim", folder / "features")
    timings["validate_features_s"] = time.perf_counter() - start
    return timings


def test_rows(cfg: Config, folder: Path) -> tuple[pd.DataFrame, str]:
    """Labelled rows of the test window, and how the window was chosen."""
    labelled = pd.read_parquet(
        folder / "features" / "training.parquet", columns=["customer_id", "as_of", "churn", "phase_out"]
    )
    t = cfg.train
    try:
        split = make_split(labelled, cfg.features.horizon_days, t.valid_dates, t.test_dates, t.customer_holdout_share)
        dates, how = split.dates["test"], split.strategy
    except ConfigError as exc:  # a short export: the split needs more dates than there are (issue #16)
        dates = sorted({pd.Timestamp(d).date() for d in labelled["as_of"]})[-t.test_dates :]
        how = f"latest {t.test_dates} labelled dates (make_split refused: {str(exc)[:60]}...)"
    test = labelled[pd.to_datetime(labelled["as_of"]).isin(pd.to_datetime(list(dates)))]
    return test.reset_index(drop=True), how


def score_columns(rows: pd.DataFrame, cfg: Config, folder: Path) -> dict[str, dict[str, str]]:
    """Named score columns of ``rows`` per target; models go here beside the oracle."""
    return {"oracle": ORACLE_COLUMNS}


def one_run(params: Config, kind: str, seed: int, customers: int, history_months: int, work: Path) -> dict:
    cfg = run_config(params, kind, seed, customers, history_months)
    folder = work / f"{kind}-{seed}-{customers}"
    load_before = os.getloadavg()[0]
    timings = build(cfg, folder)
    test, how = test_rows(cfg, folder)
    rows = join_truth(pd.read_parquet(folder / "truth_asof.parquet"), test)
    metrics = score_metrics(rows, score_columns(rows, cfg, folder))
    y = targets(rows)
    dates = sorted({d.date() for d in rows["as_of"]})
    return {
        "kind": kind,
        "seed": seed,
        "customers": customers,
        "test_dates": [d.isoformat() for d in dates],
        "test_window": how,
        "n_rows": len(rows),
        "churn_rate": float(y["churn"].mean()),
        "phase_out_rate": float(y["phase_out"].mean()),
        "phase_out_if_stays_rate": float(y["phase_out_if_stays"].mean()),
        "metrics": metrics,
        **{k: round(v, 2) for k, v in timings.items()},
        "load": f"{load_before:.1f}-{os.getloadavg()[0]:.1f}",
    }


def _auc(run: dict, name: str, target: str) -> str:
    value = run["metrics"].get(name, {}).get(target, {}).get("roc_auc")
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: params seed and the next two")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument(
        "--history-months", type=int, default=3, help="purchase exports: months before the first as-of date"
    )
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "omvald-bench" / "oracle")
    args = parser.parse_args()
    params = load_config(args.params)
    seeds = args.seeds or [params.seed, params.seed + 1, params.seed + 2]
    print(
        f"{os.cpu_count()} cores; horizon {params.features.horizon_days} days; {args.customers:,} customers", flush=True
    )
    header = (
        f"{'kind':<15} {'seed':>9} {'test window':<23} {'rows':>6} {'churn':>6} {'p-out':>6} "
        f"{'AUC churn':>9} {'AUC p-out':>9} {'if stays':>8} {'logloss':>7} {'gen s':>6} {'MB':>5} load"
    )
    print(header, flush=True)
    results = []
    for kind in args.kinds:
        for seed in seeds:
            run = one_run(params, kind, seed, args.customers, args.history_months, args.work)
            results.append(run)
            oracle = run["metrics"]["oracle"]
            print(
                f"{kind:<15} {seed:>9} {run['test_dates'][0] + '..' + run['test_dates'][-1][5:]:<23} "
                f"{run['n_rows']:>6} {run['churn_rate']:>6.3f} {run['phase_out_rate']:>6.3f} "
                f"{_auc(run, 'oracle', 'churn'):>9} {_auc(run, 'oracle', 'phase_out'):>9} "
                f"{_auc(run, 'oracle', 'phase_out_if_stays'):>8} {oracle['churn']['log_loss']:>7.3f} "
                f"{run['generate_s']:>6.1f} {run['generate_mb'] + run['truth_asof_mb']:>5.1f} {run['load']}",
                flush=True,
            )
            if run["test_window"] != "time":
                print(f"  test window: {run['test_window']}", flush=True)
    print("RESULTS " + json.dumps(results, default=str))


if __name__ == "__main__":
    sys.exit(main())

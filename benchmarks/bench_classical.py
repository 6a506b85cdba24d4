"""Do we beat the classical models, and how far are we from the limit? (issue #16)

For each business kind and seed: generate ``--customers`` customers with
their true probabilities, then run the pipeline's stages as a user would
(validate -> features -> train -> evaluate, their stage functions, with
params.yaml plus the settings below), and print on the test window of the
split the train stage chose the ROC AUC and log loss of:

- the kept model (LightGBM, the logistic regression or their blend) and LightGBM;
- ``bgnbd``: the BG/NBD probability of no purchase, as is (purchase businesses);
- ``rfm_logistic``: the logistic regression on recency, frequency and money;
- ``logistic``: our logistic regression on every feature;
- the oracle: the generator's true probabilities on the same rows (the limit).

Churn, and phase-out as ``metrics/phase_out.json`` ``combined`` (churners
count as 0), and the evaluate stage's verdicts (``comparison``): LightGBM
and the kept model against the best baseline, beat / tie / lose with the
ROC AUC difference and its 95% paired customer-bootstrap interval. Then it checks the issue's criteria and prints PASS / FAIL:
on ``purchases`` LightGBM beats BG/NBD and the RFM logistic regression by at
least 0.02 churn ROC AUC with a lower log loss, and beats the logistic
regressions at phase-out; on ``purchases_btyd`` it is within 0.01 churn
ROC AUC of BG/NBD.

Settings a user sets for a 12-month purchase export (README, "Short
histories"): ``features.as_of_first`` at the end of the third month
(``--history-months``: with a 365-day lookback the default first as-of date
would leave no labelled date), and ``train.test_dates: 1``: the latest
labelled date is the out-of-time test, which leaves four training dates
before it (three test dates would leave two). The subscription business runs
params.yaml as it is. ``snapshot`` is a one-snapshot contractual export
(``tests/fixtures/businesses.write_snapshot``: every history ends on
2025-06-30, churn dates in the 89 days after; the e2e test's settings: one
as-of date, a 90-day horizon, a customer split); its oracle is the
fixture's own churn probability, and it has no phase-out labels.

    python benchmarks/bench_classical.py                                   # 3 kinds x 3 seeds, 20k customers
    python benchmarks/bench_classical.py --kinds purchases --seeds 20261128 --trials 0
    python benchmarks/bench_classical.py --evaluate-only     # evaluate the models of an earlier run again

The last line, ``RESULTS [...]``, holds the numbers as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from bench_oracle import build, run_config

from omvald.config import Config, load_config
from omvald.data.generate_oracle import ORACLE_COLUMNS, join_truth, score_metrics
from omvald.data.validate import run_validate
from omvald.features.stage import run_features
from omvald.model.evaluate import run_evaluate
from omvald.model.split import Split
from omvald.model.train import run_train

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from fixtures.businesses import snapshot_churn_probability, write_snapshot  # noqa: E402  (the e2e tests' snapshot)

KINDS = ("purchases", "purchases_btyd", "subscription", "snapshot")
SNAPSHOT = dt.date(2025, 6, 30)
SHOWN = ("kept", "lgbm", "bgnbd", "rfm_logistic", "logistic", "oracle")
MARGIN_PURCHASES, MARGIN_BTYD = 0.02, 0.01  # the issue's bars


def bench_config(params: Config, kind: str, seed: int, customers: int, history_months: int, trials: int | None):
    """params.yaml's settings for one run, plus what a user sets for a 12-month purchase export or a snapshot."""
    if kind == "snapshot":  # tests/e2e/test_own_data.py SNAPSHOT_PARAMS
        data = dataclasses.replace(params.data, data_end=SNAPSHOT + dt.timedelta(days=90))
        features = dataclasses.replace(params.features, as_of_first=SNAPSHOT, as_of_last=SNAPSHOT, horizon_days=90)
        cfg = dataclasses.replace(params, seed=seed, data=data, features=features)
        if trials is not None:
            search = dataclasses.replace(cfg.train.search, n_trials=trials)
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, search=search))
        return cfg
    cfg = run_config(params, kind, seed, customers, history_months)
    train = cfg.train
    if kind != "subscription":
        train = dataclasses.replace(train, test_dates=1)
    if trials is not None:
        train = dataclasses.replace(train, search=dataclasses.replace(train.search, n_trials=trials))
    return dataclasses.replace(cfg, train=train)


KEYS = ("n_rows", "positive_rate", "roc_auc", "pr_auc", "log_loss", "ece")


def _keys(summary: dict) -> dict:
    return {k: summary[k] for k in KEYS if k in summary}


def model_metrics(block: dict, kept: str) -> dict[str, dict]:
    """Overall metrics per model of a metrics block, with the kept model also under ``kept``."""
    out = {name: _keys(res["overall"]) for name, res in block["models"].items()}
    return {"kept": out[kept], **out}


def build_snapshot(cfg: Config, folder: Path, customers: int, seed: int) -> dict:
    """Write the one-snapshot export, its true churn probabilities (``truth_asof.parquet``), validate and build features."""
    start = time.perf_counter()
    write_snapshot(folder / "synthetic", n_customers=customers, seed=seed, snapshot=SNAPSHOT)
    people = pd.read_csv(folder / "synthetic" / "customers.csv")
    fee = pd.read_csv(folder / "synthetic" / "billing.csv").groupby("customer_id")["amount"].first()
    tenure = (pd.Timestamp(SNAPSHOT) - pd.to_datetime(people["signup_date"])).dt.days
    p = snapshot_churn_probability(
        people["contract_type"], people["payment_method"], tenure, fee.loc[people["customer_id"]]
    )
    truth = pd.DataFrame(
        {"customer_id": people["customer_id"].astype(str), "as_of": pd.Timestamp(SNAPSHOT), "p_churn_true": p}
    )
    truth.to_parquet(folder / "truth_asof.parquet", index=False)
    timings = {"generate_s": time.perf_counter() - start}
    start = time.perf_counter()
    run_validate(cfg, folder / "synthetic", folder / "interim", profile_path=None)
    run_features(cfg, folder / "interim", folder / "features")
    timings["validate_features_s"] = time.perf_counter() - start
    return timings


def oracle_metrics(folder: Path, split: Split) -> dict[str, dict]:
    """The true probabilities' metrics on the split's test rows (churn; phase-out combined, where known)."""
    frame = pd.read_parquet(
        folder / "features" / "training.parquet", columns=["customer_id", "as_of", "churn", "phase_out"]
    )
    frame = frame.loc[frame["churn"].notna()]
    test = frame.loc[split.mask(frame, "test")].reset_index(drop=True)
    rows = join_truth(pd.read_parquet(folder / "truth_asof.parquet"), test)
    columns = {t: c for t, c in ORACLE_COLUMNS.items() if c in rows and rows[c].notna().any()}
    return score_metrics(rows, {"oracle": columns})["oracle"]


def one_run(params: Config, kind: str, seed: int, args: argparse.Namespace) -> dict:
    cfg = bench_config(params, kind, seed, args.customers, args.history_months, args.trials)
    folder = args.work / f"{kind}-{seed}-{args.customers}"
    load_before = os.getloadavg()[0]
    timings = {}
    if args.rebuild or not (folder / "features" / "training.parquet").exists():
        timings = build_snapshot(cfg, folder, args.customers, seed) if kind == "snapshot" else build(cfg, folder)
    start = time.perf_counter()
    if args.evaluate_only:
        targets = json.loads((folder / "models" / "targets.json").read_text())
        trained = {"kept": targets["kept"], "search": targets["search"]}
    else:
        trained = run_train(cfg, folder / "features", folder / "models")
    timings["train_s"] = time.perf_counter() - start
    result = run_evaluate(cfg, folder / "features", folder / "models", folder / "metrics", folder / "plots")
    split = Split.from_json(json.loads((folder / "models" / "split.json").read_text()))
    oracle = oracle_metrics(folder, split)
    churn = {**model_metrics(result["churn"], result["churn"]["kept_model"]), "oracle": _keys(oracle["churn"])}
    phase_out = {}
    if not result["phase_out"].get("skipped"):
        combined = result["phase_out"]["combined"]
        phase_out = {**model_metrics(combined, result["phase_out"]["kept_model"]), "oracle": _keys(oracle["phase_out"])}
    verdicts = {
        target: verdict_records(result[target]["comparison"])
        for target in ("churn", "phase_out")
        if not result[target].get("skipped")
    }
    return {
        "kind": kind,
        "seed": seed,
        "customers": args.customers,
        "split_step": split.step,
        "test_dates": [d.isoformat() for d in split.dates["test"]],
        "train_dates": [d.isoformat() for d in split.dates["train"]],
        "kept": {t: trained["kept"][t]["kept"] for t in trained["kept"]},
        "search": {t: trained["search"][t]["trials"] for t in trained["search"]},
        "churn": churn,
        "phase_out": phase_out,
        "verdicts": verdicts,
        **{k: round(v, 1) for k, v in timings.items()},
        "load": f"{load_before:.1f}-{os.getloadavg()[0]:.1f}",
    }


def verdict_records(cmp: dict) -> dict[str, dict]:
    """``{"<model> vs <baseline>": {auc_diff, low, high, verdict}}``: LightGBM and the kept model against every baseline."""
    return {
        f"{model} vs {base}": {k: diff[k] for k in ("auc_diff", "low", "high", "verdict")}
        for model, against in cmp["versus"].items()
        for base, diff in against.items()
    }


def criteria(run: dict) -> list[tuple[str, bool]]:
    """The issue's checks that apply to this run's business: (sentence with numbers, passed)."""
    c, p = run["churn"], run["phase_out"]
    auc, loss = (lambda m: c.get(m, {}).get("roc_auc")), (lambda m: c.get(m, {}).get("log_loss"))
    out = []
    if run["kind"] == "purchases":
        for base in ("bgnbd", "rfm_logistic"):
            gap = auc("lgbm") - auc(base)
            ok = gap >= MARGIN_PURCHASES and loss("lgbm") < loss(base)
            out.append((f"churn: lgbm - {base} = {gap:+.3f} AUC (>= {MARGIN_PURCHASES}), log loss "
                        f"{loss('lgbm'):.4f} vs {loss(base):.4f}", ok))  # fmt: skip
        for base in ("logistic", "rfm_logistic"):
            if p:
                gap = p["lgbm"]["roc_auc"] - p[base]["roc_auc"]
                out.append((f"phase-out: lgbm - {base} = {gap:+.3f} AUC (> 0)", gap > 0))
    if run["kind"] == "purchases_btyd":
        gap = auc("lgbm") - auc("bgnbd")
        out.append((f"churn: lgbm - bgnbd = {gap:+.3f} AUC (>= -{MARGIN_BTYD})", gap >= -MARGIN_BTYD))
    kept_gap = auc("kept") - auc("logistic")
    out.append((f"churn: kept ({run['kept']['churn']}) - logistic = {kept_gap:+.3f} AUC (>= -0.01)", kept_gap >= -0.01))
    return out


def _cells(block: dict, key: str) -> str:
    return " ".join(f"{block[m][key]:>7.3f}" if m in block and key in block[m] else f"{'-':>7}" for m in SHOWN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: params seed and the next two")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument(
        "--history-months", type=int, default=3, help="purchase exports: months before the first as-of date"
    )
    parser.add_argument("--trials", type=int, default=None, help="train.search.n_trials (default: params.yaml's)")
    parser.add_argument("--rebuild", action="store_true", help="generate and build features again even if present")
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate the models in --work again, no training")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "omvald-bench" / "classical")
    args = parser.parse_args()
    params = load_config(args.params)
    seeds = args.seeds or [params.seed, params.seed + 1, params.seed + 2]
    print(
        f"{os.cpu_count()} cores; horizon {params.features.horizon_days} days; {args.customers:,} customers", flush=True
    )
    names = " ".join(f"{m:>7}" for m in SHOWN)
    print(f"{'kind':<15} {'seed':>9} {'target':<9} {'metric':<8} {names}  kept / train s / load", flush=True)
    results, failed = [], []
    for kind in args.kinds:
        for seed in seeds:
            run = one_run(params, kind, seed, args)
            results.append(run)
            for target in ("churn", "phase_out"):
                block = run[target]
                if not block:
                    continue
                for key in ("roc_auc", "log_loss"):
                    extra = (
                        f"  {run['kept'][target]} / {run['train_s']:.0f} / {run['load']}" if key == "roc_auc" else ""
                    )
                    print(f"{kind:<15} {seed:>9} {target:<9} {key:<8} {_cells(block, key)}{extra}", flush=True)
            for target, records in run["verdicts"].items():
                for pair, d in records.items():
                    interval = "" if d["low"] is None else f" [{d['low']:+.3f}, {d['high']:+.3f}]"
                    print(f"  {target}: {pair}: {d['auc_diff']:+.3f}{interval} {d['verdict']}", flush=True)
            for sentence, ok in criteria(run):
                print(f"  {'PASS' if ok else 'FAIL'} {sentence}", flush=True)
                if not ok:
                    failed.append(f"{kind} {seed}: {sentence}")
    print(f"{len(failed)} criteria failed" + "".join(f"\n  {f}" for f in failed), flush=True)
    print("RESULTS " + json.dumps(results, default=str))


if __name__ == "__main__":
    sys.exit(main())

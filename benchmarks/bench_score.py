"""Benchmark ``omvald score``: time and peak memory per phase, reason-code cost.

    python benchmarks/bench_score.py                                  # 1M customers, top:100000 and none
    python benchmarks/bench_score.py --customers 100000 --repeats 3   # smaller, median of 3
    python benchmarks/bench_score.py --explain all --explain none --customers 20000
    python benchmarks/bench_score.py --work /tmp/bench --models-dir models

Generates the synthetic business once (``--months`` of history: scoring
only looks back ``features.lookback_days``, so 14 months keep the files
realistic for a score run without paying for 3 years of touchpoints) into
``--work`` (outside the repository; reused by later runs), and uses the
trained models in ``--models-dir`` or, if there are none, trains quick ones
on a 20k-customer business. Each ``--explain`` policy runs ``--repeats``
times, each in a fresh subprocess so its peak memory (RSS sampled every
20 ms, per phase) is its own; seconds are the median over the repeats,
peaks the maximum. The 1-minute load average is printed with each run:
on a shared machine, numbers taken at load > cores are slower than the
code. Targets (2 cores): 1M customers, top:100000 < 4 min and < 8 GB;
none < 2 min.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import joblib
import psutil

from omvald.config import Config, load_config

PHASES = ("load_models", "read_validate", "features", "predict", "drift", "reasons", "write")


class RssSampler:
    """Peak resident memory per phase, sampled every 20 ms in a background thread."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.phase = "start"
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self.proc.memory_info().rss
            self.peak[self.phase] = max(self.peak.get(self.phase, 0), rss)
            time.sleep(0.02)

    def enter(self, phase: str) -> None:
        rss = self.proc.memory_info().rss
        self.peak[self.phase] = max(self.peak.get(self.phase, 0), rss)
        self.phase = phase

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def ensure_data(cfg: Config, customers: int, months: int, work: Path) -> Path:
    from omvald.data.generate import run_generate

    folder = work / f"business_{customers}_{months}m"
    if not (folder / "customers.parquet").exists():
        t = time.perf_counter()
        gen = dataclasses.replace(cfg.generate, n_customers=customers, months=months)
        run_generate(dataclasses.replace(cfg, generate=gen), folder, work / f"truth_{customers}_{months}m.parquet")
        print(f"generated {customers:,} customers x {months} months in {time.perf_counter() - t:.0f}s -> {folder}")
    return folder


def ensure_models(cfg: Config, models_dir: Path, work: Path) -> Path:
    if (models_dir / "churn.joblib").exists() and (models_dir / "phase_out.joblib").exists():
        return models_dir
    quick = work / "quick_models"
    if (quick / "churn.joblib").exists():
        return quick
    import datetime as dt

    from omvald.features.asof import month_end
    from omvald.features.build import build_features
    from omvald.features.spec import BucketTables
    from omvald.model.estimators import LGBMChurnModel
    from omvald.scoring.stage import read_and_validate

    print(f"no models in {models_dir}; training quick ones on a 20k-customer business")
    folder = ensure_data(cfg, 20_000, 24, work)
    tables, meta, _ = read_and_validate(cfg, folder, None)
    end = dt.date.fromisoformat(str(meta["data_end"])[:10])
    dates, d = [], month_end(end - dt.timedelta(days=cfg.features.horizon_days + 31))
    while len(dates) < 6:
        dates.append(d)
        d = month_end(d.replace(day=1) - dt.timedelta(days=1))
    frame = build_features(BucketTables(**tables), dates, cfg.features, meta, with_labels=True)
    frame = frame[frame["churn"].notna()]
    drop = {"customer_id", "as_of", "segment", "churn", "phase_out", "next_revenue"}
    features = [c for c in frame.columns if c not in drop]
    quick.mkdir(parents=True, exist_ok=True)
    hp = dataclasses.asdict(cfg.train.churn)
    churn = LGBMChurnModel(**hp, calibration="none", seed=cfg.seed).fit(frame[features], frame["churn"].astype(int))
    stays = frame[frame["churn"] == 0]
    phase = LGBMChurnModel(**hp, calibration="none", seed=cfg.seed).fit(stays[features], stays["phase_out"].astype(int))
    joblib.dump(churn, quick / "churn.joblib")
    joblib.dump(phase, quick / "phase_out.joblib")
    return quick


def model_size(path: Path) -> dict[str, int]:
    model = joblib.load(path)
    trees = model.booster_.dump_model(num_iteration=model.n_trees_)["tree_info"]
    return {"trees": len(trees), "leaves": sum(t["num_leaves"] for t in trees), "features": len(model.feature_names_)}


def run_one(cfg: Config, folder: Path, models_dir: Path, policy: str, work: Path) -> dict[str, Any]:
    """One scoring run in this process; returns timings and peaks (the child side)."""
    from omvald.scoring.stage import run_score

    out = work / f"scores_{policy.replace(':', '_')}.parquet"
    with RssSampler() as sampler:
        t = time.perf_counter()
        summary = run_score(cfg, folder, out, explain=policy, models_dir=models_dir, on_phase=sampler.enter)
        total = time.perf_counter() - t
        sampler.enter("done")
    return {
        "policy": policy,
        "total_s": round(total, 1),
        "timings_s": summary["timings_s"],
        "peak_rss_gb": {k: round(v / 2**30, 2) for k, v in sampler.peak.items() if k in PHASES},
        "n_scored": summary["n_scored"],
        "n_explained": summary["n_explained"],
    }


def load() -> float:
    """1-minute load average (the machine may be shared)."""
    return os.getloadavg()[0]


def run_child(args: argparse.Namespace, policy: str, script: str = __file__) -> dict[str, Any]:
    cmd = [
        sys.executable, script, "--customers", str(args.customers), "--months", str(args.months),
        "--models-dir", str(args.models_dir), "--work", str(args.work), "--params", str(args.params),
        "--child", policy,
    ]  # fmt: skip
    load_before = load()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        print(proc.stdout[-2000:], proc.stderr[-4000:])
        raise SystemExit(f"{policy}: run failed")
    result = json.loads(line.removeprefix("RESULT "))
    result["load"] = (round(load_before, 1), round(load(), 1))
    return result


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median seconds per phase and total, maximum peak RSS per phase."""
    out = dict(runs[0])
    out["total_s"] = statistics.median(r["total_s"] for r in runs)
    out["timings_s"] = {p: statistics.median(r["timings_s"].get(p, 0.0) for r in runs) for p in PHASES}
    out["peak_rss_gb"] = {
        p: max(r["peak_rss_gb"].get(p, 0.0) for r in runs) for p in PHASES if any(p in r["peak_rss_gb"] for r in runs)
    }
    out["loads"] = [r["load"] for r in runs]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000, help="synthetic customers (default 1M)")
    parser.add_argument("--months", type=int, default=14, help="months of history to generate (default 14)")
    parser.add_argument("--explain", action="append", help="policy to run, repeatable (default: top:100000, none)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per policy; seconds are the median")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "omvald-bench", help="data + outputs (reused)"
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one policy, print JSON
    args = parser.parse_args()
    cfg = load_config(args.params)
    args.work.mkdir(parents=True, exist_ok=True)
    folder = ensure_data(cfg, args.customers, args.months, args.work)
    models_dir = ensure_models(cfg, args.models_dir, args.work)
    if args.child:
        print("RESULT " + json.dumps(run_one(cfg, folder, models_dir, args.child, args.work)))
        return

    sizes = {t: model_size(models_dir / f"{t}.joblib") for t in ("churn", "phase_out")}
    print(
        f"customers {args.customers:,} ({args.months} months), {os.cpu_count()} cores, models {models_dir}: "
        + "; ".join(
            f"{t} {s['trees']} trees / {s['leaves']} leaves / {s['features']} features" for t, s in sizes.items()
        ),
        flush=True,
    )
    results = []
    for policy in args.explain or ["top:100000", "none"]:
        runs = []
        for i in range(args.repeats):
            runs.append(run_child(args, policy))
            r = runs[-1]
            print(
                f"  run {i + 1}/{args.repeats} --explain {policy}: {r['total_s']:.1f} s, "
                f"peak {max(r['peak_rss_gb'].values()):.2f} GB, load {r['load'][0]} -> {r['load'][1]}",
                flush=True,
            )
        results.append(summarize_runs(runs))

    header = f"{'phase':<14}" + "".join(f"{'s':>9}{'peak GB':>9}" for _ in results)
    print("\n" + f"{'--explain':<14}" + "".join(f"{r['policy'][:18]:>18}" for r in results))
    print(header)
    for phase in PHASES:
        cells = "".join(
            f"{r['timings_s'].get(phase, 0.0):>9.1f}{r['peak_rss_gb'].get(phase, float('nan')):>9.2f}" for r in results
        )
        print(f"{phase:<14}{cells}")
    print(f"{'total':<14}" + "".join(f"{r['total_s']:>9.1f}{max(r['peak_rss_gb'].values()):>9.2f}" for r in results))
    print(f"{'scored':<14}" + "".join(f"{r['n_scored']:>18,}" for r in results))
    print(f"{'explained':<14}" + "".join(f"{r['n_explained']:>18,}" for r in results))
    print(f"{'runs':<14}" + "".join(f"{len(r['loads']):>18}" for r in results))
    print(f"{'load (1 min)':<14}" + "".join(f"{' '.join(f'{a}-{b}' for a, b in r['loads']):>18}" for r in results))
    for r in results:
        if r["n_explained"]:
            per_k = r["timings_s"].get("reasons", 0.0) / r["n_explained"] * 1000
            print(
                f"reason codes ({r['policy']}): {per_k:.2f} s per 1,000 customers "
                "(both models: TreeSHAP + drivers + sentences)"
            )
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main()

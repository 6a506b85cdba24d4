"""Benchmark the features stage: wall time and peak memory for N customers, 12 as-of dates.

    python benchmarks/bench_features.py                              # 20k and 1M customers, 1 and 16 buckets
    python benchmarks/bench_features.py --customers 20000 --buckets 1 16 --repeats 3
    python benchmarks/bench_features.py --customers 1000000 --buckets 8 16 --work /tmp/bench
    python benchmarks/bench_features.py --customers 200000 --buckets 8 --repeats 3 \
        --yardstick ../shared/tools/ref-features.py          # beside the yardstick, run after run

Data comes from ``omvald generate`` (``--months`` of history, default 24:
12 monthly as-of dates after a 12-month lookback) then ``omvald validate``,
both reused when the folders already exist under ``--work`` (outside the
repository). If the ``validate`` command is not available, a minimal interim
folder (hash_slot, sorted, meta.json) is written here instead. Each run is a
fresh subprocess; its peak memory is the largest sum of the resident memory
of it and its bucket workers, sampled every 0.2 s (``measure.py``); CPU
seconds include the workers. Seconds are the median of ``--repeats`` runs,
peaks the maximum, and the 1-minute load average is printed next to each
run (the machine may be shared). ``--workers`` sets ``features.workers``
(processes building buckets at once; one-bucket runs always use one).
Targets for 1M customers: < 5 min and < 8 GB; 16 buckets < 3 GB and <= 1.2x
the one-bucket time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from measure import run_sampled

ROOT = Path(__file__).resolve().parents[1]
N_DATES = 12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, nargs="+", default=[20_000, 1_000_000])
    parser.add_argument("--buckets", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--workers", type=int, nargs="+", default=None, help="bucket worker processes (default: features.workers)"
    )
    parser.add_argument("--months", type=int, default=24, help="months of history to generate (default 24)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per setting; seconds are the median")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "omvald-bench")
    parser.add_argument(
        "--yardstick",
        type=Path,
        default=None,
        help="ref-features.py: run it after each features run on the same interim tables and print the ratio",
    )
    parser.add_argument("--child", nargs=4, metavar=("INTERIM", "OUT", "BUCKETS", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child[0]), Path(args.child[1]), int(args.child[2]), int(args.child[3]))
        return
    workers_list = args.workers or [yaml.safe_load((ROOT / "params.yaml").read_text())["features"]["workers"]]
    print(f"{os.cpu_count()} cores; {N_DATES} as-of dates; {args.months} months of history", flush=True)
    results = []
    for n in args.customers:
        interim = prepare(n, args.work, args.months)
        for buckets, workers in [(b, w) for b in args.buckets for w in workers_list if w == 1 or b > 1]:
            out = args.work / f"features-{n}-{buckets}"
            runs = []
            for _ in range(args.repeats):
                load_before = os.getloadavg()[0]
                proc, peak = run_sampled(
                    [sys.executable, __file__, "--child", str(interim), str(out), str(buckets), str(workers)]
                )
                if proc.returncode != 0:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"features run failed for {n} customers, {buckets} buckets, {workers} workers")
                run = json.loads(proc.stdout.strip().splitlines()[-1])
                run["peak_rss_gb"] = round(peak / 1024**3, 2)
                run["load"] = f"{load_before:.1f}-{os.getloadavg()[0]:.1f}"
                runs.append(run)
                print(
                    f"  {n:,} customers, {buckets} buckets (used {run['buckets_used']}), {workers} workers: "
                    f"{run['seconds']:.1f} s, "
                    f"cpu {run['cpu_seconds']:.0f} s, peak {run['peak_rss_gb']:.2f} GB "
                    f"(stage process alone {run['stage_process_peak_gb']:.2f} GB), load {run['load']}",
                    flush=True,
                )
                if args.yardstick:
                    run["yardstick"] = yardstick(args.yardstick, interim, args.work / f"yardstick-{n}.parquet")
                    y = run["yardstick"]
                    print(
                        f"  yardstick ({y['features']} features): {y['seconds']:.1f} s, cpu {y['cpu_seconds']:.0f} s, "
                        f"peak {y['peak_rss_gb']:.2f} GB, load {y['load']}",
                        flush=True,
                    )
            result = {
                "customers": n,
                "buckets": buckets,
                "workers": workers,
                **runs[-1],
                "seconds": statistics.median(r["seconds"] for r in runs),
                "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
                "peak_rss_gb": max(r["peak_rss_gb"] for r in runs),
                "runs": len(runs),
                "loads": [r["load"] for r in runs],
            }
            if args.yardstick:
                ys = [r["yardstick"] for r in runs]
                result["yardstick"] = {
                    "seconds": statistics.median(y["seconds"] for y in ys),
                    "cpu_seconds": statistics.median(y["cpu_seconds"] for y in ys),
                    "peak_rss_gb": max(y["peak_rss_gb"] for y in ys),
                    "features": ys[-1]["features"],
                    "loads": [y["load"] for y in ys],
                }
                result["ratio_to_yardstick"] = round(result["seconds"] / result["yardstick"]["seconds"], 2)
            results.append(result)
    print(f"\n{'customers':>10} {'buckets':>7} {'workers':>7} {'runs':>4} {'seconds':>8} {'cpu s':>7} {'peak GB':>8} "
          f"{'training rows':>14}  load (1 min)")  # fmt: skip
    for r in results:
        print(
            f"{r['customers']:>10,} {r['buckets']:>7} {r['workers']:>7} {r['runs']:>4} {r['seconds']:>8.1f} "
            f"{r['cpu_seconds']:>7.0f} "
            f"{r['peak_rss_gb']:>8.2f} {r['training_rows']:>14,}  {' '.join(r['loads'])}"
        )
    for r in results:
        if "yardstick" in r:
            y = r["yardstick"]
            print(
                f"{r['customers']:,} customers, {r['buckets']} buckets: features {r['seconds']:.1f} s / yardstick "
                f"{y['seconds']:.1f} s = {r['ratio_to_yardstick']:.2f} (medians of {r['runs']}); cpu "
                f"{r['cpu_seconds']:.0f} / {y['cpu_seconds']:.0f} s; peak {r['peak_rss_gb']:.2f} / "
                f"{y['peak_rss_gb']:.2f} GB; yardstick loads {' '.join(y['loads'])}"
            )
    print("RESULTS " + json.dumps(results))


def yardstick(script: Path, interim: Path, out: Path) -> dict:
    """One run of ``ref-features.py`` on ``interim``: its statement's seconds, process CPU seconds, peak GB, load."""
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc, peak = run_sampled([sys.executable, str(script), str(interim), str(out)])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"yardstick failed on {interim}")
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    out.unlink(missing_ok=True)
    return {
        "seconds": found["seconds"],
        "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "peak_rss_gb": round(peak / 1024**3, 2),
        "features": found["features"],
        "load": f"{load_before:.1f}-{os.getloadavg()[0]:.1f}",
    }


def prepare(n: int, work: Path, months: int = 24) -> Path:
    """Raw and interim folders for ``n`` customers and ``months`` of history (reused if present)."""
    base = work / f"n{n}_{months}m"
    raw, interim = base / "raw", base / "interim"
    params = base / "params.yaml"
    base.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg["generate"]["n_customers"] = n
    cfg["generate"]["months"] = months
    params.write_text(yaml.safe_dump(cfg))
    if not (raw / "customers.parquet").exists():
        t0 = time.perf_counter()
        _omvald("generate", str(raw), "--truth", str(base / "truth.parquet"), "--params", str(params))
        print(f"generated {n:,} customers in {time.perf_counter() - t0:.0f} s", flush=True)
    if not (interim / "meta.json").exists():
        t0 = time.perf_counter()
        if _has_command("validate"):
            # --profile: never overwrite the repository's reports/profile.json
            _omvald(
                "validate", str(raw), str(interim), "--params", str(params), "--profile", str(base / "profile.json")
            )
        else:
            print("`omvald validate` not available: writing a minimal interim folder", flush=True)
            _minimal_interim(raw, interim)
        print(f"interim tables for {n:,} customers in {time.perf_counter() - t0:.0f} s", flush=True)
    return interim


def _omvald(*args: str) -> None:
    subprocess.run([sys.executable, "-c", "from omvald.cli import main; main()", *args], check=True, cwd=ROOT)


def _has_command(name: str) -> bool:
    proc = subprocess.run(
        [sys.executable, "-c", "from omvald.cli import main; main()", name, "--help"], capture_output=True, cwd=ROOT
    )
    return proc.returncode == 0


def _minimal_interim(raw: Path, interim: Path) -> None:
    """Interim tables as `validate` writes them (no checks): hash_slot, sorted, typed, meta.json."""
    import duckdb
    import pandas as pd

    from omvald.buckets import N_SLOTS, hash_slot

    interim.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    ids = con.sql(f"SELECT customer_id FROM read_parquet('{raw}/customers.parquet')").df()["customer_id"]
    con.register("slots", pd.DataFrame({"customer_id": ids, "hash_slot": hash_slot(ids).astype("int16")}))
    order = {"customers": "signup_date", "billing": "invoice_date", "touchpoints": "timestamp"}
    columns, rows = {}, {}
    for table, date_col in order.items():
        src = f"read_parquet('{raw}/{table}.parquet')"
        extra = ", CAST(t.timestamp AS DATE) AS date" if table == "touchpoints" else ""
        con.execute(
            f"COPY (SELECT t.*{extra}, s.hash_slot FROM {src} t JOIN slots s USING (customer_id) "
            f"ORDER BY s.hash_slot, t.customer_id, t.{date_col}) TO '{interim}/{table}.parquet' "
            "(FORMAT parquet, ROW_GROUP_SIZE 100000)"
        )
        cols = [c for c in con.sql(f"SELECT * FROM read_parquet('{interim}/{table}.parquet') LIMIT 0").columns]
        columns[table] = [c for c in cols if c != "hash_slot"]
        rows[table] = con.execute(f"SELECT count(*) FROM read_parquet('{interim}/{table}.parquet')").fetchone()[0]
    start, end = con.execute(
        f"SELECT min(invoice_date), max(invoice_date) FROM read_parquet('{interim}/billing.parquet')"
    ).fetchone()
    meta = {
        "data_start": str(start),
        "data_end": str(end),
        "contractual": "churn_date" in columns["customers"],
        "columns": columns,
        "n_slots": N_SLOTS,
        "rows": rows,
        "duplicates_dropped": {},
    }
    (interim / "meta.json").write_text(json.dumps(meta, indent=2))


def _child(interim: Path, out: Path, buckets: int, workers: int) -> None:
    import dataclasses

    from omvald.config import load_config
    from omvald.features.asof import month_end
    from omvald.features.stage import run_features

    meta = json.loads((interim / "meta.json").read_text())
    data_end = dt.date.fromisoformat(meta["data_end"])
    last = (
        month_end(data_end)
        if month_end(data_end) == data_end
        else month_end(data_end.replace(day=1) - dt.timedelta(days=1))
    )
    first = last
    for _ in range(N_DATES - 1):
        first = month_end(first.replace(day=1) - dt.timedelta(days=1))
    cfg = load_config(ROOT / "params.yaml")
    features = dataclasses.replace(cfg.features, n_buckets=buckets, workers=workers, as_of_first=first, as_of_last=last)
    cfg = dataclasses.replace(cfg, features=features)
    t0 = time.perf_counter()
    result = run_features(cfg, interim, out)
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    workers_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "stage_process_peak_gb": round(usage.ru_maxrss / 1024**2, 2),
                "cpu_seconds": round(
                    usage.ru_utime + usage.ru_stime + workers_usage.ru_utime + workers_usage.ru_stime, 1
                ),
                "as_of_dates": len(result["as_of_dates"]),
                "buckets_used": result["n_buckets"],  # more than asked when one would exceed features.bucket_rows
                "training_rows": result["n_rows"]["training"],
                "scoring_rows": result["n_rows"]["scoring"],
            }
        )
    )


if __name__ == "__main__":
    main()

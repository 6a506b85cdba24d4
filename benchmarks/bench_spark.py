"""Features stage: local engine (1 and 16 buckets) vs Spark local[2], time and peak memory.

    python benchmarks/bench_spark.py --customers 20000 [--work /tmp/omvald-bench]

Builds a synthetic interim folder (24 months) once, then runs each engine
in its own subprocess over 12 monthly as-of dates while a sampler sums the
RSS of that subprocess and all its descendants (for Spark: the driver, the
JVM and the Python workers) every 0.2 s. Prints one JSON line per run and a
table; seconds include the Spark session start-up, reported separately.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

MODES = ("local-1", "local-16", "spark-local[2]")
AS_OF_FIRST, AS_OF_LAST = "2024-01-31", "2024-12-31"  # 12 month ends of the generated 2023-2024 data


def make_interim(folder: Path, n_customers: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from e2e.test_spark import write_interim  # the same synthetic interim layout the tests use

    write_interim(folder, n_customers)


def run_one(mode: str, interim: Path, out: Path) -> dict:
    """Runs inside the measured subprocess."""
    from omvald.config import config_from_dict

    n_buckets = 16 if mode != "local-1" else 1
    cfg = config_from_dict({"features": {"n_buckets": n_buckets, "as_of_first": AS_OF_FIRST, "as_of_last": AS_OF_LAST}})
    t0 = time.perf_counter()
    session_s = 0.0
    if mode.startswith("spark"):
        from omvald.spark.features import run_features_spark
        from omvald.spark.session import spark_session

        spark = spark_session("local[2]", n_buckets=n_buckets)
        session_s = time.perf_counter() - t0
        meta = run_features_spark(cfg, interim, out, "local[2]", spark=spark)
    else:
        from omvald.features.build import run_features

        meta = run_features(cfg, interim, out)
    return {"seconds": time.perf_counter() - t0, "session_seconds": session_s, "rows": meta["n_rows"]}


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a worker may exit between listing and reading
            total += p.memory_info().rss
    return total


def measure(mode: str, interim: Path, work: Path) -> dict:
    out = work / f"features-{mode.replace('[', '').replace(']', '')}"
    cmd = [sys.executable, __file__, "--one", mode, "--interim", str(interim), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    ps, peak, done = psutil.Process(proc.pid), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(ps))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{mode} failed ({proc.returncode})")
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"mode": mode, **result, "peak_rss_mb": round(peak[0] / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/omvald-bench-spark"))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--interim", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.interim, args.out)))
        return
    interim = args.work / f"interim-{args.customers}"
    if not (interim / "meta.json").exists():
        make_interim(interim, args.customers)
    rows = []
    for mode in args.modes.split(","):
        rows.append(measure(mode, interim, args.work))
        print(json.dumps({"customers": args.customers, **rows[-1]}), flush=True)
    print(f"\n{'mode':<16}{'seconds':>10}{'of which session':>18}{'peak RSS MB':>13}")
    for r in rows:
        print(f"{r['mode']:<16}{r['seconds']:>10.1f}{r['session_seconds']:>18.1f}{r['peak_rss_mb']:>13}")


if __name__ == "__main__":
    main()

"""Features stage: local engine (buckets x workers) vs Spark local[2], time and peak memory.

    python benchmarks/bench_spark.py --customers 20000 [--work /tmp/omvald-bench]
    python benchmarks/bench_spark.py --interim /tmp/bench/interim_1m_24m   # an existing `omvald validate` output

Builds a synthetic interim folder (24 months) once, or reuses ``--interim``
(then the 12 as-of dates are the month ends up to its meta.json
``data_end``), then runs each engine
in its own subprocess over 12 monthly as-of dates while a sampler sums the
RSS of that subprocess and all its descendants (for Spark: the driver, the
JVM and the Python workers) every 0.2 s. Prints one JSON line per run and a
table: the summed peak, and each role's own peak (driver = the stage
process, JVM, workers = bucket worker processes or Spark's Python workers);
seconds include the Spark session start-up, reported separately.

Modes (``--modes``, comma-separated): ``local-B`` = the local engine with B
buckets one at a time, ``local-BwW`` = B buckets in W worker processes,
``spark-local[2]`` = Spark with ``--spark-buckets`` buckets (default 16).
At 1M customers one bucket does not fit in 24 GB; use e.g.
``--modes local-32w2,spark-local[2] --spark-buckets 32``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from pathlib import Path

from measure import run_sampled

MODES = ("local-1", "local-16", "local-16w2", "spark-local[2]")
LOCAL_MODE = re.compile(r"local-(\d+)(?:w(\d+))?$")
AS_OF_FIRST, AS_OF_LAST = "2024-01-31", "2024-12-31"  # 12 month ends of the generated 2023-2024 data
N_DATES = 12


def as_of_range(interim: Path) -> tuple[str, str]:
    """The first and last of the ``N_DATES`` month ends up to the interim ``data_end``."""
    from omvald.features.asof import month_end

    data_end = dt.date.fromisoformat(str(json.loads((interim / "meta.json").read_text())["data_end"])[:10])
    last = month_end(data_end)
    if last > data_end:  # data_end inside a month: the month before is the last whole one
        last = month_end(data_end.replace(day=1) - dt.timedelta(days=1))
    first = last.replace(day=1)
    for _ in range(N_DATES - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return month_end(first).isoformat(), last.isoformat()


def make_interim(folder: Path, n_customers: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from e2e.test_spark import write_interim  # the same synthetic interim layout the tests use

    write_interim(folder, n_customers)


def run_one(mode: str, interim: Path, out: Path, as_of: tuple[str, str], spark_buckets: int) -> dict:
    """Runs inside the measured subprocess."""
    from omvald.config import config_from_dict

    local = LOCAL_MODE.match(mode)
    n_buckets, workers = (int(local[1]), int(local[2] or 1)) if local else (spark_buckets, 1)
    features = {"n_buckets": n_buckets, "workers": workers, "as_of_first": as_of[0], "as_of_last": as_of[1]}
    cfg = config_from_dict({"features": features})
    t0 = time.perf_counter()
    session_s = 0.0
    if mode.startswith("spark"):
        from omvald.spark.features import run_features_spark
        from omvald.spark.session import spark_session

        spark = spark_session("local[2]", n_buckets=n_buckets)
        session_s = time.perf_counter() - t0
        meta = run_features_spark(cfg, interim, out, "local[2]", spark=spark)
    else:
        from omvald.features.stage import run_features

        meta = run_features(cfg, interim, out)
    return {"seconds": time.perf_counter() - t0, "session_seconds": session_s, "rows": meta["n_rows"]}


def measure(mode: str, interim: Path, work: Path, as_of: tuple[str, str], spark_buckets: int) -> dict:
    out = work / f"features-{mode.replace('[', '').replace(']', '')}"
    cmd = [sys.executable, __file__, "--one", mode, "--interim", str(interim), "--out", str(out)]
    cmd += ["--as-of", ",".join(as_of), "--spark-buckets", str(spark_buckets)]
    load_before = os.getloadavg()[0]
    roles: dict[str, int] = {}
    proc, peak = run_sampled(cmd, roles)
    load = f"{load_before:.1f}-{os.getloadavg()[0]:.1f}"
    if proc.returncode:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{mode} failed ({proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    role_mb = {f"peak_{kind}_mb": round(roles.get(kind, 0) / 2**20) for kind in ("driver", "jvm", "workers")}
    return {"mode": mode, **result, "peak_rss_mb": round(peak / 2**20), **role_mb, "load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/omvald-bench-spark"))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--spark-buckets", type=int, default=16)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument(
        "--interim", type=Path, help="Reuse this interim folder (omvald validate output) instead of generating one."
    )
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.interim, args.out, tuple(args.as_of.split(",")), args.spark_buckets)))
        return
    if args.interim is not None:
        interim, as_of = args.interim, as_of_range(args.interim)
        customers = json.loads((interim / "meta.json").read_text())["rows"]["customers"]
    else:
        interim, as_of, customers = args.work / f"interim-{args.customers}", (AS_OF_FIRST, AS_OF_LAST), args.customers
        if not (interim / "meta.json").exists():
            make_interim(interim, args.customers)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for mode in args.modes.split(","):
        rows.append(measure(mode, interim, args.work, as_of, args.spark_buckets))
        print(json.dumps({"customers": customers, "as_of": as_of, **rows[-1]}), flush=True)
    print(f"\n{'mode':<16}{'seconds':>10}{'of which session':>18}{'peak RSS MB':>13}", end="")
    print(f"{'driver':>9}{'JVM':>8}{'workers':>9}  load (1 min)")
    for r in rows:
        print(f"{r['mode']:<16}{r['seconds']:>10.1f}{r['session_seconds']:>18.1f}{r['peak_rss_mb']:>13}", end="")
        print(f"{r['peak_driver_mb']:>9}{r['peak_jvm_mb']:>8}{r['peak_workers_mb']:>9}  {r['load']}")


if __name__ == "__main__":
    main()

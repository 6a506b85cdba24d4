"""Wall time and peak memory of ``omvald generate`` at 20k and 1M customers.

Each run is a fresh subprocess (so peak RSS, ``ru_maxrss``, is that run's
alone) writing Parquet into a temporary folder. Params are ``params.yaml``'s
(``--params``) with ``generate.n_customers`` replaced by each size and
``generate.business`` by each ``--business``. ``--probabilities`` also writes
the true probabilities (``--truth-probabilities``), as the DVC stage does.

    python benchmarks/bench_generate.py                 # 20000 (median of 3) and 1000000 (once)
    python benchmarks/bench_generate.py --sizes 20000 --repeats 5
    python benchmarks/bench_generate.py --sizes 20000 --business subscription purchases purchases_btyd --probabilities
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from omvald.config import load_config

CHILD = """
import dataclasses, json, resource, sys, time
from pathlib import Path
from omvald.config import load_config
from omvald.data.generate import run_generate

params, n, out, business, with_probabilities = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5]
cfg = load_config(params)
cfg = dataclasses.replace(cfg, generate=dataclasses.replace(cfg.generate, n_customers=n, business=business))
probabilities = out / "truth_asof.parquet" if with_probabilities == "1" else None
start = time.perf_counter()
summary = run_generate(cfg, out / "synthetic", out / "truth.parquet", "parquet", probabilities_path=probabilities)
seconds = time.perf_counter() - start
size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "disk_mb": size / 2**20, **summary}))
"""


def run_once(params: str, n: int, business: str, probabilities: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="omvald-bench-") as tmp:
        args = [params, str(n), tmp, business, "1" if probabilities else "0"]
        done = subprocess.run([sys.executable, "-c", CHILD, *args], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 1_000_000], help="customer counts")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size below 100k customers (median reported)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--business", nargs="+", default=[None], help="generate.business (default: params.yaml's)")
    parser.add_argument("--probabilities", action="store_true", help="also write the true probabilities")
    args = parser.parse_args()
    print(
        f"{'business':<15} {'customers':>10} {'runs':>4} {'seconds':>8} {'peak MB':>8} {'disk MB':>8} "
        f"{'invoices':>11} {'touchpoints':>12} {'load':>8}"
    )
    default_business = load_config(args.params).generate.business
    for business in [b or default_business for b in args.business]:
        for n in args.sizes:
            load = os.getloadavg()[0]
            runs = [
                run_once(args.params, n, business, args.probabilities)
                for _ in range(args.repeats if n < 100_000 else 1)
            ]
            last = runs[-1]
            print(
                f"{business:<15} {n:>10,} {len(runs):>4} {statistics.median(r['seconds'] for r in runs):>8.1f} "
                f"{max(r['peak_mb'] for r in runs):>8.0f} {last['disk_mb']:>8.1f} {last['invoices']:>11,} "
                f"{last.get('touchpoints', 0):>12,} {load:>4.1f}-{os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

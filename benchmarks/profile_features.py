"""Where one bucket's feature time goes: seconds per feature family, for one bucket of an interim folder.

    python benchmarks/profile_features.py INTERIM [--buckets 16] [--bucket 0] [--repeats 3] [--out part.parquet]

Reads bucket ``--bucket`` of ``--buckets`` from the interim tables (as the
features stage does, 12 monthly as-of dates ending at the last month end of
the data), then times the spine, each family function of
:func:`omvald.features.build.build_features` and the whole bucket function
(wall and CPU seconds, median of ``--repeats``), one DuckDB thread as in the stage. ``--out`` writes
the whole bucket's frame as the stage writes a part file, to compare the
features bit for bit before and after a change. The 1-minute load average is
printed: the machine may be shared, so read the shares more than the seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from pathlib import Path

from omvald.buckets import slot_range
from omvald.config import FeatureConfig
from omvald.features import asof, labels, registry
from omvald.features.billing import billing_features
from omvald.features.btyd import btyd_features
from omvald.features.build import build_features, feature_meta
from omvald.features.purchases import purchase_features
from omvald.features.segments import segment_features
from omvald.features.stage import plan_features, read_bucket, write_bucket_part
from omvald.features.static import static_features
from omvald.features.touchpoints import touchpoint_features

N_DATES = 12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("interim", type=Path)
    parser.add_argument("--buckets", type=int, default=16)
    parser.add_argument("--bucket", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the bucket's features here (Parquet)")
    args = parser.parse_args()

    cfg = _config(args.interim)
    plan = plan_features(cfg, args.interim)
    lo, hi = slot_range(args.bucket, args.buckets)
    t0, c0 = time.perf_counter(), time.process_time()
    tables = read_bucket(plan.paths, lo, hi)
    print(f"read bucket {args.bucket}/{args.buckets}: {time.perf_counter() - t0:.2f} s ({time.process_time() - c0:.2f} s cpu), "
          f"{len(tables.customers):,} customers, {len(tables.billing):,} invoices, "
          f"{len(tables.touchpoints):,} touchpoints; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    meta = feature_meta(plan.meta, tables, plan.dates, cfg)
    contractual = bool(meta["contractual"])
    spine = asof.population_spine(tables, plan.dates, cfg, contractual)
    families = {e.spec.family for e in registry.registry_entries(cfg, meta) if e.available}
    data_end = dt.date.fromisoformat(str(meta["data_end"]))
    until = meta.get("billing_observed_until")
    steps = {
        "spine": lambda: asof.population_spine(tables, plan.dates, cfg, contractual),
        "billing": lambda: billing_features(tables, spine, cfg),
        "static": lambda: static_features(tables, spine, cfg, binding_column=meta.get("binding_column")),
        "touchpoints": lambda: touchpoint_features(tables, spine, cfg),
        "segments": lambda: segment_features(tables, spine, cfg),
        "labels": lambda: labels.labels(
            tables,
            spine,
            cfg,
            data_end,
            contractual,
            int(meta.get("rows", {}).get("billing", len(tables.billing))) == 0,
            dt.date.fromisoformat(str(until)) if until else None,
        ),
    }
    if "purchases" in families:
        steps["purchases"] = lambda: purchase_features(tables, spine, cfg)
    if "btyd" in families:
        steps["btyd"] = lambda: btyd_features(tables, spine, cfg, meta["btyd"])
    steps["whole bucket"] = lambda: build_features(tables, plan.dates, cfg, plan.meta, with_labels=True)

    print(f"{len(spine):,} spine rows; seconds, median of {args.repeats}:")
    seconds = {}
    for name, step in steps.items():
        runs, cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            runs.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        seconds[name] = statistics.median(runs), statistics.median(cpu)
    whole = seconds["whole bucket"][1]
    print(f"  {'':<14} {'wall':>9} {'cpu':>9}  share of cpu")
    for name, (wall, cpu_s) in seconds.items():
        print(f"  {name:<14} {wall:7.2f} s {cpu_s:7.2f} s  {cpu_s / whole:6.1%}")
    print(f"load {os.getloadavg()[0]:.1f}")
    if args.out:
        write_bucket_part(steps["whole bucket"](), plan.schema(with_labels=True), args.out)
        print(f"wrote {args.out}")


def _config(interim: Path) -> FeatureConfig:
    """The repository's feature settings with the 12 month ends ending at the data's last month end."""
    import dataclasses
    import json

    from omvald.config import load_config

    data_end = dt.date.fromisoformat(json.loads((interim / "meta.json").read_text())["data_end"])
    last = asof.month_end(data_end)
    if last != data_end:
        last = asof.month_end(data_end.replace(day=1) - dt.timedelta(days=1))
    first = last
    for _ in range(N_DATES - 1):
        first = asof.month_end(first.replace(day=1) - dt.timedelta(days=1))
    cfg = load_config(Path(__file__).resolve().parents[1] / "params.yaml").features
    return dataclasses.replace(cfg, as_of_first=first, as_of_last=last)


if __name__ == "__main__":
    main()

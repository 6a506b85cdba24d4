"""Benchmark ``dvc repro`` end to end: every stage's wall time, CPU time and peak memory for N customers.

    python benchmarks/bench_pipeline.py --customers 1000000            # the issue's run (default params otherwise)
    python benchmarks/bench_pipeline.py --customers 20000 --until features --work /tmp/bench
    python benchmarks/bench_pipeline.py --customers 1000000 --resume-from train   # a --keep project, from train on

The repository's files (not its data, outputs or ``dvc.lock``) are copied to
a fresh git + DVC project under ``--work`` (outside the repository), with
``params.yaml`` as committed except ``generate.n_customers`` (and
``generate.months`` if ``--months`` is given) and the project's own MLflow
store. Each stage of ``dvc.yaml`` is then run in order as ``dvc repro
--single-item STAGE``, the whole of ``dvc repro`` one stage at a time, so
that each is measured on its own:

- wall seconds of the stage (DVC's own start-up included, about 1-2 s);
- CPU seconds of every process of the stage (dvc, omvald and its bucket
  workers), from ``getrusage(RUSAGE_CHILDREN)`` around the stage;
- peak memory: the largest sum of the resident memory of all the stage's
  processes, sampled every 0.2 s (``measure.py``);
- the 1-minute load average before and after the stage (the machine may be
  shared: a run at load 4 can take twice as long as at load 1).

The project is removed at the end unless ``--keep``. The last line,
``RESULTS {...}``, holds the numbers as JSON. Targets of issue #21 at 1M
customers x 36 months: every stage passes and no stage above 6 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from measure import run_sampled

ROOT = Path(__file__).resolve().parents[1]
NOT_COPIED = ("data/", "models/", "metrics/", "plots/", "reports/", "mlruns/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=None, help="generate.months (default: params.yaml's)")
    parser.add_argument("--until", default=None, help="stop after this stage (default: every stage)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "omvald-bench")
    parser.add_argument("--keep", action="store_true", help="keep the project folder")
    parser.add_argument(
        "--resume-from",
        default=None,
        help="in a kept project of this script, run this stage and the ones after it (with the code as it is now)",
    )
    args = parser.parse_args()

    project = args.work / f"pipeline-{args.customers}"
    if args.resume_from is None:
        if project.exists():
            raise SystemExit(f"{project} exists: remove it (it is a project of this script) or pick another --work")
        make_project(project, args.customers, args.months)
    elif not (project / "dvc.lock").exists():
        raise SystemExit(f"--resume-from: {project} is not a kept project of this script (no dvc.lock)")
    params = yaml.safe_load((project / "params.yaml").read_text())
    stages = list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])
    if args.until:
        stages = stages[: stages.index(args.until) + 1]
    if args.resume_from:
        stages = stages[stages.index(args.resume_from) :]
        args.keep = True  # a resumed project is the user's earlier run: never removed here
    print(
        f"{os.cpu_count()} cores; {args.customers:,} customers, {params['generate']['months']} months; "
        f"project {project}",
        flush=True,
    )
    results = []
    try:
        for stage in stages:
            result = run_stage(project, stage)
            results.append(result)
            print(
                f"  {stage:<10} {result['seconds']:8.1f} s  cpu {result['cpu_seconds']:8.1f} s  "
                f"peak {result['peak_gb']:6.2f} GB  load {result['load']}",
                flush=True,
            )
            if result["returncode"] != 0:
                print(result.pop("error"), file=sys.stderr)
                raise SystemExit(f"dvc repro {stage} failed ({result['returncode']})")
    finally:
        if not args.keep:
            shutil.rmtree(project, ignore_errors=True)
    print(f"\n{'stage':<10} {'seconds':>8} {'cpu s':>8} {'peak GB':>8}  load (1 min, before-after)")
    for r in results:
        print(f"{r['stage']:<10} {r['seconds']:>8.1f} {r['cpu_seconds']:>8.1f} {r['peak_gb']:>8.2f}  {r['load']}")
    total = sum(r["seconds"] for r in results)
    print(f"{'total':<10} {total:>8.1f} {sum(r['cpu_seconds'] for r in results):>8.1f} "
          f"{max(r['peak_gb'] for r in results):>8.2f}")  # fmt: skip
    print(
        "RESULTS "
        + json.dumps({"customers": args.customers, "months": params["generate"]["months"], "stages": results})
    )


def make_project(project: Path, customers: int, months: int | None) -> None:
    """A git + DVC project with the repository's files and params for ``customers`` (and ``months``)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for name in listed:
        src = ROOT / name
        if name == "dvc.lock" or (name.startswith(NOT_COPIED) and not name.endswith(".gitignore")) or not src.is_file():
            continue
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, project / name)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["generate"]["n_customers"] = customers
    if months is not None:
        params["generate"]["months"] = months
    params["mlflow"]["tracking_uri"] = f"sqlite:///{project / 'mlflow.db'}"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", "commit", "-qm", "benchmark"],
    ):
        subprocess.run(command, cwd=project, check=True, capture_output=True)


def run_stage(project: Path, stage: str) -> dict:
    """``dvc repro --single-item stage`` in ``project``: seconds, CPU seconds, peak GB of its processes, load."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
    }
    dvc = Path(sys.executable).parent / "dvc"
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc, peak = run_sampled([str(dvc), "repro", "--single-item", stage], cwd=project, env=env)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result = {
        "stage": stage,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "peak_gb": round(peak / 1024**3, 2),
        "load": f"{load_before:.1f}-{os.getloadavg()[0]:.1f}",
        "returncode": proc.returncode,
    }
    if proc.returncode != 0:
        result["error"] = (proc.stdout + proc.stderr)[-3000:]
    return result


if __name__ == "__main__":
    main()

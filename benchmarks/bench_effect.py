"""Does ``omvald effect`` find the effects the generator planted, and cover zero when there are none? (issue #17)

Once: generate the subscription business (``--customers``), validate, build
features, train and score it (the stage functions, params.yaml's settings,
no MLflow). The business is then replayed up to the scoring date
(:func:`omvald.data.generate_campaign.campaign_base`, once per chunk).

Then ``--runs`` campaigns, each with its own holdout salt (a new random
control group: ``omvald plan`` on the same scores) and its own campaign seed
(new random months after the list's date). Each run continues the business
with the planted effects (``--planted``: ``campaign.churn_hazard_cut`` of
params.yaml; ``--null``: none), labels the listed customers on the newer
export with the training labels (:func:`omvald.actions.effect_stage.realized_outcomes`,
after validating their rows as ``omvald effect`` does) and measures
(:func:`omvald.actions.effect.measure`). For every group measured on its
own, the truth is the mean over its contacted customers of
``p_churn_untreated_true - p_churn_treated_true`` (the generator's true
probabilities without and with the effect; 0 for a null run). The script
counts how often the 95% interval of the churn reduction covers it, and how
often the interval of the relative reduction covers ``1 - sum(treated) /
sum(untreated)`` (runs with no control churn have no relative estimate).

    python benchmarks/bench_effect.py --null --runs 100           # the interval covers zero in >= 90 of 100?
    python benchmarks/bench_effect.py --planted --runs 20         # each planted effect inside its interval?

``--budget N`` caps the contacts (default: no cap, so the groups are large).
The last line, ``RESULTS {...}``, holds the counts as JSON.
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

import numpy as np
import pandas as pd

from omvald.actions.effect import measure
from omvald.actions.effect_stage import realized_outcomes
from omvald.actions.plan import retention_list
from omvald.config import Config, load_config
from omvald.data.generate import n_chunks, run_generate, subscription_tables
from omvald.data.generate_campaign import campaign_base, run_campaign
from omvald.data.validate import run_validate, validate_tables
from omvald.features.stage import run_features
from omvald.model.train import run_train
from omvald.scoring.stage import run_score

ROOT = Path(__file__).resolve().parents[1]


def build(cfg: Config, folder: Path) -> pd.DataFrame:
    """Generate, validate, build features, train and score in ``folder`` (reused when there); the scores."""
    scores = folder / "scores.parquet"
    if not scores.exists():
        run_generate(cfg, folder / "synthetic", folder / "truth.parquet")
        run_validate(cfg, folder / "synthetic", folder / "interim", profile_path=None)
        run_features(cfg, folder / "interim", folder / "features")
        run_train(cfg, folder / "features", folder / "models")
        run_score(cfg, folder / "synthetic", scores, explain="all", models_dir=folder / "models")
    return pd.read_parquet(scores)


def outcomes_of(cfg: Config, listed: pd.DataFrame, chunks: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The listed customers' churn and phase-out on the continued business, and the campaign truth."""
    ids = set(listed["customer_id"])
    raw = {"customers": [], "billing": [], "touchpoints": []}
    truth = []
    for part in chunks:
        keep = np.isin(part["ids"], list(ids))
        for name in raw:
            frame = part[name]
            raw[name].append(frame[frame["customer_id"].isin(ids)])
        truth.append(part["truth"][keep])
    frames = {name: pd.concat(parts, ignore_index=True) for name, parts in raw.items()}
    frames["customers"] = frames["customers"].drop(columns=["name", "email"])
    tables, meta, _ = validate_tables(frames, dataclasses.replace(cfg.data, data_end=None))
    outcomes, _ = realized_outcomes(listed, tables, meta, cfg)
    return outcomes, pd.concat(truth, ignore_index=True)


def one_run(cfg: Config, scores: pd.DataFrame, bases: list, run: int, planted: bool) -> list[dict]:
    """Plan with a new control group, continue with a new seed, measure; every measured group with its truth."""
    plan = dataclasses.replace(cfg.plan, holdout_salt=f"bench-effect-{run}")
    listed, _ = retention_list(scores, plan, cfg.features.phase_out_drop)
    campaign = dataclasses.replace(
        cfg.campaign, seed=run, churn_hazard_cut=cfg.campaign.churn_hazard_cut if planted else {}
    )
    as_of = listed["as_of"].iloc[0]
    chunks = []
    for base in bases:
        mine = listed[listed["customer_id"].isin(base.ids.to_pylist())]
        result, customers, truth = run_campaign(base, mine, as_of, campaign, cfg.features)
        billing, touchpoints, _ = subscription_tables(cfg.generate, base.cust, result, base.ids)
        chunks.append({
            "ids": base.ids.to_numpy(zero_copy_only=False),
            "customers": customers.to_pandas(),
            "billing": billing.to_pandas(),
            "touchpoints": touchpoints.to_pandas(),
            "truth": truth.to_pandas().assign(customer_id=base.ids.to_numpy(zero_copy_only=False)),
        })  # fmt: skip
    listed = listed.assign(as_of=as_of)
    outcomes, truth = outcomes_of(cfg, listed, chunks)
    truth = truth.set_index("customer_id").reindex(outcomes["customer_id"])
    outcomes = outcomes.assign(
        p_untreated=truth["p_churn_untreated_true"].to_numpy(), p_treated=truth["p_churn_treated_true"].to_numpy()
    )
    groups = measure(outcomes, cfg.effect.min_group_customers, cfg.effect.confidence)
    found = []
    for g in groups:
        if g.get("churn_reduction") is None or not g["precise"]:
            continue
        rows = outcomes["group"].eq("contact")
        for key in ("action", "segment", "value_tier"):
            if g[key] is not None:
                rows &= outcomes[key].eq(g[key])
        untreated, treated = outcomes.loc[rows, "p_untreated"], outcomes.loc[rows, "p_treated"]
        truth_value = float(np.nanmean(untreated - treated)) if planted else 0.0
        relative = 1.0 - float(np.nansum(treated) / np.nansum(untreated)) if planted else 0.0
        rel_low, rel_high = g.get("churn_relative_reduction_low"), g.get("churn_relative_reduction_high")
        found.append({
            "label": g["label"], "level": g["level"], "estimate": g["churn_reduction"],
            "low": g["churn_reduction_low"], "high": g["churn_reduction_high"], "truth": truth_value,
            "covered": bool(g["churn_reduction_low"] <= truth_value <= g["churn_reduction_high"]),
            "excludes_zero": bool(g["churn_reduction_low"] > 0 or g["churn_reduction_high"] < 0),
            "relative_truth": relative,
            "relative_covered": None if rel_low is None else bool(rel_low <= relative <= rel_high),
        })  # fmt: skip
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--planted", action="store_true", help="plant campaign.churn_hazard_cut (default)")
    mode.add_argument("--null", action="store_true", help="plant no effect at all")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--budget", type=int, default=None, help="plan.budget_contacts (default: no cap)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "omvald-bench")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = parser.parse_args(argv)
    planted = not args.null
    params = load_config(args.params)
    cfg = dataclasses.replace(
        params,
        generate=dataclasses.replace(params.generate, n_customers=args.customers),
        plan=dataclasses.replace(params.plan, budget_contacts=args.budget),
    )
    folder = args.work / f"effect-{args.customers}-{cfg.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load {os.getloadavg()[0]:.1f}; building {folder}", flush=True)
    start = time.perf_counter()
    scores = build(cfg, folder)
    as_of = pd.to_datetime(scores["as_of"]).dt.date.iloc[0]
    bases = [campaign_base(cfg.generate, cfg.campaign, cfg.seed, c, as_of) for c in range(n_chunks(cfg.generate))]
    print(f"built in {time.perf_counter() - start:.0f} s; {args.runs} runs, {'planted' if planted else 'null'}")
    found: list[dict] = []
    start = time.perf_counter()
    for run in range(1, args.runs + 1):
        groups = one_run(cfg, scores, bases, run, planted)
        found += [{**g, "run": run} for g in groups]
        overall = next(g for g in groups if g["level"] == "all")
        print(
            f"run {run:3d}: all {overall['estimate']:+.4f} [{overall['low']:+.4f}, {overall['high']:+.4f}] "
            f"truth {overall['truth']:+.4f} covered {overall['covered']}; "
            f"{sum(g['covered'] for g in groups)}/{len(groups)} groups covered",
            flush=True,
        )
    frame = pd.DataFrame(found)
    frame["relative_measured"] = frame["relative_covered"].notna()
    frame["relative_covered"] = frame["relative_covered"].fillna(False).astype(bool)
    summary = frame.groupby(["level", "label"]).agg(runs=("run", "size"), covered=("covered", "sum"),
        excludes_zero=("excludes_zero", "sum"), mean_estimate=("estimate", "mean"), mean_truth=("truth", "mean"),
        relative_runs=("relative_measured", "sum"), relative_covered=("relative_covered", "sum"),
        mean_relative_truth=("relative_truth", "mean"))  # fmt: skip
    print(summary.to_string())
    overall = frame[frame["level"] == "all"]
    result = {
        "mode": "planted" if planted else "null",
        "customers": args.customers,
        "runs": args.runs,
        "overall_covered": int(overall["covered"].sum()),
        "groups": summary.reset_index().to_dict(orient="records"),
        "seconds_per_run": round((time.perf_counter() - start) / args.runs, 2),
        "load": round(os.getloadavg()[0], 1),
    }
    print("RESULTS " + json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

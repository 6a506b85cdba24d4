"""Report stage: NPS outputs, the one-page HTML run report, and its MLflow logging.

``run_report`` loads (via :mod:`omvald.reports.gather`), computes the monthly
NPS (via :mod:`omvald.reports.nps`), renders (via :mod:`omvald.reports.html`)
and writes, each atomically, next to ``out``: ``report.html``, ``nps.csv``,
``nps.png``. When ``models/run.json`` names an MLflow pipeline run, the three
files are logged to it under ``report/``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from omvald.config import Config
from omvald.features.touchpoints import is_nps_answer
from omvald.io import atomic_path, read_json, write_table
from omvald.reports.gather import ReportPaths, gather, read_feature_frames, read_targets
from omvald.reports.html import render_report
from omvald.reports.nps import monthly_nps, nps_summary, plot_monthly_nps

log = logging.getLogger(__name__)

# Only what NPS needs: no free-text or personal column of the touchpoints is read.
TOUCHPOINT_COLUMNS = ("customer_id", "timestamp", "date", "event", "value")


def run_report(cfg: Config, paths: ReportPaths, out: Path, tracking_uri: str | None = None) -> dict[str, Any]:
    """Report stage; returns ``{"files": [...], "run_id": str | None, "missing": {part: reason}}``.

    ``tracking_uri`` overrides the one in ``run.json`` (the CLI passes
    ``MLFLOW_TRACKING_URI``). A missing metrics file raises
    :class:`~omvald.errors.ConfigError` before anything is written; other
    missing inputs become "not available" notes on the page.
    """
    out = Path(out)
    targets = read_targets(paths)  # fail first: a report without metrics says nothing
    missing: dict[str, str] = {}
    training, scoring = read_feature_frames(paths.features, missing)
    touchpoints = read_nps_touchpoints(paths.interim / "touchpoints.parquet", missing)

    monthly = monthly_nps(touchpoints, _segments(training, scoring))
    answers = is_nps_answer(touchpoints) if "event" in touchpoints else pd.Series(False, index=touchpoints.index)
    overall = nps_summary(touchpoints.loc[answers, "value"]) if answers.any() else None
    if monthly.empty:
        missing.setdefault("nps", "no NPS answers (event 'nps', or 'survey' with a 0-10 value) in the touchpoints.")
    nps_csv, nps_png = out.parent / "nps.csv", out.parent / "nps.png"
    monthly_out = monthly.assign(month=monthly["month"].dt.strftime("%Y-%m"))
    write_table(monthly_out, nps_csv)
    with atomic_path(nps_png) as tmp:
        plot_monthly_nps(monthly, tmp)

    inputs = gather(
        paths,
        targets=targets,
        frames=(training, scoring),
        nps_monthly=monthly_out,
        nps_overall=overall,
        nps_png=None if monthly.empty else nps_png.read_bytes(),
        params=report_params(cfg),
        missing=missing,
    )
    page = render_report(inputs)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    files = [out, nps_csv, nps_png]
    log.info("report: wrote %s (%d kB), %s, %s", out, len(page) // 1024, nps_csv, nps_png)
    run_id = _log_to_mlflow(paths.models / "run.json", files, tracking_uri)
    return {"files": [str(f) for f in files], "run_id": run_id, "missing": inputs.missing}


def report_params(cfg: Config) -> dict[str, Any]:
    """The settings a reader needs to interpret the numbers (definitions, not tuning knobs)."""
    rule = cfg.features.active_rule
    return {
        "horizon (days)": cfg.features.horizon_days,
        "phase-out: spend drop of at least": f"{cfg.features.phase_out_drop:.0%}",
        "active segment: own contacts in the window": f"{rule.min_active_events}+ in {rule.window_days} days",
        "lift / capture measured on the top": f"{cfg.evaluate.top_fraction:.0%}",
        "risk tiers (p_churn at least)": ", ".join(f"{k} {v:g}" for k, v in cfg.score.risk_tiers.items()),
    }


def read_nps_touchpoints(path: Path, missing: dict[str, str]) -> pd.DataFrame:
    """The touchpoint columns NPS needs, or an empty frame with a note when the file is absent."""
    if not path.exists():
        missing["nps"] = f"{path} not found (run `omvald validate`)."
        return pd.DataFrame({"customer_id": pd.Series(dtype="str"), "event": pd.Series(dtype="str")})
    present = set(pq.read_schema(path).names)
    return pd.read_parquet(path, columns=[c for c in TOUCHPOINT_COLUMNS if c in present])


def _segments(training: pd.DataFrame | None, scoring: pd.DataFrame | None) -> pd.DataFrame | None:
    """``customer_id, as_of, segment`` from both feature tables; ``monthly_nps`` keeps each customer's latest."""
    parts = [f[["customer_id", "as_of", "segment"]] for f in (training, scoring) if f is not None and "segment" in f]
    return pd.concat(parts, ignore_index=True) if parts else None


def _log_to_mlflow(run_json: Path, files: list[Path], tracking_uri: str | None) -> str | None:
    info = read_json(run_json) if run_json.exists() else {}
    if not info.get("parent_run_id"):
        log.info("report: no MLflow run in %s; report not logged", run_json)
        return None
    from omvald.model.tracking import log_to_run

    return log_to_run(info, artifacts=files, artifact_path="report", tracking_uri=tracking_uri)

"""The run report of a small pipeline: written, self-contained, aggregate-only, rendered by a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from omvald.cli import app
from omvald.io import read_json
from omvald.reports.html import SECTIONS

pytestmark = pytest.mark.xdist_group("pipeline")

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def _chromium() -> str:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium not installed (.ci/run installs Debian's `chromium`); browser check skipped")


def _browser(report: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args, report.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def page(small_pipeline: Path) -> str:
    return (small_pipeline / "reports" / "report.html").read_text(encoding="utf-8")


def test_report_and_nps_outputs_are_written(small_pipeline: Path):
    reports = small_pipeline / "reports"
    assert (reports / "nps.png").read_bytes().startswith(b"\x89PNG")
    nps = pd.read_csv(reports / "nps.csv")
    assert list(nps.columns) == ["month", "segment", "n", "nps", "low", "high"]
    assert {"all", "active", "passive"} <= set(nps["segment"])
    assert ((nps["low"] >= -100) & (nps["low"] < nps["high"]) & (nps["high"] <= 100)).all()
    assert nps.groupby("month")["n"].apply(lambda n: n.iloc[0] >= n.iloc[1:].sum()).all()  # 'all' comes first


def test_report_has_every_section_with_real_content(page: str):
    for key in SECTIONS:
        assert f"<section id='{key}'>" in page
    # the full pipeline produced every input: no section stands in a "Not available: ..." placeholder
    # (the feature families a business cannot have are still listed, with their reason)
    assert "<p class='na'>" not in page
    assert "<td>lgbm</td>" in page and "<td>logistic</td>" in page and "<td>heuristic</td>" in page
    assert "Out-of-time test" in page or "single snapshot" in page


def test_report_is_self_contained(page: str):
    assert not re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:)?//", page, re.I)
    assert "http://" not in page and "https://" not in page
    srcs = re.findall(r"<img[^>]*src='([^']*)'", page)
    assert len(srcs) >= 4 + 2 + 1  # gains + calibration x 2 targets, SHAP of both models, NPS
    assert all(s.startswith("data:image/png;base64,") for s in srcs)


def test_report_contains_no_customer_level_data(small_pipeline: Path, page: str):
    customers = pd.read_parquet(small_pipeline / "data" / "interim" / "customers.parquet")
    ids = customers["customer_id"].astype(str)
    assert not any(i in page for i in ids.sample(min(300, len(ids)), random_state=0))
    raw = next((small_pipeline / "data" / "synthetic").glob("customers.*"))
    raw_customers = pd.read_parquet(raw) if raw.suffix == ".parquet" else pd.read_csv(raw)
    for column in ("name", "email", "e_mail", "phone", "address"):
        if column in raw_customers:
            assert not any(str(v) in page for v in raw_customers[column].dropna().head(200)), column


def test_report_is_logged_to_the_pipeline_run(small_pipeline: Path):
    from mlflow import MlflowClient

    run = read_json(small_pipeline / "models" / "run.json")
    client = MlflowClient(tracking_uri=f"sqlite:///{small_pipeline / 'mlflow.db'}")
    names = {Path(a.path).name for a in client.list_artifacts(run["parent_run_id"], "report")}
    assert {"report.html", "nps.csv", "nps.png"} <= names


def test_report_shows_the_value_matrix_the_list_and_the_measured_effect(small_pipeline: Path, page: str):
    summary = read_json(small_pipeline / "reports" / "score_summary.json")
    plan = read_json(small_pipeline / "reports" / "plan_summary.json")
    effect = read_json(small_pipeline / "reports" / "effect.json")
    section = re.search(r"<section id='value'>(.*?)</section>", page, re.S).group(1)
    a_high = summary["by_value_tier_risk"]["A"]["high"]
    assert section.count("<td class='cell'") == 4 * 4  # A, B, C, all x high, medium, low, all
    assert f"{a_high['customers']:,} customers" in section
    plan_part = re.search(r"<section id='plan'>(.*?)</section>", page, re.S).group(1)
    assert f"<b>{plan['counts']['contact']:,}</b>to contact" in plan_part
    assert all(f"<td>{action}</td>" in plan_part for action in plan["by_action"])
    effect_part = re.search(r"<section id='effect'>(.*?)</section>", page, re.S).group(1)
    overall = effect["groups"][0]
    assert f"{100 * overall['churn_reduction']:+.1f} [{100 * overall['churn_reduction_low']:+.1f}," in effect_part
    assert ("pooled into" in effect_part) == any(g["pooled_into"] for g in effect["groups"])


def test_plan_and_effect_are_logged_to_the_pipeline_run(small_pipeline: Path):
    from mlflow import MlflowClient

    run = read_json(small_pipeline / "models" / "run.json")
    client = MlflowClient(tracking_uri=f"sqlite:///{small_pipeline / 'mlflow.db'}")
    assert [Path(a.path).name for a in client.list_artifacts(run["parent_run_id"], "plan")] == ["plan_summary.json"]
    assert [Path(a.path).name for a in client.list_artifacts(run["parent_run_id"], "effect")] == ["effect.json"]
    metrics = client.get_run(run["parent_run_id"]).data.metrics
    plan = read_json(small_pipeline / "reports" / "plan_summary.json")
    assert metrics["plan.contact"] == plan["counts"]["contact"]
    assert "effect.all.churn_reduction" in metrics


def test_report_renders_in_headless_chromium_without_errors(small_pipeline: Path, tmp_path: Path):
    report = small_pipeline / "reports" / "report.html"
    dom = _browser(report, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    imgs = re.findall(r"<img [^>]*>", dom.stdout)
    assert len(imgs) == report.read_text().count("<img ")
    assert all('src="data:image/png;base64,' in i for i in imgs)
    for key in SECTIONS:
        assert f'id="{key}"' in dom.stdout
    # the loop's sections rendered with their content: the heat map, the list by action, the measured effect
    assert '<table class="heat">' in dom.stdout and "background:#" in dom.stdout
    for words in ("By action", "By cell", "churn reduction", "expected by the plan"):
        assert words in dom.stdout, words
    assert "Uncaught" not in dom.stderr and ":CONSOLE(" not in dom.stderr, dom.stderr[-2000:]
    shot = tmp_path / "report.png"
    run = _browser(report, tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", "--hide-scrollbars")
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.stat().st_size > 50_000  # a page of tables and charts, not a blank or error page


def test_report_without_metrics_is_a_clear_error(small_pipeline: Path, tmp_path: Path):
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--out",
            str(tmp_path / "report.html"),
            "--params",
            str(small_pipeline / "params.yaml"),
            "--metrics",
            str(tmp_path / "no-metrics"),
            "--models",
            str(tmp_path / "no-models"),
        ],
    )
    assert result.exit_code == 2
    assert "churn.json: metrics file not found" in result.output and "omvald evaluate" in result.output
    assert not (tmp_path / "report.html").exists()


def test_report_says_not_available_for_missing_optional_inputs(small_pipeline: Path, tmp_path: Path):
    p = small_pipeline
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--out",
            str(tmp_path / "report.html"),
            "--params",
            str(p / "params.yaml"),
            "--interim",
            str(p / "data/interim"),
            "--features",
            str(p / "data/features"),
            "--metrics",
            str(p / "metrics"),
            "--plots",
            str(p / "plots"),
            "--profile",
            str(p / "reports/profile.json"),
            "--models",
            str(tmp_path / "no-models"),
            "--explain",
            str(tmp_path / "no-explain"),
            "--score-summary",
            str(tmp_path / "no-summary.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert page.count("Not available") >= 3  # SHAP plots, drivers table, scoring summary, split
    assert "run `omvald score`" in page and "run `omvald explain`" in page

"""Bad input and misplaced outputs, as a skeptical new user tries them (issue #20).

Every case runs one ``omvald`` command in a project folder that holds a
valid export, a user's own folder (``keep/``), trained models and the
outputs of an earlier successful ``validate`` (``out/``,
``reports/profile.json``). A case asserts the exit code and the message,
that no traceback is shown, and that *nothing* in the project changed: the
hashes of every file, and the list of every file and folder (so no
temporary is left behind), are the same before and after the run. So the
earlier outputs survive the failed run too.

A new case is one :class:`Case` entry in :data:`CASES`: a name, the
command line, the exit code, the words the message must hold, and
optionally a ``setup(project)`` that plants its bad input first. An export
that still scores, with a warning (exit code 0), lists the files the run
writes (``writes``): those are added, and nothing else changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from omvald.cli import app
from omvald.config import config_from_dict
from omvald.data.generate import generate_business
from omvald.errors import ConfigError, DataContractError, ModelError, OutputError, TrackingError
from omvald.features.asof import month_end
from omvald.features.build import build_features, feature_meta
from omvald.features.registry import registry_entries
from omvald.features.spec import BucketTables
from omvald.io import write_json
from omvald.model.estimators import LGBMChurnModel
from omvald.model.inputs import INPUTS_FILE, model_inputs
from omvald.scoring.stage import read_and_validate

PARAMS = {
    "seed": 5,
    "generate": {"n_customers": 300, "months": 20, "start_date": "2023-01-01"},
    "features": {"n_buckets": 2},
    "score": {"explain": "none"},
}
TREE = {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 20, "calibration": "none", "seed": 5}
TABLES = ("customers", "billing", "touchpoints")


def invoke(project: Path, args: list[str]):
    """``omvald <args>`` run from ``project`` (params.yaml there unless ``--params`` is given)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        extra = [] if "--params" in args else ["--params", "params.yaml"]
        return CliRunner().invoke(app, [*args, *extra])


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (hidden ones too): relative path -> sha256 (``"dir"`` for folders)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# --- the project every case starts from -----------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A valid CSV export (``export/``), trained models, and the outputs of one successful validate."""
    root = tmp_path_factory.mktemp("bad_input")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    cfg = config_from_dict(PARAMS)
    business = generate_business(cfg.generate, cfg.seed)
    (root / "export").mkdir()
    for name in TABLES:
        business[name].to_csv(root / "export" / f"{name}.csv", index=False)
    train_models(root / "export", root / "models")
    result = invoke(root, ["validate", "export", "out", "--profile", "reports/profile.json"])
    assert result.exit_code == 0, result.output
    return root


def train_models(export: Path, models: Path) -> None:
    """Small churn and phase-out models on six month ends (seconds, as in tests/e2e/test_score.py)."""
    cfg = config_from_dict(PARAMS)
    tables, meta, _ = read_and_validate(cfg, export, None)
    end = dt.date.fromisoformat(meta["data_end"])
    last = month_end(end - dt.timedelta(days=cfg.features.horizon_days + 31))
    dates = [month_end(dt.date(last.year, last.month, 1) - dt.timedelta(days=31 * k)) for k in range(6)]
    frame = build_features(BucketTables(**tables), dates, cfg.features, meta, with_labels=True)
    frame = frame[frame["churn"].notna()]
    features = [c for c in frame.columns if c not in {"customer_id", "as_of", "segment", "churn", "phase_out"}]
    features = [c for c in features if c != "next_revenue"]
    stays = frame[frame["churn"] == 0]
    models.mkdir()
    joblib.dump(LGBMChurnModel(**TREE).fit(frame[features], frame["churn"].astype(int)), models / "churn.joblib")
    joblib.dump(
        LGBMChurnModel(**TREE).fit(stays[features], stays["phase_out"].astype(int)), models / "phase_out.joblib"
    )
    # what `omvald train` records with its models: the export they expect
    facts = feature_meta(meta, BucketTables(**tables), dates, cfg.features)
    registry = [e.record() for e in registry_entries(cfg.features, facts)]
    write_json(model_inputs(facts, registry, features).as_json(), models / INPUTS_FILE)


@pytest.fixture
def project(template, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(template, root)
    keep = root / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("my own notes\n")
    (keep / "data.csv").write_text("a,b\n1,2\n")
    return root


# --- planting bad input ---------------------------------------------------------------------------


def bad_export(project: Path, name: str = "bad") -> Path:
    """A copy of the valid export to spoil."""
    return Path(shutil.copytree(project / "export", project / name))


def billing_folder(project: Path) -> None:
    bad = bad_export(project)
    (bad / "billing.csv").unlink()
    (bad / "billing.csv").mkdir()
    (bad / "billing.csv" / "part-0.csv").write_text("customer_id,invoice_date,amount\n")


def workbook(project: Path) -> None:
    (bad_export(project) / "customers.csv").write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(200))


def ragged_rows(project: Path) -> None:
    path = bad_export(project) / "billing.csv"
    lines = path.read_text().splitlines()
    lines[9] += ",oops"  # line 10 of the file
    path.write_text("\n".join(lines) + "\n")


def unclosed_quote(project: Path) -> None:
    path = bad_export(project) / "customers.csv"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace(",north,", ',"north,').replace(",south,", ',"south,').replace(",east,", ',"east,')
    lines[4] = lines[4].replace(",west,", ',"west,').replace(",central,", ',"central,')
    path.write_text("\n".join(lines) + "\n")


def mixed_encoding(project: Path) -> None:
    path = bad_export(project) / "customers.csv"
    text = path.read_text().splitlines()
    regions = re.compile(r",(north|south|east|west|central),")
    head = regions.sub(",Skåne,", "\n".join(text[:3])).encode()  # UTF-8 up to line 3 ...
    tail = regions.sub(",Malmö,", "\n" + "\n".join(text[3:])).encode("cp1252")  # ... then Windows-1252
    path.write_bytes(head + tail + b"\n")


def ancient_signup(project: Path) -> None:
    path = bad_export(project) / "customers.csv"
    customers = pd.read_csv(path, dtype=str)
    customers.loc[0, "signup_date"] = "1850-01-01"
    customers.to_csv(path, index=False)


def decades_of_history(project: Path) -> None:
    """An export whose invoices run monthly from 1990: validated here, its features are refused."""
    old = project / "old"
    old.mkdir()
    pd.DataFrame({"customer_id": ["A", "B"], "signup_date": ["1990-01-01"] * 2}).to_csv(
        old / "customers.csv", index=False
    )
    days = pd.date_range("1990-01-31", "2024-12-31", freq="ME").strftime("%Y-%m-%d")
    rows = [(c, d, 10.0) for c in "AB" for d in days]
    pd.DataFrame(rows, columns=["customer_id", "invoice_date", "amount"]).to_csv(old / "billing.csv", index=False)
    assert invoke(project, ["validate", "old", "old_interim", "--profile", "old_profile.json"]).exit_code == 0


def drop_column(table: str, column: str) -> Callable[[Path], None]:
    def drop(project: Path) -> None:
        path = bad_export(project) / f"{table}.csv"
        pd.read_csv(path, dtype=str).drop(columns=[column]).to_csv(path, index=False)

    return drop


def header_only_billing(project: Path) -> None:
    path = bad_export(project) / "billing.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")


def no_billing_file(project: Path) -> None:
    (bad_export(project) / "billing.csv").unlink()


def damaged_model(project: Path) -> None:
    path = project / "models" / "churn.joblib"
    path.write_bytes(path.read_bytes()[:100])  # a copy cut short


def foreign_model(project: Path) -> None:
    joblib.dump({"weights": [1, 2, 3]}, project / "models" / "churn.joblib")


def registry_without_champion(project: Path) -> None:
    """An MLflow store where training registered both models as 'candidate' and nobody promoted one."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for name in ("omvald-churn", "omvald-phase-out"):
        client.create_registered_model(name)
        version = client.create_model_version(name, source=str(project / "models"))
        client.set_registered_model_alias(name, "candidate", version.version)


def tracked_run_on_a_stopped_server(project: Path) -> None:
    """A models folder whose run was logged to a tracking server that has stopped since."""
    params_file(STOPPED_SERVER)(project)
    run = {"tracking_uri": "http://127.0.0.1:9", "parent_run_id": "0" * 32, "runs": {}, "models": {}}
    write_json(run, project / "models" / "run.json")


def old_scores(project: Path) -> None:
    """A scores file from before value tiers and reasons per driver."""
    pd.DataFrame({"customer_id": ["C0000001"], "as_of": ["2024-08-31"], "p_churn": [0.2]}).to_csv(
        project / "old_scores.csv", index=False
    )


def scores_and_rules(project: Path) -> None:
    """A scores file a plan can read, and params whose rule names an action that is not defined."""
    columns = ["customer_id", "as_of", "p_churn", "p_phase_out", "risk_tier", "value_tier", "segment", "value",
               "contactable", "preferred_channel", "churn_driver_1", "churn_reason_1", "phase_out_driver_1",
               "phase_out_reason_1"]  # fmt: skip
    row = ["C0000001", "2024-08-31", 0.4, 0.1, "high", "A", "passive", 900.0, True, "email", "price_change",
           "price rise: invoice up 9%", None, None]  # fmt: skip
    pd.DataFrame([row], columns=columns).to_csv(project / "scores.csv", index=False)
    actions = "  actions:\n    plan_review: {channel: preferred, cost: 1.0, effect: 0.2}\n"
    (project / "bad_params.yaml").write_text(f"plan:\n{actions}  rules:\n    - {{action: call_them}}\n")


def retention_list(groups: list[str]) -> Callable[[Path], None]:
    """A retention list at the export's last day (its end of data: the horizon has not passed)."""

    def write(project: Path) -> None:
        customers = pd.read_csv(project / "export" / "customers.csv", dtype=str)
        ids = customers["customer_id"].head(len(groups))
        pd.DataFrame({"customer_id": ids, "as_of": "2024-08-31", "group": groups, "action": "plan_review",
                      "segment": "passive", "value_tier": "A", "value": 100.0, "cost": 1.0}).to_csv(
            project / "list.csv", index=False
        )  # fmt: skip

    return write


def params_file(text: str) -> Callable[[Path], None]:
    def write(project: Path) -> None:
        (project / "bad_params.yaml").write_text(text)

    return write


# --- the cases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad command: run ``args`` after ``setup``; expect ``exit_code`` and every word of ``needles``."""

    name: str
    args: list[str]
    exit_code: int
    needles: tuple[str, ...]
    setup: Callable[[Path], None] = field(default=lambda project: None)
    writes: tuple[str, ...] = ()


VALIDATE = ["validate", "export", "out", "--profile", "reports/profile.json"]
SCORE = ["score", "--input", "export", "--output", "s.csv"]
BAD_SCORE = ["score", "--input", "bad", "--output", "s.csv"]
STOPPED_SERVER = "mlflow:\n  tracking_uri: http://127.0.0.1:9\n"  # the discard port: nothing listens there
CASES = [
    # outputs never destroy what omvald did not write
    Case("validate-onto-its-input", ["validate", "export", "export"], OutputError.exit_code,
         ("export: the output is the input",)),
    Case("validate-into-a-user-folder", ["validate", "export", "keep"], OutputError.exit_code,
         ("keep: will not replace this folder", "data.csv, notes.txt")),
    Case("validate-profile-is-a-folder", ["validate", "export", "out", "--profile", "keep"], OutputError.exit_code,
         ("keep is a folder",)),
    Case("validate-into-the-input", ["validate", "export", "export/interim"], OutputError.exit_code,
         ("inside the input export",)),
    Case("validate-onto-a-file", ["validate", "export", "keep/notes.txt"], OutputError.exit_code,
         ("keep/notes.txt is a file; the output is a folder",)),
    Case("validate-under-a-file", ["validate", "export", "keep/notes.txt/interim"], OutputError.exit_code,
         ("keep/notes.txt is a file, not a folder",)),
    Case("generate-into-a-user-folder", ["generate", "keep", "--truth", "truth.parquet"], OutputError.exit_code,
         ("keep: will not replace this folder",)),
    Case("generate-truth-is-a-folder", ["generate", "gen", "--truth", "keep"], OutputError.exit_code,
         ("keep is a folder",)),
    Case("features-into-a-user-folder", ["features", "out", "keep"], OutputError.exit_code,
         ("keep: will not replace this folder",)),
    Case("features-onto-its-input", ["features", "out", "out"], OutputError.exit_code, ("the output is the input",)),
    Case("score-output-is-a-folder", ["score", "--input", "export", "--output", "keep"], 2, ("is a directory",)),
    Case("score-into-its-input", ["score", "--input", "export", "--output", "export/customers.csv"],
         OutputError.exit_code, ("inside the input export",)),
    Case("score-output-under-a-file", ["score", "--input", "export", "--output", "keep/notes.txt/s.csv"],
         OutputError.exit_code, ("is a file, not a folder",)),
    Case("score-output-unwritable", ["score", "--input", "export", "--output", "/proc/omvald-scores.csv"],
         OutputError.exit_code, ("/proc/omvald-scores.csv: cannot be written",)),
    Case("score-summary-into-the-models", [*SCORE, "--summary", "models/summary.json"], OutputError.exit_code,
         ("inside the input models",)),
    Case("train-onto-a-file", ["train", "feats", "keep/notes.txt"], OutputError.exit_code,
         ("keep/notes.txt is a file; the output is a folder",)),
    Case("train-into-its-input", ["train", "out", "out/models"], OutputError.exit_code,
         ("inside the input out",)),
    Case("evaluate-into-the-models", ["evaluate", "feats", "models", "models/metrics", "plots"],
         OutputError.exit_code, ("inside the input models",)),
    Case("explain-into-the-features", ["explain", "out", "models", "out/explain"], OutputError.exit_code,
         ("inside the input out",)),
    Case("report-onto-a-folder", ["report", "--out", "keep"], OutputError.exit_code, ("keep is a folder",)),
    Case("report-into-the-models", ["report", "--out", "models/report.html"], OutputError.exit_code,
         ("inside the input models",)),
    # model files and the tracking store
    Case("damaged-model-file", SCORE, ModelError.exit_code,
         ("models/churn.joblib: cannot be read as a model", "omvald train"), damaged_model),
    Case("foreign-model-file", SCORE, ModelError.exit_code,
         ("models/churn.joblib: holds a dict, not a model",), foreign_model),
    Case("model-uri-without-a-store", [*SCORE, "--model-uri", "models:/omvald-churn@champion"],
         TrackingError.exit_code, ("no MLflow store at sqlite:///mlflow.db", "omvald train")),
    Case("model-uri-before-promote", [*SCORE, "--model-uri", "models:/omvald-churn@champion"],
         ModelError.exit_code, ("no version with the alias 'champion'", "@candidate (version 1)", "omvald promote"),
         registry_without_champion),
    Case("score-from-a-stopped-server",
         [*SCORE, "--model-uri", "models:/omvald-churn@champion", "--params", "bad_params.yaml"],
         TrackingError.exit_code, ("server at http://127.0.0.1:9 does not answer",), params_file(STOPPED_SERVER)),
    Case("train-with-a-stopped-server", ["train", "feats", "models", "--params", "bad_params.yaml"],
         TrackingError.exit_code, ("server at http://127.0.0.1:9 does not answer",), params_file(STOPPED_SERVER)),
    Case("promote-with-a-stopped-server", ["promote", "feats", "models", "--params", "bad_params.yaml"],
         TrackingError.exit_code, ("server at http://127.0.0.1:9 does not answer",), params_file(STOPPED_SERVER)),
    Case("evaluate-a-run-on-a-stopped-server", ["evaluate", "feats", "models", "metrics", "plots", "--params",
         "bad_params.yaml"], TrackingError.exit_code, ("server at http://127.0.0.1:9 does not answer",),
         tracked_run_on_a_stopped_server),
    Case("report-a-run-on-a-stopped-server", ["report", "--out", "r.html", "--params", "bad_params.yaml"],
         TrackingError.exit_code, ("server at http://127.0.0.1:9 does not answer",), tracked_run_on_a_stopped_server),
    # an export that does not fit the models
    Case("contractual-model-export-without-churn-date", BAD_SCORE, ModelError.exit_code,
         ("bad: the customers table has no churn_date column", "trained on a business with contracts"),
         drop_column("customers", "churn_date")),
    Case("export-without-a-column-the-models-read", BAD_SCORE, ModelError.exit_code,
         ("bad does not fit the models", "no column billing.list_price: loyalty_gap_pct"),
         drop_column("billing", "list_price")),
    Case("header-only-billing", [*BAD_SCORE, "--summary", "s.json"], 0,
         ("billing: no rows", "revenue at risk are 0 for every customer"), header_only_billing,
         ("s.csv", "s.json", "drift.json")),
    Case("no-billing-file", BAD_SCORE, 0, ("billing: no rows", "revenue at risk are 0"), no_billing_file,
         ("s.csv", "s.drift.json")),
    Case("no-consent-column", [*BAD_SCORE, "--summary", "s.json"], 0,
         ("no marketing_opt_in column: nobody is contactable", "the training export had it"),
         drop_column("customers", "marketing_opt_in"), ("s.csv", "s.json", "drift.json")),
    # files that are not what they claim, and CSV that cannot be read
    Case("billing-is-a-folder", ["validate", "bad", "out"], DataContractError.exit_code,
         ("bad/billing.csv", "is a folder, not a file"), billing_folder),
    Case("workbook-named-csv", ["validate", "bad", "out"], DataContractError.exit_code,
         ("bad/customers.csv", "Excel workbook", "CSV UTF-8"), workbook),
    Case("ragged-rows", ["validate", "bad", "out"], DataContractError.exit_code,
         ("bad/billing.csv", "different number of fields", "header's 9", "line 10: 10 fields"), ragged_rows),
    Case("unclosed-quote", ["validate", "bad", "out"], DataContractError.exit_code,
         ("bad/customers.csv", "line 5: 6 fields", "a quote opened must be closed"), unclosed_quote),
    Case("mixed-encodings", ["validate", "bad", "out"], DataContractError.exit_code,
         ("bad/customers.csv", "mixes UTF-8 with another encoding (line 4"), mixed_encoding),
    # dates far outside the data
    Case("signup-in-1850", ["validate", "bad", "out"], DataContractError.exit_code,
         ("column 'signup_date'", "before 1900-01-01", "signup_date=1850-01-01"), ancient_signup),
    Case("decades-of-as-of-dates", ["features", "old_interim", "feats"], ConfigError.exit_code,
         ("408 monthly as-of dates from 1991-01-31", "set features.as_of_first"), decades_of_history),
    # params and options of the wrong kind
    Case("horizon-days-yes", [*VALIDATE, "--params", "bad_params.yaml"], ConfigError.exit_code,
         ("features.horizon_days", "yes/no value"), params_file("features:\n  horizon_days: yes\n")),
    Case("personal-columns-one-word", [*VALIDATE, "--params", "bad_params.yaml"], ConfigError.exit_code,
         ("data.personal_columns", "expected a list"), params_file("data:\n  personal_columns: email\n")),
    Case("explain-top-nan", ["score", "--input", "export", "--output", "s.csv", "--explain", "top:nan"],
         ConfigError.exit_code, ("--explain 'top:nan'", "finite")),
    Case("explain-top-inf", ["score", "--input", "export", "--output", "s.csv", "--explain", "top:inf"],
         ConfigError.exit_code, ("--explain 'top:inf'", "finite")),
    # from scores to actions and back
    Case("plan-on-old-scores", ["plan", "old_scores.csv", "list.csv"], DataContractError.exit_code,
         ("old_scores.csv", "value_tier", "score the customers again"), old_scores),
    Case("plan-onto-its-scores", ["plan", "old_scores.csv", "old_scores.csv"], OutputError.exit_code,
         ("the output is the input",), old_scores),
    Case("plan-rule-without-action", ["plan", "scores.csv", "list.csv", "--params", "bad_params.yaml"],
         ConfigError.exit_code, ("plan.rules[0]", "'call_them'", "plan.actions"), scores_and_rules),
    Case("effect-before-the-horizon", ["effect", "--list", "list.csv", "--input", "export", "--output", "e.json"],
         6, ("not yet observable", "2024-08-31", "Measure with an export that reaches"),
         retention_list(["contact", "contact", "control"])),
    Case("effect-without-control", ["effect", "--list", "list.csv", "--input", "export", "--output", "e.json"],
         DataContractError.exit_code, ("list.csv", "no control customer"), retention_list(["contact", "contact"])),
    Case("campaign-of-another-business", ["generate", "next", "--campaign", "list.csv"], DataContractError.exit_code,
         ("list.csv", "not a customer of the synthetic business", "C9"),
         lambda project: pd.DataFrame({"customer_id": ["C9"], "as_of": ["2024-08-31"], "group": ["contact"],
                                       "action": ["a"], "segment": ["active"]}).to_csv(project / "list.csv")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_a_message_and_changes_nothing(project, case):
    case.setup(project)
    before = snapshot(project)
    result = invoke(project, case.args)
    output = " ".join(result.output.split())  # Rich wraps long messages
    assert result.exit_code == case.exit_code, result.output
    for needle in case.needles:
        assert needle in output, f"{needle!r} not in:\n{result.output}"
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit | None)
    after = snapshot(project)
    assert sorted(set(after) - set(before)) == sorted(case.writes)  # only the run's own outputs appear
    # no file changed, none removed, earlier outputs intact
    assert {path: digest for path, digest in after.items() if path in before} == before


# --- stray dates do not move the scoring date -----------------------------------------------------


def test_a_future_and_an_ancient_row_do_not_move_the_scoring_date(project):
    strays = bad_export(project, "strays")
    billing = pd.read_csv(strays / "billing.csv", dtype=str)
    billing.loc[3, "invoice_date"] = "1850-06-30"
    billing.to_csv(strays / "billing.csv", index=False)
    touchpoints = pd.read_csv(strays / "touchpoints.csv", dtype=str)
    touchpoints.loc[3, "timestamp"] = "2099-01-01 10:00:00"
    touchpoints.to_csv(strays / "touchpoints.csv", index=False)
    summaries = {}
    for name in ("export", "strays"):
        result = invoke(project, ["score", "--input", name, "--output", f"{name}.csv", "--summary", f"{name}.json"])
        assert result.exit_code == 0, result.output
        summaries[name] = yaml.safe_load((project / f"{name}.json").read_text())
    assert summaries["strays"]["as_of"] == summaries["export"]["as_of"]
    assert summaries["strays"]["n_scored"] == summaries["export"]["n_scored"]
    assert summaries["strays"]["revenue_at_risk"] == summaries["export"]["revenue_at_risk"]
    warnings = " ".join(summaries["strays"]["warnings"])
    assert "billing: 1 row(s) dated outside the bulk" in warnings and "touchpoints: 1 row(s)" in warnings


# --- exports that still score: the numbers say what the warning says ------------------------------


def test_header_only_billing_scores_everyone_with_no_revenue_at_risk_and_the_summary_says_why(project):
    header_only_billing(project)
    result = invoke(project, [*BAD_SCORE, "--summary", "s.json"])
    assert result.exit_code == 0, result.output
    summary = yaml.safe_load((project / "s.json").read_text())
    assert summary["n_scored"] > 100 and summary["revenue_at_risk"] == 0 and summary["monthly_revenue"] == 0
    (warning,) = [w for w in summary["warnings"] if w.startswith("billing: no rows")]
    assert "revenue at risk are 0 for every customer" in warning


def test_an_export_without_consent_marks_nobody_contactable_and_the_summary_says_why(project):
    drop_column("customers", "marketing_opt_in")(project)
    result = invoke(project, [*BAD_SCORE, "--summary", "s.json"])
    assert result.exit_code == 0, result.output
    summary = yaml.safe_load((project / "s.json").read_text())
    assert summary["n_scored"] > 100 and summary["n_contactable"] == 0
    assert any("nobody is contactable" in w for w in summary["warnings"])
    assert not pd.read_csv(project / "s.csv")["contactable"].any()

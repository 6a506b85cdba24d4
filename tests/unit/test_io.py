import pandas as pd
import pytest

from omvald.io import atomic_path, read_json, write_json, write_table


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


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_write_table_round_trips(tmp_path, ext):
    df = pd.DataFrame({"customer_id": ["a", "b"], "p": [0.25, 0.5]})
    write_table(df, tmp_path / f"s.{ext}")
    back = pd.read_csv(tmp_path / "s.csv") if ext == "csv" else pd.read_parquet(tmp_path / "s.parquet")
    assert back["p"].tolist() == [0.25, 0.5]

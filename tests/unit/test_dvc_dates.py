"""DVC reads dates in params.yaml as their ISO text (omvald.dvc_dates), quoted or not."""

from __future__ import annotations

import datetime as dt
import importlib
import subprocess
import sys
from pathlib import Path

from omvald import dvc_dates

PARAMS = "data:\n  data_end: 2026-10-31\n  quoted: '2026-11-30'\nfeatures:\n  dates: [2025-01-31, null]\n  n: 3\n"


def test_dates_become_the_text_written_in_the_file_and_nothing_else_changes():
    data = {"a": dt.date(2026, 10, 31), "b": [dt.date(2025, 1, 31), None, 3], "c": {"d": "x", "e": 1.5, "f": True}}
    assert dvc_dates.dates_as_text(data) == {"a": "2026-10-31", "b": ["2025-01-31", None, 3], "c": data["c"]}


def test_the_patched_reader_gives_text_on_dvcs_safe_load_and_keeps_round_trip_loads_as_they_were():
    module = importlib.import_module(dvc_dates.TARGET)
    dvc_dates.patch_yaml(module)
    dvc_dates.patch_yaml(module)  # idempotent: one wrapper, not two

    safe = module.parse_yaml(PARAMS, "params.yaml")
    assert safe == {
        "data": {"data_end": "2026-10-31", "quoted": "2026-11-30"},
        "features": {"dates": ["2025-01-31", None], "n": 3},
    }
    # the round-trip load `dvc exp run -S` edits params.yaml with keeps the date, so the file keeps its form
    assert module.parse_yaml_for_update(PARAMS, "params.yaml")["data"]["data_end"] == dt.date(2026, 10, 31)


def test_this_environment_has_the_hook_that_make_install_writes():
    code = "from dvc.utils.serialize import parse_yaml; print(parse_yaml('d: 2026-10-31', 'params.yaml')['d'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "2026-10-31", "DVC still reads dates as dates: run `make install` (writes omvald_dvc_dates.pth)"


def test_install_writes_one_import_line_that_never_fails_at_start_up(tmp_path: Path):
    path = dvc_dates.install_pth(tmp_path)
    assert path.name == "omvald_dvc_dates.pth" and path.read_text() == dvc_dates.PTH_LINE
    assert path.read_text().startswith("import ") and path.read_text().count("\n") == 1  # site runs "import" lines
    exec(path.read_text(), {})  # what site.py does with the line

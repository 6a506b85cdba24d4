"""DVC itself sees an edit of a source file a stage runs: ``dvc status`` lists that stage as changed.

``tests/unit/test_dvc_deps.py`` checks dvc.yaml against the imports; this
checks the other half on DVC, without running the pipeline: in a copy of the
project every output and input gets a placeholder, ``dvc commit`` records
them as up to date, one file per stage (one the stage reaches from outside
its own module) gets a comment line, and ``dvc status`` must list that
file's dep under the stage's changed deps. Bytecode caches that Python
writes beside the sources must not (``.dvcignore``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline_run import copy_project
from stage_sources import REPO, covered, reached_files, subcommand

pytestmark = pytest.mark.xdist_group("dvc")

# One file per stage that its command reaches through other modules (these were missing from dvc.yaml).
EXAMPLES = {
    "generate": "src/omvald/cli/generate_cmds.py",
    "validate": "src/omvald/buckets.py",
    "features": "src/omvald/spark/features.py",
    "train": "src/omvald/config.py",
    "evaluate": "src/omvald/io.py",
    "explain": "src/omvald/model/matrix.py",
    "score": "src/omvald/data/validate.py",
    "plan": "src/omvald/actions/rules.py",
    "report": "src/omvald/features/touchpoints.py",
}


def dvc(project: Path, *args: str) -> str:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    out = subprocess.run(["dvc", *args], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"dvc {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def placeholders(project: Path, stages: dict) -> None:
    """A small file at every output path (a folder gets one inside), so DVC can record the graph as run."""
    for stage in stages.values():
        for entry in [*stage.get("outs", []), *stage.get("metrics", [])]:
            path = project / (entry if isinstance(entry, str) else next(iter(entry)))
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"placeholder for {path.name}\n")
            else:
                path.mkdir(parents=True, exist_ok=True)
                (path / "placeholder.txt").write_text("placeholder\n")


def changed_deps(status: dict, stage: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in status.get(stage, []):
        if isinstance(entry, dict):
            found.update(entry.get("changed deps", {}))
    return found


def test_editing_a_reached_source_file_shows_its_stage_as_changed(tmp_path):
    project = copy_project(tmp_path / "project")
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert set(EXAMPLES) == set(stages)
    for name, example in EXAMPLES.items():  # each example is one the stage really runs
        assert example in {str(p.relative_to(REPO)) for p in reached_files(subcommand(stages[name]))}
    placeholders(project, stages)
    dvc(project, "commit", "--force", "--quiet")
    assert json.loads(dvc(project, "status", "--json")) == {}  # recorded as up to date
    # Python writes bytecode caches into the source folders as it runs: that is not an edit of any stage
    for package in {(project / e).parent for e in EXAMPLES.values()}:
        (package / "__pycache__").mkdir(exist_ok=True)
        (package / "__pycache__" / "written_by_a_run.cpython-311.pyc").write_bytes(b"\x00bytecode")
    assert json.loads(dvc(project, "status", "--json")) == {}

    for example in set(EXAMPLES.values()):
        with open(project / example, "a") as fh:
            fh.write("# an edit\n")
    status = json.loads(dvc(project, "status", "--json"))
    for name, example in EXAMPLES.items():
        deps = [project / d for d in stages[name]["deps"]]
        dep = next(d for d in deps if covered(project / example, [d]))
        changed = changed_deps(status, name)
        assert changed.get(str(dep.relative_to(project))) == "modified", (name, example, changed)

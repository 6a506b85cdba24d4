"""dvc.yaml lists, for every stage, the source files its command can run: DVC never misses a code change.

DVC reruns a stage only when one of its ``deps`` changed. For each stage,
:func:`stage_sources.reached_files` follows the imports of its ``omvald
<subcommand>`` (see that module), and every file reached must lie under one
of the stage's deps. When a test fails, run ``python tests/stage_sources.py``:
it rewrites the ``src/`` deps of every stage from the imports. ``tests/e2e/test_dvc_graph.py``
checks that DVC itself then sees an edit of a reached file.
"""

from __future__ import annotations

import pytest
import yaml

from stage_sources import REPO, SRC, code_deps, covered, reached_files, stages, subcommand


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_source_file_a_stage_runs_is_one_of_its_deps(name):
    stage = stages()[name]
    deps = code_deps(stage)
    missing = sorted(str(p.relative_to(REPO)) for p in reached_files(subcommand(stage)) if not covered(p, deps))
    assert not missing, f"stage '{name}' runs these files but does not list them in deps:\n  " + "\n  ".join(missing)


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_source_dep_of_a_stage_holds_code_it_runs(name):
    """A dep that the command never runs only reruns the stage for nothing."""
    stage = stages()[name]
    reached = reached_files(subcommand(stage))
    idle = [str(d.relative_to(REPO)) for d in code_deps(stage) if not any(covered(p, [d]) for p in reached)]
    assert not idle, f"stage '{name}' lists deps it never runs: {', '.join(idle)}"


def test_imports_are_followed_inside_functions_and_through_packages():
    # the score command imports omvald.scoring.stage inside its function; validation is reached from there
    reached = {str(p.relative_to(SRC)) for p in reached_files("score")}
    assert {"omvald/cli/scoring_cmds.py", "omvald/scoring/stage.py", "omvald/data/validate.py"} <= reached
    assert {"omvald/__init__.py", "omvald/scoring/__init__.py", "omvald/config.py"} <= reached
    assert "omvald/explain/stage.py" not in reached  # the explain command's import, in the same module
    assert "omvald/data/generate.py" not in reached  # registered by omvald/cli/__init__.py only
    # the explain command's module imports omvald.scoring.finish for a type hint only
    assert "omvald/scoring/finish.py" not in {str(p.relative_to(SRC)) for p in reached_files("explain")}


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_declared_param_is_a_key_of_params_yaml(name):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for key in stages()[name].get("params", []):
        value = params
        for part in key.split("."):
            assert isinstance(value, dict) and part in value, f"stage '{name}': params.yaml has no {key}"
            value = value[part]

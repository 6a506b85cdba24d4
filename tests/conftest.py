"""Shared fixtures: ``small_pipeline`` runs every stage once on a small synthetic business.

The pipeline takes a while, so it is session-scoped and tests that use it
carry ``pytest.mark.xdist_group("pipeline")`` (``pytest -n 2 --dist
loadgroup`` then runs them on one worker, sharing the one run). Every test
that needs it, directly or through another fixture, is marked ``pipeline``
here, so ``make test-fast`` (``-m "not slow and not pipeline and not
spark"``) never runs the pipeline.
Helpers to run more stages in that folder are in ``tests/pipeline_run.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import settings

from pipeline_run import CAMPAIGN, PIPELINE, run_cli, small_params

PIPELINE_FIXTURES = {"small_pipeline"}

# `make test-fast` passes --hypothesis-profile=fast: every property test draws at most 5 examples there
# (tests/property_budget.py); `make test` draws each test's own number.
settings.register_profile("fast", max_examples=5)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``pipeline`` every test whose fixtures (all of them, transitively) run the pipeline."""
    for item in items:
        if PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.pipeline)


@pytest.fixture(scope="session")
def small_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder where every dvc.yaml stage ran on a 1,500-customer business; returns its path.

    Layout as in the repository (``data/``, ``models/``, ``metrics/``,
    ``plots/``, ``reports/``), ``params.yaml`` and ``mlflow.db`` inside it.
    Before the report, the plan's campaign is run and measured
    (:data:`pipeline_run.CAMPAIGN`: ``data/synthetic_next``,
    ``reports/effect.json``), so the report shows the whole loop.
    """
    project = tmp_path_factory.mktemp("small_pipeline")
    params_file = project / "params.yaml"
    params_file.write_text(yaml.safe_dump(small_params(project), sort_keys=False))
    for args in [*PIPELINE[:-1], *CAMPAIGN, PIPELINE[-1]]:
        run_cli(project, list(args), params_file)
    return project

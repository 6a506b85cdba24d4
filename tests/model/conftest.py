"""Fixtures for model tests; the fake feature tables live in ``model_fakes``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from model_fakes import make_feature_frame, write_features


@pytest.fixture
def feature_frame() -> pd.DataFrame:
    return make_feature_frame()


@pytest.fixture
def features_dir(tmp_path: Path, feature_frame: pd.DataFrame) -> Path:
    return write_features(tmp_path / "features", feature_frame)


@pytest.fixture(scope="session")
def default_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """generate -> evaluate on the *default* synthetic business (params.yaml as shipped), in a temp project.

    Only the MLflow store is redirected into the temp folder. Takes a few
    minutes, once per session; tests using it carry ``xdist_group("default")``.
    """
    import yaml

    from pipeline_run import PIPELINE, run_cli, tracking_uri

    project = tmp_path_factory.mktemp("default_pipeline")
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["mlflow"]["tracking_uri"] = tracking_uri(project)
    params_file = project / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    for args in PIPELINE[:5]:  # generate, validate, features, train, evaluate
        run_cli(project, list(args), params_file)
    return project

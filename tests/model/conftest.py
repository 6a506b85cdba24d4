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

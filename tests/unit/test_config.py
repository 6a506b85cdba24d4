import datetime as dt

import pytest

from omvald.config import Config, MlflowConfig, config_from_dict, load_config, resolve_tracking_uri
from omvald.errors import ConfigError


def test_project_params_yaml_loads_into_typed_config():
    cfg = load_config("params.yaml")
    assert isinstance(cfg, Config)
    assert cfg.features.horizon_days > 0
    assert cfg.train.churn.num_leaves >= 2
    assert "features.horizon_days" in cfg.flat()


def test_dates_and_nested_sections_are_coerced():
    cfg = config_from_dict({"data": {"data_end": "2025-06-30"}, "features": {"active_rule": {"window_days": 60}}})
    assert cfg.data.data_end == dt.date(2025, 6, 30)
    assert cfg.features.active_rule.window_days == 60
    assert cfg.features.active_rule.min_active_events == 2  # default kept


def test_unknown_key_is_an_error_that_names_it():
    with pytest.raises(ConfigError, match=r"features: unknown parameter\(s\) horizon"):
        config_from_dict({"features": {"horizon": 90}})


def test_unparsable_value_names_the_key():
    with pytest.raises(ConfigError, match=r"features.horizon_days"):
        config_from_dict({"features": {"horizon_days": "ninety"}})


def test_missing_params_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "params.yaml")


def test_tracking_uri_comes_from_the_environment_first_then_params():
    mlflow = MlflowConfig(tracking_uri="sqlite:///mlflow.db")
    assert resolve_tracking_uri(mlflow, {"MLFLOW_TRACKING_URI": "http://tracking:5000"}) == "http://tracking:5000"
    assert resolve_tracking_uri(mlflow, {}) == "sqlite:///mlflow.db"  # relative to the working directory
    assert resolve_tracking_uri(mlflow, {"MLFLOW_TRACKING_URI": ""}) == "sqlite:///mlflow.db"  # empty = unset


def test_a_relative_sqlite_tracking_uri_is_anchored_in_the_given_folder(tmp_path):
    mlflow = MlflowConfig(tracking_uri="sqlite:///mlflow.db")
    assert resolve_tracking_uri(mlflow, {}, tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    absolute = MlflowConfig(tracking_uri="sqlite:////srv/mlflow.db")
    assert resolve_tracking_uri(absolute, {}, tmp_path) == "sqlite:////srv/mlflow.db"
    assert resolve_tracking_uri(mlflow, {"MLFLOW_TRACKING_URI": "http://h:5000"}, tmp_path) == "http://h:5000"

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


def test_dates_read_the_same_quoted_or_not(tmp_path):
    # the README's example is unquoted: YAML gives a date; quoted it is a string; DVC may write either
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  data_end: 2026-10-31\nfeatures:\n  as_of_first: '2025-01-31'\n  as_of_last: 2026-06-30\n")
    cfg = load_config(path)
    assert cfg.data.data_end == dt.date(2026, 10, 31)
    assert (cfg.features.as_of_first, cfg.features.as_of_last) == (dt.date(2025, 1, 31), dt.date(2026, 6, 30))
    assert config_from_dict({"data": {"data_end": dt.datetime(2026, 10, 31)}}).data.data_end == dt.date(2026, 10, 31)
    with pytest.raises(ConfigError, match="data.data_end"):
        config_from_dict({"data": {"data_end": dt.datetime(2026, 10, 31, 12, 30)}})


def test_a_renamed_parameter_says_its_new_name():
    with pytest.raises(ConfigError, match="snapshot_test_share was renamed; write it as train.customer_holdout_share"):
        config_from_dict({"train": {"snapshot_test_share": 0.25}})


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (
            {"features": {"horizon_days": True}},
            "features.horizon_days: cannot read True as whole number: true is a yes/no",
        ),
        ({"features": {"phase_out_drop": False}}, "features.phase_out_drop: cannot read False as number"),
        ({"features": {"horizon_days": 92.5}}, "features.horizon_days: cannot read 92.5 as whole number"),
        ({"features": {"horizon_days": None}}, "features.horizon_days: cannot read None"),
        ({"mlflow": {"register_models": 1}}, "mlflow.register_models: cannot read 1 as true/false"),
        ({"features": {"engine": True}}, "features.engine: cannot read True as text"),
        ({"data": {"personal_columns": "email"}}, "data.personal_columns: cannot read 'email'"),
        ({"data": {"personal_columns": ["email", True]}}, r"data.personal_columns\[1\]"),
        ({"score": {"risk_tiers": {"high": "yes"}}}, "score.risk_tiers.high"),
        ({"features": {"phase_out_drop": float("nan")}}, "finite"),
        ({"data": {"data_end": dt.datetime(2025, 6, 30, 12)}}, "without a time"),
        ({"data": {"data_end": 20250630}}, "data.data_end: cannot read 20250630 as date"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_naming_the_key(raw, needle):
    with pytest.raises(ConfigError, match=needle):
        config_from_dict(raw)


def test_yaml_yes_is_not_a_horizon(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("features:\n  horizon_days: yes\n")
    with pytest.raises(ConfigError, match="features.horizon_days"):
        load_config(params)


def test_numbers_written_as_text_and_whole_floats_still_read():
    cfg = config_from_dict(
        {"features": {"horizon_days": "92", "n_buckets": 16.0}, "train": {"churn": {"learning_rate": "1e-3"}}}
    )
    assert (cfg.features.horizon_days, cfg.features.n_buckets, cfg.train.churn.learning_rate) == (92, 16, 0.001)
    assert config_from_dict({"data": {"data_end": dt.date(2025, 6, 30)}}).data.data_end == dt.date(2025, 6, 30)


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

"""The feature matrix a trained model reads: its own columns, in its own order."""

from __future__ import annotations

from typing import Any

import pandas as pd

from omvald.errors import ModelError


def model_matrix(features: pd.DataFrame, model: Any, model_name: str) -> pd.DataFrame:
    """The columns ``model`` was trained on (``model.feature_names_``), in its order.

    Raises :class:`ModelError` naming every column that ``features`` lacks
    (the input cannot provide them, or the model was trained on another
    feature set). Used wherever a model meets a feature table: scoring,
    explanations, tests.
    """
    needed = list(model.feature_names_)
    missing = [c for c in needed if c not in features.columns]
    if missing:
        raise ModelError(
            f"the {model_name} model needs feature(s) the input cannot provide: {', '.join(missing)}. "
            "The scoring files lack the columns these features are built from (see the registry's "
            "'requires'), or the model was trained on a different feature set; retrain or add the columns."
        )
    return features[needed]

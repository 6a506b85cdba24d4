"""The first steps of a scoring run on either engine, before any input is read.

The explain policy and the output's format are checked and the models
loaded first, so that a wrong ``--explain``, output name or models folder
is refused in seconds, before the input is validated.
"""

from __future__ import annotations

from pathlib import Path

from omvald.config import Config
from omvald.scoring.clock import PhaseClock
from omvald.scoring.finish import check_output
from omvald.scoring.plan import ScoringModels, load_scoring_models
from omvald.scoring.select import ExplainPolicy, parse_explain_policy


def start_scoring(
    cfg: Config,
    explain: str | None,
    output: Path,
    models_dir: Path,
    model_uri: str | None,
    tracking_uri: str | None,
    clock: PhaseClock,
) -> tuple[ExplainPolicy, ScoringModels]:
    """The run's explain policy (``explain`` or ``score.explain``) and its models; raises before any work on bad ones."""
    policy = parse_explain_policy(explain if explain is not None else cfg.score.explain)
    check_output(output)
    clock.enter("load_models")
    return policy, load_scoring_models(Path(models_dir), model_uri, tracking_uri)

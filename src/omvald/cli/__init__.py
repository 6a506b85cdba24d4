"""The ``omvald`` command: one subcommand per pipeline stage (see dvc.yaml)."""

from omvald.cli import (  # noqa: F401  (registers commands)
    action_cmds,
    feature_cmds,
    generate_cmds,
    model_cmds,
    monitor_cmds,
    report_cmds,
    scoring_cmds,
    validate_cmds,
)
from omvald.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    app()

"""Shared CLI plumbing: the Typer app, config loading and error handling.

Each command module (``data_cmds``, ``feature_cmds``, ...) registers its
subcommands on :data:`app`. Commands parse options, load ``params.yaml``
once with :func:`load_params`, call one stage function and turn an
:class:`~omvald.errors.OmvaldError` into a clear message and exit code.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from omvald.config import Config, load_config
from omvald.errors import OmvaldError

app = typer.Typer(
    name="omvald",
    help="Churn and phase-out prediction for subscription businesses: "
    "point-in-time features, LightGBM models, SHAP reasons, batch scoring.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

ParamsOption = Annotated[
    Path, typer.Option("--params", "-p", help="Parameters file.", show_default=True, dir_okay=False)
]


def load_params(path: Path) -> Config:
    """Read params.yaml once, at the edge."""
    return load_config(path)


def check_tracking(run_json: Path, tracking_uri: str) -> None:
    """Before a stage that adds to the train run (``run.json``): fail now if its tracking server does not answer.

    Without a recorded run nothing is logged, so nothing is checked.
    """
    from omvald.io import read_json

    info = read_json(run_json) if run_json.is_file() else {}
    if info.get("parent_run_id"):
        from omvald.model.tracking import connect

        connect(tracking_uri)


def stage(func: F) -> F:
    """Run a command body; user errors become a message and a non-zero exit, with no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _configure_logging()
        try:
            return func(*args, **kwargs)
        except OmvaldError as exc:
            console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def progress() -> Progress:
    """A Rich progress bar for long loops (buckets, chunks); hidden when not a terminal."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


def _configure_logging() -> None:
    root = logging.getLogger()
    if any(isinstance(h, RichHandler) for h in root.handlers):
        return
    level = os.environ.get("OMVALD_LOG_LEVEL", "INFO").upper()
    handler = RichHandler(console=console, show_path=False, rich_tracebacks=False, markup=False)
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]", handlers=[handler], force=True)
    for noisy in ("mlflow", "alembic", "urllib3", "matplotlib", "numba", "git", "shap"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # "Retrying ... Connection refused" per request: a server that stopped is one message (TrackingError)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

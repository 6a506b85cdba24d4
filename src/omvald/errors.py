"""One exception type per kind of user mistake.

The CLI catches :class:`OmvaldError` once, prints its message and exits
non-zero; everything below raises these with a message that names the
file, the column and example rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class OmvaldError(Exception):
    """Base class: a problem the user can fix (input data or settings)."""

    exit_code = 1


class ConfigError(OmvaldError):
    """params.yaml (or a command-line option) is invalid or contradicts the data."""

    exit_code = 2


class DataContractError(OmvaldError):
    """Input files break the data contract (docs/data-contract.md)."""

    exit_code = 3

    def __init__(
        self,
        table: str,
        column: str | None,
        problem: str,
        examples: Sequence[Any] = (),
        path: str | None = None,
    ) -> None:
        self.table, self.column, self.problem = table, column, problem
        self.examples = list(examples)[:5]
        self.path = path
        where = path or table
        col = f", column '{column}'" if column else ""
        msg = f"{where} (table '{table}'{col}): {problem}"
        if self.examples:
            msg += "\n  example rows:\n" + "\n".join(f"    {e}" for e in self.examples)
        super().__init__(msg)


class ModelError(OmvaldError):
    """A model does not fit the data it is asked to score (missing features, wrong URI)."""

    exit_code = 4


class OutputError(OmvaldError):
    """An output path would destroy something omvald did not write, or cannot be written at all.

    Raised before any work (:func:`omvald.io.check_outputs`) and, as a last
    line of defence, by :func:`omvald.io.atomic_path` before it replaces anything.
    """

    exit_code = 5


class NotObservableError(OmvaldError):
    """An outcome is asked for before the data can show it (a campaign measured before its horizon has passed)."""

    exit_code = 6


class TrackingError(OmvaldError):
    """The MLflow tracking server or store cannot be reached, or stopped answering during a run.

    The message names the tracking URI. Raised before any work when the
    server does not answer at all (:func:`omvald.model.tracking.connect`).
    """

    exit_code = 7

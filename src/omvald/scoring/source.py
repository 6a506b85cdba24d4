"""The local scoring engine's input: a folder of contract files, validated out of core and read bucket by bucket.

``omvald score`` never holds the whole input. :func:`validated_input`
validates the folder as ``omvald validate`` does (bucket by bucket,
:func:`omvald.data.validate_buckets.validate_folder`; rows dated after the
as-of date are errors) into a temporary interim folder next to the output,
which is removed when the run ends, successful or not. The facts about the
whole input come from those files as the features stage gets them
(attribute kinds from the customers file, the BG/NBD population fit from
the billing file), and :meth:`ScoringInput.bucket` reads one bucket's rows
as :func:`omvald.features.stage.read_bucket` does for the features stage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omvald.buckets import slot_range
from omvald.config import Config
from omvald.features.facts import AttributeFacts
from omvald.features.spec import BucketTables

if TYPE_CHECKING:
    from omvald.scoring.plan import ScoringModels

log = logging.getLogger(__name__)

TABLES = ("customers", "billing", "touchpoints")


@dataclass(frozen=True)
class ScoringInput:
    """The validated interim files of a scoring input, their ``meta`` and the data ``warnings``."""

    paths: dict[str, Path]
    meta: dict[str, Any]
    warnings: list[str]

    def attribute_facts(self) -> AttributeFacts:
        """The whole customers table's :class:`AttributeFacts`, read from the interim file by DuckDB."""
        from omvald.features.stage import interim_attribute_facts

        return interim_attribute_facts(self.paths["customers"])

    def population(self, cfg: Config, as_of: dt.date | None, models: ScoringModels | None = None) -> dict[str, Any]:
        """Population parameters at the scoring date (:func:`omvald.scoring.plan.population_fit`), from the file.

        With ``models``, the business is scored by the models' definition
        (:func:`omvald.scoring.plan.scored_contractual`).
        """
        from omvald.scoring.plan import scored_contractual

        if scored_contractual(cfg, self.meta, models):
            return {}
        from omvald.features import btyd_fit

        date = as_of or dt.date.fromisoformat(str(self.meta["data_end"])[:10])
        return {"btyd": btyd_fit.fit_parquet(self.paths["billing"], [date], cfg.features)}

    def bucket(self, bucket: int, n_buckets: int) -> BucketTables:
        """One bucket's validated rows (a contiguous slot range of the sorted interim files)."""
        from omvald.features.stage import read_bucket

        return read_bucket(self.paths, *slot_range(bucket, n_buckets))


@contextmanager
def validated_input(cfg: Config, input_dir: Path, as_of: dt.date | None, near: Path) -> Iterator[ScoringInput]:
    """Validate ``input_dir`` into a temporary folder beside ``near`` (the output); yields the :class:`ScoringInput`.

    Raises :class:`~omvald.errors.DataContractError` for bad input, as
    ``omvald validate --as-of`` would. The temporary folder is removed on exit.
    """
    from omvald.data.validate_buckets import validate_folder

    # folders made here for the output are removed again when the input is refused: no partial output
    made = [p for p in [near.parent, *near.parent.parents] if not p.exists()]
    near.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".omvald-score-", dir=near.parent))
    try:
        interim = scratch / "interim"
        validated = validate_folder(input_dir, cfg.data, interim, scratch / "buckets", as_of)
        shutil.rmtree(scratch / "buckets", ignore_errors=True)
        paths = {t: interim / f"{t}.parquet" for t in TABLES}
        yield ScoringInput(paths, validated.meta, list(validated.warnings))
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        for folder in made:  # deepest first; only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

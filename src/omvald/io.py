"""Disk I/O helpers: atomic writes that never leave partial output and never destroy a user's files.

Rules for every output (docs/data-contract.md, "Outputs"):

- an output **folder** carries a marker file (:data:`MARKER`, a small JSON
  naming omvald and the stage). An existing folder is replaced only when it
  is empty, carries the marker, or is an interim or features folder written
  before markers existed (exactly omvald's file names and omvald's
  ``meta.json``: :data:`LEGACY_OUTPUTS`). Anything else is refused;
- an output **file** never replaces a folder, and a folder never a file;
- an output is never an input, inside an input, or (a folder) around one;
- all this, and whether the place can be written at all, is checked by
  :func:`check_outputs` before a stage does any work; :func:`atomic_path`
  checks the folder rule again before it replaces anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from omvald.errors import OutputError

MARKER = ".omvald-output"
# Output folders written before the marker existed: only these names, and a meta.json holding the key.
LEGACY_OUTPUTS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"customers.parquet", "billing.parquet", "touchpoints.parquet", "meta.json"}), "n_slots"),  # validate
    (frozenset({"training.parquet", "scoring.parquet", "registry.json", "meta.json"}), "as_of_dates"),  # features
)
# "file": one file; "dir": a folder replaced as a whole; "files": a folder that named files are written into
# one by one (models/, metrics/, reports/explain/), never emptied, so it may hold anything else.
KINDS = ("file", "dir", "files")


@contextlib.contextmanager
def atomic_path(target: str | Path, stage: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it onto ``target`` on success.

    Works for files and folders: write into the yielded path, and only a
    completed block replaces the target. A folder gets the :data:`MARKER`
    file (naming ``stage``). On error the temporary is removed and the old
    target (if any) is left untouched. Raises :class:`OutputError` instead of
    replacing a folder omvald did not write, a folder by a file or a file by
    a folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp = scratch / target.name
    try:
        yield tmp
        if tmp.is_dir() and not tmp.is_symlink():
            (tmp / MARKER).write_text(json.dumps(marker_content(stage), sort_keys=True) + "\n")
        _replace(tmp, target, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def staged_files(folder: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder inside ``folder``; on success move every file in it into ``folder``.

    For a stage whose files must change together or not at all (``models/``:
    models, ``split.json``, ``run.json`` and what MLflow recorded of them):
    write them all into the staging folder, do whatever may still fail (log
    them to a tracking server), and only a completed block replaces the
    same-named files of ``folder``. Other files in ``folder`` are never
    touched. On error the staging folder is removed and ``folder`` is as it was.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staged.", dir=folder))
    try:
        yield staging
        for path in sorted(staging.iterdir()):
            target = folder / path.name
            if target.is_dir() and not target.is_symlink():
                raise OutputError(f"{target} is a folder; it is not replaced by a file. Move it away.")
        for path in sorted(staging.iterdir()):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def marker_content(stage: str | None = None) -> dict[str, Any]:
    """What the marker file of an output folder holds (no time stamp: DVC hashes the folder)."""
    from omvald import __version__

    return {"written_by": "omvald", "version": __version__, "stage": stage}


def _replace(new: Path, target: Path, scratch: Path) -> None:
    if target.is_symlink() or not target.exists():
        if target.is_symlink():  # only the link goes; whatever it points to stays
            target.unlink()
        os.replace(new, target)
        return
    if target.is_dir():
        if not new.is_dir():
            raise OutputError(f"{target} is a folder; it is not replaced by a file. Give a file name.")
        reason = refusal_reason(target)
        if reason is not None:
            raise OutputError(f"{target}: {reason}")
        # Move the old folder aside first: a crash in between leaves it in the scratch folder, not lost.
        previous = scratch / ".previous"
        os.replace(target, previous)
        try:
            os.replace(new, target)
        except BaseException:
            os.replace(previous, target)
            raise
        return
    if new.is_dir():
        raise OutputError(f"{target} is a file; it is not replaced by a folder. Give a folder name.")
    os.replace(new, target)


def refusal_reason(folder: Path) -> str | None:
    """``None`` when the existing ``folder`` may be replaced by an output, else why not (for a message)."""
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError as exc:
        return f"the folder cannot be listed ({exc.strerror or exc})"
    if not names or MARKER in names or _legacy_output(folder, set(names)):
        return None
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (
        f"will not replace this folder: it holds files omvald did not write ({shown}) and no {MARKER} marker. "
        "Choose a new or empty folder (or one an earlier omvald run wrote), or move the files yourself."
    )


def _legacy_output(folder: Path, names: set[str]) -> bool:
    if "meta.json" not in names:
        return False
    try:
        meta = read_json(folder / "meta.json")
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and any(names <= known and key in meta for known, key in LEGACY_OUTPUTS)


def check_outputs(outputs: Mapping[str | Path, str], inputs: Iterable[str | Path | None] = ()) -> None:
    """Refuse, before any work, outputs that would destroy something or cannot be written.

    ``outputs`` maps each output path to a kind in :data:`KINDS`; ``inputs``
    are the files and folders the stage reads (``None`` entries are skipped).
    Raises :class:`OutputError` naming the path and what to do.
    """
    inputs = [Path(p) for p in inputs if p is not None]
    kinds = {Path(p): kind for p, kind in outputs.items()}
    for path, kind in kinds.items():
        check_output(path, kind, inputs)
    paths = list(kinds)
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            ra, rb = _resolved(a), _resolved(b)
            if ra == rb:
                raise OutputError(f"{a}: the same path is given for two outputs; give each its own.")
            for inner, outer, r_in, r_out in ((a, b, ra, rb), (b, a, rb, ra)):
                if r_in.is_relative_to(r_out) and kinds[outer] == "dir":
                    raise OutputError(f"{inner}: lies inside the output {outer}, which replaces it; put it elsewhere.")


def check_output(path: str | Path, kind: str = "file", inputs: Iterable[str | Path] = ()) -> None:
    """The checks of :func:`check_outputs` for one output: its relation to ``inputs``, what is there, writability."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    path = Path(path)
    where = _resolved(path)
    for source in inputs:
        source = Path(source)
        if not source.exists():
            continue
        src = _resolved(source)
        if where == src:
            raise OutputError(f"{path}: the output is the input {source}; omvald never overwrites its inputs.")
        if where.is_relative_to(src):
            raise OutputError(
                f"{path}: the output lies inside the input {source}; omvald never writes into its inputs. "
                "Choose a place outside it."
            )
        if kind == "dir" and src.is_relative_to(where):
            raise OutputError(f"{path}: the output folder contains the input {source}; replacing it would delete it.")
    if path.exists() and not path.is_symlink():
        if kind == "file" and path.is_dir():
            raise OutputError(f"{path} is a folder; the output is a file. Give a file name.")
        if kind != "file" and not path.is_dir():
            raise OutputError(f"{path} is a file; the output is a folder. Give a folder name.")
        if kind == "dir":
            reason = refusal_reason(path)
            if reason is not None:
                raise OutputError(f"{path}: {reason}")
    check_writable(path / "probe" if kind == "files" else path)


def check_writable(path: str | Path) -> None:
    """Create and remove a probe file where ``path`` will be written; :class:`OutputError` if that fails."""
    path = Path(path)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: cannot be written, {parent} is a file, not a folder.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".omvald-probe-", dir=parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written, no permission to write in {parent} ({exc.strerror}).") from None
    os.close(fd)
    os.unlink(probe)


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path.expanduser()))


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write a DataFrame atomically as Parquet or CSV, chosen by the extension."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        elif path.suffix.lower() in {".parquet", ".pq"}:
            df.to_parquet(tmp, index=False)
        else:
            raise ValueError(f"{path}: unsupported extension (use .csv or .parquet)")


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically, sorted keys and indented so diffs stay readable."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())

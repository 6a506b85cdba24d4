"""Let DVC read dates in ``params.yaml``, quoted or not (``data_end: 2026-10-31``).

Why this exists: YAML reads an unquoted ``2026-10-31`` as a date, and DVC
accepts only strings, numbers, booleans, lists and dicts as parameter
values. Every ``dvc`` command then stops with ``Unsupported value of type
'date' in 'params.yaml:data.data_end'`` (DVC loads ``params.yaml`` into the
templating context of ``dvc.yaml``), and once past that, ``dvc repro`` and
``dvc exp show`` fail with ``Object of type date is not JSON serializable``
(the run cache and the JSON output hash and print parameter values).
Quoting every date is not a fix users can be held to: the README's own
example was unquoted. DVC's maintainers declined to support dates
(treeverse/dvc PR #9473).

The fix: when DVC imports ``dvc.utils.serialize._yaml``, wrap its
``parse_yaml`` so that a "safe" load (how DVC reads ``params.yaml``,
``dvc.yaml`` and ``dvc.lock``) gives a date as its ISO text, exactly as
written. DVC then sees ``"2026-10-31"`` everywhere: in the templating
context, in ``dvc.lock``, ``dvc params diff`` and ``dvc exp show``. The
round-trip load that ``dvc exp run -S`` uses to edit ``params.yaml`` is left
alone, so the file keeps its formatting.

How it is installed: ``make install`` runs ``python -m omvald.dvc_dates
install``, which writes ``omvald_dvc_dates.pth`` into the virtual
environment's site-packages. Python runs its one line at start-up; it adds
an import hook that does nothing until DVC imports that module, so other
programs pay only for one ``sys.meta_path`` entry. ``omvald``'s own reading
of ``params.yaml`` (:mod:`omvald.config`) accepts dates and ISO strings
without any of this.
"""

from __future__ import annotations

import datetime as dt
import importlib.abc
import importlib.machinery
import sys
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Any

TARGET = "dvc.utils.serialize._yaml"
PTH_NAME = "omvald_dvc_dates.pth"
# One line: .pth files run lines that start with "import". A broken or uninstalled
# omvald must not print an error at every Python start-up, hence the try.
PTH_LINE = (
    "import sys; exec('try:\\n import omvald.dvc_dates as _m\\n _m.install_hook()\\nexcept Exception:\\n pass')\n"
)


def dates_as_text(data: Any) -> Any:
    """``data`` (nested dicts and lists) with every ``datetime.date`` / ``datetime`` replaced by its text."""
    if isinstance(data, dt.date):
        return str(data)  # a date: "2026-10-31"; a datetime: "2026-10-31 12:00:00", as YAML writes it
    if isinstance(data, dict):
        return {key: dates_as_text(value) for key, value in data.items()}
    if isinstance(data, list):
        return [dates_as_text(value) for value in data]
    return data


def patch_yaml(module: ModuleType) -> None:
    """Make ``module.parse_yaml`` (DVC's YAML reader) return dates as text on a "safe" load. Idempotent."""
    original = module.parse_yaml
    if getattr(original, "_omvald_dates", False):
        return

    def parse_yaml(text: str, path: str, typ: str = "safe") -> Any:
        data = original(text, path, typ=typ)
        return dates_as_text(data) if typ == "safe" else data

    parse_yaml._omvald_dates = True  # type: ignore[attr-defined]
    parse_yaml.__doc__ = original.__doc__
    module.parse_yaml = parse_yaml


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then :func:`patch_yaml` on the fresh module."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        patch_yaml(module)


class _ContextFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself; for :data:`TARGET` it wraps the loader the other finders return."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


def install_hook() -> None:
    """Patch DVC's YAML reader now if it is already imported, else when it is (called from the ``.pth`` file)."""
    if TARGET in sys.modules:
        patch_yaml(sys.modules[TARGET])
        return
    if not any(isinstance(f, _ContextFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _ContextFinder())


def install_pth(site_packages: Path | None = None) -> Path:
    """Write :data:`PTH_NAME` into ``site_packages`` (default: this interpreter's); returns its path."""
    folder = Path(site_packages or sysconfig.get_path("purelib"))
    path = folder / PTH_NAME
    path.write_text(PTH_LINE)
    return path


if __name__ == "__main__":  # python -m omvald.dvc_dates install
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m omvald.dvc_dates install")
    print(f"wrote {install_pth()}")

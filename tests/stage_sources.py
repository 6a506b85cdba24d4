"""Which omvald source files a dvc.yaml stage's command can run, found by following imports (for tests).

A stage's command is ``omvald <subcommand>``. :func:`reached_files` starts
from that subcommand's function (its own imports and the top-level imports
of its module), then follows every omvald module reached, including imports
inside functions (omvald imports heavy modules where they are used), but
not ``if TYPE_CHECKING:`` blocks, which never run. Package ``__init__``
files run on the way are reached too, except that ``omvald/cli/__init__.py``
is not followed: it imports the other subcommands' modules only to register
their Typer functions, and nothing of theirs runs for this subcommand.
"""

from __future__ import annotations

import ast
import inspect
from functools import cache
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
NOT_FOLLOWED = {"omvald.cli"}  # registers every subcommand; see the module docstring


def stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """The source file of omvald module ``name`` (a package's ``__init__.py``), or None if it is not one."""
    base = SRC.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def imports_in(nodes: list[ast.AST], module: str) -> set[str]:
    """The omvald modules imported anywhere inside ``nodes`` (of module ``module``), with their parent packages."""
    found: set[str] = set()
    for node in (n for top in nodes for n in walk_run(top)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of ``module``
                package = module.split(".")[: -node.level]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if module_file(child) else base)
    modules = {m for m in found if m == "omvald" or m.startswith("omvald.")}
    return {".".join(m.split(".")[:i]) for m in modules for i in range(1, m.count(".") + 2)}


def walk_run(node: ast.AST):
    """``ast.walk`` without the ``if TYPE_CHECKING:`` blocks (imports for type hints never run)."""
    todo = [node]
    while todo:
        current = todo.pop()
        yield current
        if isinstance(current, ast.If) and "TYPE_CHECKING" in ast.unparse(current.test):
            todo.extend(current.orelse)
        else:
            todo.extend(ast.iter_child_nodes(current))


@cache
def module_imports(name: str) -> frozenset[str]:
    path = module_file(name)
    if path is None or name in NOT_FOLLOWED:
        return frozenset()
    return frozenset(imports_in([ast.parse(path.read_text())], name))


def command_entry(subcommand: str) -> tuple[str, set[str]]:
    """The module of ``omvald <subcommand>`` and what runs first: its module's top-level imports and its function's."""
    from omvald.cli import app

    commands = {c.name or c.callback.__name__: c.callback for c in app.registered_commands}
    assert subcommand in commands, f"dvc.yaml runs `omvald {subcommand}`, which is not a command"
    function = inspect.unwrap(commands[subcommand])
    module = function.__module__
    tree = ast.parse(Path(inspect.getsourcefile(function)).read_text())
    top = [n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    own = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function.__name__]
    return module, imports_in(top + own, module)


def reached_files(subcommand: str) -> set[Path]:
    """Every omvald source file that ``omvald <subcommand>`` may run."""
    module, entry = command_entry(subcommand)
    seen = {module}  # its other commands' imports do not run
    todo = list(entry - seen)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(module_imports(name) - seen)
    return {path for path in map(module_file, seen) if path is not None}


def code_deps(stage: dict) -> list[Path]:
    return [REPO / d for d in stage.get("deps", []) if "${" not in d and d.startswith("src/")]


def covered(path: Path, deps: list[Path]) -> bool:
    return any(path == dep or dep in path.parents for dep in deps)


def subcommand(stage: dict) -> str:
    words = stage["cmd"].split()
    assert words[0] == "omvald", f"a stage runs {words[0]!r}, not an omvald subcommand"
    return words[1]


def source_deps(subcommand: str) -> list[str]:
    """The ``deps`` lines for ``omvald <subcommand>``: a package folder when every module in it runs, else files.

    Shared modules first (the order dvc.yaml uses), then the rest sorted.
    """
    reached = reached_files(subcommand)
    folders = {p.parent for p in reached if p.parent != SRC / "omvald"}
    whole = {f for f in folders if all(p in reached for p in f.glob("*.py"))}
    lines = {str(f.relative_to(REPO)) for f in whole}
    lines |= {str(p.relative_to(REPO)) for p in reached if p.parent not in whole}
    top_level = {str(p.relative_to(REPO)) for p in (SRC / "omvald").glob("*.py")}
    return sorted(lines, key=lambda line: (line not in top_level, line))


def write_source_deps(path: Path = REPO / "dvc.yaml") -> list[str]:
    """Rewrite the ``src/`` deps of every stage in ``path`` from :func:`source_deps`; returns the changed stages.

    Run ``python tests/stage_sources.py`` after moving code; other lines
    (data deps, comments, params, outs) are kept as written.
    """
    lines = path.read_text().splitlines(keepends=True)
    out: list[str] = []
    changed: list[str] = []
    stage = None
    in_deps = False
    for line in lines:
        stripped = line.strip()
        if line.startswith("  ") and not line.startswith("    ") and stripped.endswith(":"):
            stage = stripped[:-1]
        if line.startswith("    ") and not line.startswith("     "):
            if in_deps and stage is not None:  # the deps list ended: write the computed source files
                new = [f"      - {d}\n" for d in source_deps(subcommand(stages()[stage]))]
                out.extend(new)
            in_deps = stripped == "deps:"
        if in_deps and stripped.startswith("- src/"):
            continue
        out.append(line)
    new_text = "".join(out)
    old = yaml.safe_load(path.read_text())["stages"]
    path.write_text(new_text)
    now = yaml.safe_load(new_text)["stages"]
    changed = [name for name in now if now[name].get("deps") != old[name].get("deps")]
    return changed


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(SRC))
    print("dvc.yaml: source deps rewritten for", ", ".join(write_source_deps()) or "no stage")

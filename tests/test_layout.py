"""The package in the course's order: imports run one way, down the levels, with no circles.

Every module of ``sscn`` is read with ``ast`` (nothing is imported); every import of
another ``sscn`` module counts, the ones inside functions included, so a circle cannot
hide in a function body.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sscn"

# the course's order from the ground up (docs/DESIGN.md, "Package map"); a module may
# import from its own level or a lower one, never from a higher one
LEVELS = [
    ("errors", ["sscn.errors"]),
    ("ground", ["sscn.color", "sscn.bins", "sscn.augment", "sscn.scores"]),
    ("io", ["sscn.io"]),
    ("models", ["sscn.models"]),
    ("training", ["sscn.training"]),
    ("evaluation", ["sscn.evaluation"]),
    ("apps", ["sscn.apps"]),
]
TOP = ["sscn"]  # the package's own __init__ (imports nothing)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def level_of(name: str) -> int:
    if name in TOP:
        return -1
    for level, (_, prefixes) in enumerate(LEVELS):
        if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes):
            return level
    raise AssertionError(f"{name} has no level; add it to LEVELS in {Path(__file__).name}")


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The ``sscn`` modules that ``name`` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # "from . import files" names a module; "from .files import write_text" a name in one
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "sscn" or target.startswith("sscn."):
                # importing a.b.c runs a/__init__ and a/b/__init__ too
                parts = target.split(".")
                found.update(".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in known)
    # a module's own packages are running their __init__ already when it imports a sibling
    return {target for target in found if target != name and not name.startswith(target + ".")}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_module_has_a_level():
    for name in modules():
        level_of(name)


def test_no_module_imports_from_a_higher_level():
    upward = [f"{name} ({LEVELS[level_of(name)][0]}) imports {target} ({LEVELS[level_of(target)][0]})"
              for name, targets in graph().items() for target in sorted(targets)
              if level_of(target) > level_of(name)]
    assert not upward, "imports that run up the levels:\n" + "\n".join(upward)


def find_circle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle (``[a, b, ..., a]``) or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_import_circles():
    circle = find_circle(graph())
    assert circle is None, "import circle: " + " -> ".join(circle)


@pytest.mark.parametrize("edges, circle", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
])
def test_the_circle_finder_finds_circles(edges, circle):
    assert (find_circle(edges) is not None) == circle

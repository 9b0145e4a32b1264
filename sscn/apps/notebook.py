"""What the course notebooks share: the smoke switch, which never overrides a papermill parameter.

Every notebook has one ``parameters`` cell (papermill replaces its values) and a smoke mode
(``SSCN_SMOKE=1``, what the test suite runs) that shrinks sizes and steps. The next cell calls
``apply_smoke(globals(), size=64, ...)``: in smoke mode each named parameter takes the smoke
value, *except* a parameter that papermill was given explicitly (``-p size 256``), which
wins, and the notebook prints that it kept it. Outside smoke mode nothing changes.
"""
from __future__ import annotations

import ast
import os

__all__ = ["smoke_mode", "explicit_parameters", "apply_smoke"]


def smoke_mode() -> bool:
    """True when ``SSCN_SMOKE=1``: small sizes and few steps, so a notebook runs in seconds."""
    return os.environ.get("SSCN_SMOKE") == "1"


def explicit_parameters() -> set[str]:
    """The names papermill set in this kernel; empty outside a papermill run.

    Papermill puts the values of ``-p NAME VALUE`` into a cell of its own, after the
    ``parameters`` cell, whose source starts with the line ``# Parameters``. IPython keeps the
    source of every executed cell in ``In``, so the names can be read back from there.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: no kernel, no papermill
        return set()
    shell = get_ipython()
    if shell is None:
        return set()
    names: set[str] = set()
    for source in shell.user_ns.get("In", []):
        if not isinstance(source, str) or not source.lstrip().startswith("# Parameters"):
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign):
                names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


def apply_smoke(namespace: dict, force: bool = False, **smoke_values) -> dict:
    """In smoke mode (or with ``force``), set each ``name=value`` in ``namespace`` (a notebook's ``globals()``).

    A name that papermill set explicitly keeps its value, and a line saying so is printed.
    Returns the values that were applied (empty outside smoke mode).
    """
    if not (force or smoke_mode()):
        return {}
    explicit = explicit_parameters() & set(smoke_values)
    applied = {name: value for name, value in smoke_values.items() if name not in explicit}
    namespace.update(applied)
    shown = ", ".join(f"{name} = {value!r}" for name, value in applied.items())
    print(f"SSCN_SMOKE=1: smoke values {shown}" if shown else "SSCN_SMOKE=1: no smoke value applied")
    if explicit:
        kept = ", ".join(f"{name} = {namespace[name]!r}" for name in sorted(explicit))
        print(f"SSCN_SMOKE=1 IGNORED for the parameters given explicitly to papermill: {kept}")
    return applied

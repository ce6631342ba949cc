"""Which package modules a script uses, so Snakemake can rerun jobs when they change."""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path

PACKAGE = "aedepth"


def package_modules(script: str | Path) -> list[Path]:
    """The aedepth modules that `script` imports, directly or through each other, sorted.

    Snakemake's code trigger sees only the script itself; declaring these files as inputs
    makes an edit of a module rerun exactly the jobs whose scripts use it.
    """
    found: set[Path] = set()
    pending = [Path(script)]
    while pending:
        for module in _imported_modules(pending.pop()):
            if module not in found:
                found.add(module)
                pending.append(module)
    return sorted(found)


@functools.cache
def _imported_modules(path: Path) -> tuple[Path, ...]:
    """The aedepth modules `path` imports itself. Parsed once per file: every rule asks for
    its script's modules when the workflow is read, and most share them (a no-op rerun
    spent most of its parse time here)."""
    package_dir = Path(__file__).parent
    modules = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
            names = [f"{PACKAGE}.{alias.name}" for alias in node.names]  # from aedepth import x
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == PACKAGE and len(parts) >= 2:
                modules.append(package_dir.joinpath(*parts[1:]).with_suffix(".py"))
    return tuple(modules)


def jobs_import_from(folder: str | Path) -> None:
    """Put `folder` first on the PYTHONPATH the workflow's jobs inherit, so that they import
    the workflow's own package: Snakemake appends a job script's folder to its path, behind
    site-packages, where `pip install -e .` of another checkout would otherwise win."""
    first, *rest = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if first != str(folder):
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), first, *rest]))

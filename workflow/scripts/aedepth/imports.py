"""Which package modules a script uses, so Snakemake can rerun jobs when they change."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "aedepth"


def package_modules(script: str | Path) -> list[Path]:
    """The aedepth modules that `script` imports, directly or through each other, sorted.

    Snakemake's code trigger sees only the script itself; declaring these files as inputs
    makes an edit of a module rerun exactly the jobs whose scripts use it.
    """
    package_dir = Path(__file__).parent
    found: set[Path] = set()
    pending = [Path(script)]
    while pending:
        tree = ast.parse(pending.pop().read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
                names = [f"{PACKAGE}.{alias.name}" for alias in node.names]  # from aedepth import x
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] != PACKAGE or len(parts) < 2:
                    continue
                module = package_dir.joinpath(*parts[1:]).with_suffix(".py")
                if module not in found:
                    found.add(module)
                    pending.append(module)
    return sorted(found)

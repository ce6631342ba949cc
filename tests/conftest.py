"""Shared test set-up: the aedepth package on sys.path, and a way to run the workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

# What a user's clone holds that the workflow needs (results/ and .snakemake/ excluded).
WORKFLOW_FILES = ("Snakefile", "config.yaml", "workflow", "envs", "profiles", "requirements.txt")


def copy_workflow(destination: Path) -> Path:
    """Copy the workflow into `destination`, so each test has its own results/ and lock."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(
                source, destination / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        elif source.exists():
            shutil.copy2(source, destination / name)
    return destination


def snakemake(workdir: Path, *args: str, timeout: float = 900, check: bool = True):
    """Run the snakemake of this interpreter's environment in `workdir`; return the process."""
    command = [str(Path(sys.executable).parent / "snakemake"), *args]
    result = subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    """A fresh copy of the workflow in a temporary folder."""
    return copy_workflow(tmp_path / "study")

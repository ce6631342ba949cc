"""Shared test set-up: a way to run the workflow (aedepth is installed: pip install -e .)."""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

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


JOB_HEADER = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
JOB_WILDCARDS = re.compile(r"^\s+wildcards: (.+)$")
STATS_ROW = re.compile(r"^(\w+)\s+(\d+)$")
# A checkpoint job's block, as a run prints it (a dry run prints its whole plan as planned).
CHECKPOINT_JOB = re.compile(r"^(?:local)?checkpoint \w+:$", re.MULTILINE)


def jobs_in(log: str) -> set[str]:
    """The jobs a Snakemake run or dry run printed, as 'rule(wildcards)'; the target rule
    `all` left out. Cross-checked against the "Job stats" table of the same output: the
    same jobs, but where a checkpoint ran (declare_question), after which Snakemake looks
    at the jobs again and may find some of those it planned up to date."""
    jobs: list[list[str]] = []
    for line in log.splitlines():
        if header := JOB_HEADER.match(line):
            jobs.append([header.group(1), ""])
        elif (wildcards := JOB_WILDCARDS.match(line)) and jobs and not jobs[-1][1]:
            jobs[-1][1] = wildcards.group(1)
    stats: collections.Counter[str] = collections.Counter()
    if "Job stats:" in log:
        for line in log.split("Job stats:", 1)[1].splitlines()[3:]:
            if not (row := STATS_ROW.match(line.strip())) or row.group(1) == "total":
                break
            stats[row.group(1)] = int(row.group(2))
    printed = collections.Counter(rule for rule, _ in jobs)
    if CHECKPOINT_JOB.search(log) and "This was a dry-run" not in log:
        assert printed <= stats and printed, log
    else:
        assert printed == stats, log
    names = {f"{rule}({wildcards})" if wildcards else rule for rule, wildcards in jobs}
    assert len(names) == len(jobs), f"a job was printed twice:\n{log}"
    return names - {"all"}


def snakemake(
    workdir: Path, *args: str, timeout: float = 900, check: bool = True, env: dict | None = None
):
    """Run the snakemake of this interpreter's environment in `workdir` (`env`: variables to
    set on top of this process's); return the process."""
    command = [str(Path(sys.executable).parent / "snakemake"), *args]
    result = subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | {"PYTHONUNBUFFERED": "1"} | (env or {}),
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

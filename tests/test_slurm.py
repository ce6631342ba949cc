"""The workflow on a real Slurm cluster, through profiles/slurm.

A module-scoped fixture starts a single-node Slurm cluster on this machine
(tests/slurm/start_slurm.sh: munged, slurmctld, slurmd; installs the Debian
packages if needed) and always stops it again (tests/slurm/stop_slurm.sh). The
test then runs the quick cluster check of docs/slurm.md on the offline sample
in a copy of the workflow, and checks that the training jobs went through
Slurm and that every output is complete.

Needs root and Debian's Slurm packages (or apt to install them). Outside CI the
test is skipped when those are missing; with CI=true it must run, and fails if it
cannot start the cluster.

    pytest -m slurm -s          # -s shows the Slurm job ids as they are found
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SLURM_SCRIPTS = REPO / "tests" / "slurm"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PARTITION = "debug"  # the single partition start_slurm.sh creates
SYS_CONF = Path("/etc/slurm/slurm.conf")
# Rules that must run as Slurm jobs; figures (plot_*) are localrules of the workflow.
CLUSTER_RULES = {"prepare_data", "train", "embed", "evaluate", "baseline"}
RUN_TIMEOUT_S = 420  # the run takes ~2 min; `timeout` ends a hung run well before CI does


def cluster_command(partition: str) -> list[str]:
    """The cluster check of docs/slurm.md: the offline sample, one epoch, one seed."""
    return [
        "--workflow-profile", "profiles/slurm",
        "--config", "source=sample", "epochs=1", "seeds=[0]",
        "--default-resources", f"slurm_partition={partition}",
    ]  # fmt: skip


def _slurm_unavailable() -> str | None:
    """Why this machine cannot host the test cluster, or None if it can."""
    if sys.platform != "linux" or shutil.which("dpkg-query") is None:
        return "needs a Debian-like Linux (dpkg/apt) to run Slurm"
    if os.geteuid() != 0:
        return "needs root: starts munged, slurmctld and slurmd (sudo pytest -m slurm)"
    if SYS_CONF.is_symlink():  # start_slurm.sh's link: a test cluster is up already
        return f"a test cluster is running ({SYS_CONF} -> {os.readlink(SYS_CONF)}): stop_slurm.sh"
    if SYS_CONF.exists():
        return f"{SYS_CONF} exists: this machine has its own Slurm set-up, not touched"
    installed = all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "sbatch", "munged"))
    if installed:
        return None
    if shutil.which("apt-get") is None:
        return "Slurm is not installed and there is no apt-get to install it"
    if subprocess.run(["apt-cache", "show", "slurmctld"], capture_output=True).returncode != 0:
        # empty package lists (fresh image): the start script would run apt-get update
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        if subprocess.run(["apt-cache", "show", "slurmctld"], capture_output=True).returncode:
            return "apt cannot provide the slurmctld package"
    return None


def _run_script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(SLURM_SCRIPTS / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(result.stdout + result.stderr)
    return result


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, waiting to be reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node cluster; yields its state dir. Always stopped afterwards."""
    reason = _slurm_unavailable()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but the Slurm test cannot run: {reason}")
        pytest.skip(reason)

    # Not under pytest's tmp_path: munged (user munge) must traverse the state dir, and
    # its logs stay for a look after the test (start_slurm.sh clears the rest each time).
    state = Path(os.environ.get("SLURM_STATE_DIR") or "/tmp/aedepth-slurm-pytest")
    env = os.environ | {"SLURM_STATE_DIR": str(state)}
    pids: list[int] = []
    started = time.monotonic()
    try:
        start = _run_script("start_slurm.sh", env)
        if start.returncode != 0:
            for log in sorted(state.glob("log/*.log")) + sorted(state.glob("munge/*.log")):
                print(f"--- {log}\n{log.read_text()[-3000:]}")
            pytest.fail(f"start_slurm.sh failed ({start.returncode}); see the output above")
        print(f"Slurm cluster started in {time.monotonic() - started:.1f} s (state: {state})")
        pids = [int(line.split()[1]) for line in (state / "pids").read_text().splitlines()]
        yield state
    finally:
        stop = _run_script("stop_slurm.sh", env)
    # Nothing may be left behind that keeps running or slows down the next snakemake.
    assert stop.returncode == 0, "stop_slurm.sh failed"
    left = [pid for pid in pids if _alive(pid)]
    assert not left, f"Slurm daemons still running after stop_slurm.sh: {left}"
    assert not SYS_CONF.exists() and not SYS_CONF.is_symlink(), f"{SYS_CONF} left behind"
    began = time.monotonic()
    subprocess.run([sys.executable, "-c", "import snakemake_executor_plugin_slurm"], check=True)
    assert time.monotonic() - began < 5, "importing the Slurm plugin stalls after the stop"


def _submitted_jobs(log_text: str) -> dict[str, list[str]]:
    """Rule name -> Slurm job ids, from the plugin's 'has been submitted' log lines."""
    jobs: dict[str, list[str]] = {}
    pattern = r"has been submitted with SLURM jobid (\d+) \(log: .*?/slurm_logs/rule_(\w+?)/"
    for jobid, rule in re.findall(pattern, log_text):
        jobs.setdefault(rule, []).append(jobid)
    return jobs


def _scontrol_job(jobid: str) -> dict[str, str]:
    """Fields of `scontrol show job` (finished jobs stay listed for MinJobAge = 300 s)."""
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", jobid], capture_output=True, text=True, check=True
    ).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def test_workflow_on_slurm(slurm_cluster, tmp_path):
    work = copy_workflow(tmp_path / "aedepth")
    config = yaml.safe_load((work / "config.yaml").read_text())
    models = [(d, 0) for d in config["depths"]]  # seeds=[0] in the cluster command

    snakemake = Path(sys.executable).parent / "snakemake"
    command = ["timeout", "-k", "10", str(RUN_TIMEOUT_S), str(snakemake)]
    command += cluster_command(PARTITION)
    print("$", " ".join(command[4:]))
    began = time.monotonic()
    run = subprocess.run(
        command,
        cwd=work,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    seconds = time.monotonic() - began
    output = run.stdout + run.stderr
    print(f"snakemake on Slurm: exit {run.returncode} after {seconds:.0f} s")
    if run.returncode != 0:
        print(output[-20000:])
        for log in sorted((work / ".snakemake" / "slurm_logs").rglob("*.log")):
            print(f"--- {log.relative_to(work)}\n{log.read_text()[-4000:]}")
    assert run.returncode != 124, f"snakemake did not finish within {RUN_TIMEOUT_S} s"
    assert run.returncode == 0, "snakemake on Slurm failed; see the log above"

    # The jobs went through Slurm: one training job per model, each COMPLETED.
    jobs = _submitted_jobs(output)
    for rule, ids in sorted(jobs.items()):
        print(f"Slurm jobs of rule {rule}: {', '.join(ids)}")
    assert len(jobs.get("train", [])) == len(models), f"train jobs seen: {jobs.get('train')}"
    assert CLUSTER_RULES <= set(jobs), f"not submitted to Slurm: {CLUSTER_RULES - set(jobs)}"
    plots = sorted(rule for rule in jobs if rule.startswith("plot_"))
    assert not plots, f"figure rules were submitted instead of run locally: {plots}"
    assert "declare_question" not in jobs, "the question's record was submitted, not run locally"
    for rule, ids in jobs.items():
        for jobid in ids:
            fields = _scontrol_job(jobid)
            assert fields.get("JobState") == "COMPLETED", (jobid, fields.get("JobState"))
            assert fields.get("Comment", "").startswith(f"rule_{rule}"), (jobid, fields)

    # All outputs complete.
    with open(work / "results" / "mnist-sample" / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(models) + 1, f"summary.csv: {len(rows)} rows for {len(models)} models"
    assert sum("pca" in " ".join(map(str, row.values())).lower() for row in rows) == 1, rows
    for depth, seed in models:
        latents = (
            work / "results" / "mnist-sample" / "latents" / f"depth{depth}_dim2_seed{seed}.parquet"
        )
        assert latents.is_file() and latents.stat().st_size > 0, latents
    dry = subprocess.run(
        [str(snakemake), "-n", *cluster_command(PARTITION)],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]

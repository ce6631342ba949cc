"""How many CPUs this process may really use, how busy they are, and in what order
training jobs start.

`os.cpu_count()` counts the machine's CPUs; a Slurm job, a container or `taskset` gets fewer:
its affinity mask (`os.sched_getaffinity`) and its cgroup's CPU quota (v2 `cpu.max`,
v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`) say how many it may keep busy.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Iterable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _quota(text_quota: str, text_period: str) -> float | None:
    """CPUs a quota allows; None for no limit ("max" or -1)."""
    if text_quota in ("max", "-1"):
        return None
    quota, period = int(text_quota), int(text_period)
    return quota / period if quota > 0 and period > 0 else None


def _own_cgroups(proc_cgroup: Path) -> list[tuple[str, str]]:
    """(controllers, path) of each line of /proc/self/cgroup ("0::/user.slice/...")."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return []
    return [tuple(line.split(":", 2)[1:]) for line in lines if line.count(":") >= 2]


def cgroup_cpu_limit(
    root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")
) -> float | None:
    """CPUs the cgroup quotas allow this process (the tightest of its cgroup and every parent;
    v2, else v1); None where no quota is set or none can be read."""
    limits = []
    for controllers, path in _own_cgroups(proc_cgroup):
        relative = Path(path.lstrip("/"))
        if controllers == "":  # cgroup v2: one unified hierarchy
            folders, files = [root], ("cpu.max",)
        elif "cpu" in controllers.split(","):
            folders = [root / name for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu")]
            files = ("cpu.cfs_quota_us", "cpu.cfs_period_us")
        else:
            continue
        for folder in folders:
            for level in [relative, *relative.parents]:
                try:
                    texts = [(folder / level / name).read_text().split() for name in files]
                except (OSError, ValueError):
                    continue
                values = texts[0] if len(files) == 1 else [texts[0][0], texts[1][0]]
                limit = _quota(*values[:2]) if len(values) >= 2 else None
                if limit is not None:
                    limits.append(limit)
    return min(limits) if limits else None


def usable_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """CPUs this process can keep busy: its affinity mask, capped by its cgroup quota
    (rounded down, at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root, proc_cgroup)
    if limit is not None:
        cpus = min(cpus, max(1, math.floor(limit)))
    return max(1, cpus)


def training_reservation(cores: int, cpus: int, threads: int) -> int:
    """Cores of `--cores cores` each training job reserves (its `threads:`), so that Snakemake
    runs no more training jobs side by side than fit on `cpus` usable CPUs at `threads`
    compute threads each: more compute threads than CPUs train less (four 1-thread jobs on
    2 CPUs ~17 % less than two). Scheduling only: the job computes with `threads` whatever
    it reserved, so no result depends on this."""
    threads = max(1, threads)
    slots = max(1, cpus // threads)  # jobs that fit on the CPUs side by side
    reserve = threads
    while cores // reserve > slots:  # e.g. --cores 4 on 2 CPUs: reserve 2, run 2
        reserve += 1
    return min(reserve, max(1, cores))


def busy_cpu_seconds(cpus: Iterable[int], stat: Path = Path("/proc/stat")) -> float | None:
    """Seconds the CPUs numbered `cpus` have been busy since boot (every state of /proc/stat
    but idle and iowait, steal included: a vCPU its host did not run was not free); None
    where /proc/stat cannot be read (not Linux)."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{number}" for number in cpus}
    ticks = 0
    for line in lines:
        name, *values = line.split()
        if name in wanted:  # user nice system idle iowait irq softirq steal (guest: in user)
            states = [int(value) for value in values[:8]]
            ticks += sum(states) - states[3] - states[4]
    return ticks / os.sysconf("SC_CLK_TCK")


def training_priority(hparams: dict) -> int:
    """Snakemake priority of a training job: its work (multiply-adds per image x epochs, in
    10,000s, as its family counts them: the MLP's are its parameters).

    Longest first: the shortest trainings then end the run, and the other CPUs fill that time
    with the evaluations and figures of the finished models. In whatever order Snakemake picked
    (it picked a depth-3 model last), one CPU idled for 280 of the default study's 1,757 s.
    """
    from aedepth.families import family_of  # here: the other helpers need no grid
    from aedepth.grid import model_shape

    work = family_of(hparams).multiply_adds(
        hparams["widths"], hparams["latent_dim"], model_shape(hparams)
    )
    return max(1, round(work * hparams["epochs"] / 1e4))


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) ..."), for keys and reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

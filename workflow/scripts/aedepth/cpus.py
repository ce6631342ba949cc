"""How many CPUs this process may really use, and how training jobs share them.

`os.cpu_count()` counts the machine's CPUs; a Slurm job, a container or `taskset` gets fewer:
its affinity mask (`os.sched_getaffinity`) and its cgroup's CPU quota (v2 `cpu.max`,
v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`) say how many it may keep busy.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Iterable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
MAX_TRAINING_THREADS = 8  # a batch of 128 rows is too little work per matmul for more


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


def training_plan(cores: int, cpus: int, jobs: int) -> tuple[int, int]:
    """(threads each training job reserves of `--cores`, compute threads it runs), for `jobs`
    training jobs on `cpus` usable CPUs under `--cores cores`.

    Side-by-side single-thread jobs train more than one multi-threaded job (two 1-thread jobs
    ~28 % more than one 2-thread job on 2 CPUs), but more compute threads than CPUs train
    less (four 1-thread jobs on 2 CPUs ~17 % less than two). So at most min(jobs, cores,
    cpus) jobs run side by side: each reserves enough of `--cores` that Snakemake starts no
    more, and computes with its share of the CPUs (up to MAX_TRAINING_THREADS).
    """
    cores, cpus, jobs = max(1, cores), max(1, cpus), max(1, jobs)
    side_by_side = min(jobs, cores, cpus)
    reserve = max(1, cores // side_by_side)
    while cores // reserve > side_by_side:  # e.g. --cores 3 on 2 CPUs: 1 job, not 3
        reserve += 1
    running = max(1, min(side_by_side, cores // reserve))
    compute = max(1, min(MAX_TRAINING_THREADS, min(cores, cpus) // running))
    return min(reserve, cores), compute


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


class OtherLoad:
    """How many CPUs' worth of this process's usable CPUs other processes kept busy since the
    previous call (the first call: since construction); None where it cannot be measured."""

    def __init__(
        self,
        cpus: Iterable[int] | None = None,
        busy: Callable[[Iterable[int]], float | None] = busy_cpu_seconds,
        own: Callable[[], float] = time.process_time,  # every thread of this process
        clock: Callable[[], float] = time.monotonic,
    ):
        if cpus is None:
            affinity = getattr(os, "sched_getaffinity", None)  # Linux only
            cpus = affinity(0) if affinity else range(os.cpu_count() or 1)
        self._cpus = sorted(cpus)
        self._busy, self._own, self._clock = busy, own, clock
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        busy = self._busy(self._cpus)
        return None if busy is None else (busy, self._own(), self._clock())

    def __call__(self) -> float | None:
        last, self._last = self._last, self._sample()
        if last is None or self._last is None or self._last[2] <= last[2]:
            return None
        (busy0, own0, t0), (busy1, own1, t1) = last, self._last
        return max(0.0, (busy1 - busy0 - (own1 - own0)) / (t1 - t0))


def threads_left(base: int, cap: int, cpus: int, others: float | None) -> int:
    """Compute threads for a job that may use `base` to `cap` threads on `cpus` CPUs of which
    other processes keep `others` busy: the CPUs left (one three-quarters free counts), never
    fewer than `base`; `base` where the load is unknown."""
    if others is None:
        return base
    return max(base, min(cap, math.floor(cpus - others + 0.25)))


def training_priority(hparams: dict) -> int:
    """Snakemake priority of a training job: its work (parameters x epochs, in 10,000s).

    Longest first: the shortest trainings then end the run, and the other CPUs fill that time
    with the evaluations and figures of the finished models. In whatever order Snakemake picked
    (it picked a depth-3 model last), one CPU idled for 280 of the default study's 1,757 s.
    """
    return max(1, round(hparams["params"] * hparams["epochs"] / 1e4))


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) ..."), for keys and reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

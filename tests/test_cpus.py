"""Usable CPUs (affinity, cgroup quotas) and how training jobs share them under --cores."""

from __future__ import annotations

import os
import re

import pytest
from conftest import snakemake

from aedepth import cpus
from aedepth.cpus import cgroup_cpu_limit, training_plan, usable_cpus


@pytest.mark.parametrize(
    ("cores", "cpu_count", "jobs", "plan", "side_by_side"),
    [
        (4, 2, 9, (2, 1), 2),  # --cores 4 on a 2-CPU laptop: 2 jobs of 1 thread, not 4
        (2, 2, 9, (1, 1), 2),
        (3, 2, 9, (2, 2), 1),  # 2 jobs would need a reservation of 1.5 cores: 1 job, 2 threads
        (4, 2, 1, (4, 2), 1),  # one job gets all CPUs
        (4, 64, 9, (1, 1), 4),  # --cores 4 on a 64-core node: 4 jobs of 1 thread
        (64, 64, 9, (7, 7), 9),  # the whole node: all 9 jobs, 7 threads each
        (64, 64, 100, (1, 1), 64),
        (16, 16, 3, (5, 5), 3),
        (128, 128, 3, (42, 8), 3),  # at most 8 threads per job: more do not pay off
        (1, 2, 9, (1, 1), 1),
    ],
)
def test_training_plan(cores, cpu_count, jobs, plan, side_by_side):
    reserve, compute = training_plan(cores, cpu_count, jobs)
    assert (reserve, compute) == plan
    running = min(jobs, cores // reserve)  # what Snakemake starts at once under --cores
    assert running == side_by_side
    assert running <= cpu_count and running * compute <= max(cpu_count, 1)


def cgroup(tmp_path, files: dict[str, str], own: str):
    for name, text in files.items():
        path = tmp_path / "fs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "self_cgroup").write_text(own)
    return tmp_path / "fs", tmp_path / "self_cgroup"


def test_cgroup_v2_quota_of_the_process_and_its_parents(tmp_path):
    root, own = cgroup(
        tmp_path,
        {
            "cpu.max": "max 100000\n",
            "job/cpu.max": "300000 100000\n",  # 3 CPUs for the job
            "job/step/cpu.max": "max 100000\n",
        },
        "0::/job/step\n",
    )
    assert cgroup_cpu_limit(root, own) == 3.0
    assert usable_cpus(root, own) == min(3, len(os.sched_getaffinity(0)))


def test_cgroup_v1_quota_and_no_quota(tmp_path):
    root, own = cgroup(
        tmp_path,
        {
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "150000\n",
            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
        },
        "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n",
    )
    assert cgroup_cpu_limit(root, own) == 1.5
    assert usable_cpus(root, own) == 1  # 1.5 CPUs keep 1 thread busy, not 2
    root, own = cgroup(tmp_path / "none", {"cpu.max": "max 100000\n"}, "0::/\n")
    assert cgroup_cpu_limit(root, own) is None
    assert cgroup_cpu_limit(tmp_path / "missing", tmp_path / "missing_cgroup") is None


def test_affinity_caps_the_count(monkeypatch, tmp_path):
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {0})
    assert usable_cpus(tmp_path, tmp_path / "missing") == 1


def test_the_workflow_runs_no_more_training_jobs_than_cpus(workflow_dir):
    """--cores 4 on this machine: every training job reserves cores so that at most
    usable_cpus() of them run side by side, each computing with its share."""
    run = snakemake(workflow_dir, "-n", "--cores", "4", "--config", "source=sample")
    reserve, compute = training_plan(4, usable_cpus(), 9)
    threads = re.findall(r"^rule train:\n(?:.*\n)*?\s+threads: (\d+)$", run.stdout, re.M)
    assert threads == [str(reserve)] * 9, run.stdout
    assert 4 // reserve <= usable_cpus() and compute * (4 // reserve) <= max(usable_cpus(), 4)


def test_training_priority_orders_jobs_by_their_work():
    from aedepth.grid import parameter_count

    def priority(widths, epochs):
        return cpus.training_priority({"params": parameter_count(widths, 2), "epochs": epochs})

    article = [priority([500, 300, 100][:depth], 50) for depth in (1, 2, 3)]
    assert article == sorted(article) and len(set(article)) == 3  # deeper: longer, first
    assert priority([500], 300) > priority([500, 300, 100], 50)  # a converged run: longest
    assert priority([2], 1) == 1  # never 0, the priority of every other job

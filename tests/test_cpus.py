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


def test_busy_seconds_count_every_state_but_idle_and_iowait_of_the_cpus_asked(tmp_path):
    stat = tmp_path / "stat"
    ticks = os.sysconf("SC_CLK_TCK")
    #                  user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text(
        "cpu  900 0 90 9000 90 0 9 9 0 0\n"
        "cpu0 100 5 10 1000 50 1 2 3 0 0\n"
        "cpu1 200 0 20 2000 10 0 0 7 0 0\n"
        "intr 12345\n"
    )
    assert cpus.busy_cpu_seconds([0], stat) == pytest.approx(121 / ticks)
    assert cpus.busy_cpu_seconds([0, 1], stat) == pytest.approx((121 + 227) / ticks)
    assert cpus.busy_cpu_seconds([0], tmp_path / "missing") is None


def test_other_load_is_busy_time_less_our_own_over_the_wall_time():
    readings = iter([(10.0, 1.0, 100.0), (13.0, 2.0, 102.0), (13.5, 2.5, 103.0)])
    state = {}

    def busy(cpus):
        assert cpus == [0, 1]
        state["busy"], state["own"], state["clock"] = next(readings)
        return state["busy"]

    load = cpus.OtherLoad([1, 0], busy, own=lambda: state["own"], clock=lambda: state["clock"])
    assert load() == pytest.approx((3.0 - 1.0) / 2.0)  # others kept one CPU busy
    assert load() == 0.0  # only we ran
    assert cpus.OtherLoad([0], lambda _: None)() is None  # no /proc/stat


@pytest.mark.parametrize(
    "others, threads",
    [(None, 1), (0.0, 2), (0.25, 2), (0.3, 1), (1.9, 1), (3.0, 1)],
)
def test_threads_take_the_cpus_other_processes_leave(others, threads):
    assert cpus.threads_left(base=1, cap=2, cpus=2, others=others) == threads
    assert cpus.threads_left(base=2, cap=8, cpus=16, others=others) >= 2

"""Usable CPUs (affinity, cgroup quotas), busy CPU time, training jobs' threads and order."""

from __future__ import annotations

import os
import re

import pytest
from conftest import snakemake

from aedepth import cpus
from aedepth.cpus import cgroup_cpu_limit, training_reservation, usable_cpus


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


@pytest.mark.parametrize(
    ("cores", "cpu_count", "threads", "reserve", "side_by_side"),
    [
        (4, 2, 1, 2, 2),  # --cores 4 on a 2-CPU laptop: 2 jobs of 1 thread, not 4
        (2, 2, 1, 1, 2),
        (3, 2, 1, 2, 1),  # 2 jobs would need a reservation of 1.5 cores: 1 job
        (1, 2, 1, 1, 1),
        (4, 64, 1, 1, 4),  # --cores 4 on a 64-core node: 4 jobs of 1 thread
        (64, 64, 1, 1, 64),
        (64, 64, 4, 4, 16),  # training_threads 4: 16 jobs of 4 threads
        (4, 2, 2, 3, 1),  # one 2-thread job fills the 2 CPUs
        (1, 2, 2, 1, 1),  # Snakemake caps a reservation at --cores; the job still runs 2
    ],
)
def test_training_jobs_reserve_no_more_side_by_side_than_the_cpus_hold(
    cores, cpu_count, threads, reserve, side_by_side
):
    assert training_reservation(cores, cpu_count, threads) == reserve
    assert cores // reserve == side_by_side
    assert side_by_side * threads <= max(cpu_count, threads)


@pytest.mark.slow  # dry runs of Snakemake
@pytest.mark.parametrize("cores", ["1", "4", "64"])
def test_training_jobs_compute_with_the_configs_threads_whatever_the_cores(workflow_dir, cores):
    """--cores only sets how many cores each training job reserves (how many run side by
    side); it computes with training_threads, its params (tests/test_same_result.py)."""
    for threads in ("1", "2"):
        run = snakemake(
            workflow_dir, "-n", "-p", "--cores", cores,
            "--config", "source=sample", f"training_threads={threads}",
        )  # fmt: skip
        blocks = re.findall(r"^rule train:\n((?:.+\n)+)", run.stdout, re.M)
        # Snakemake prints a job's threads only where they are more than 1
        reserved = [re.search(r"threads: (\d+)", block) for block in blocks]
        reserved = [match[1] if match else "1" for match in reserved]
        expected = training_reservation(int(cores), usable_cpus(), int(threads))
        assert reserved == [str(expected)] * 9, run.stdout


def test_training_priority_orders_jobs_by_their_work():
    def priority(widths, epochs, architecture="mlp"):
        hparams = {"widths": widths, "latent_dim": 2, "epochs": epochs}
        return cpus.training_priority(hparams | {"architecture": architecture})

    article = [priority([500, 300, 100][:depth], 50) for depth in (1, 2, 3)]
    assert article == sorted(article) and len(set(article)) == 3  # deeper: longer, first
    assert article[0] == round(787_786 * 50 / 1e4)  # the MLP's work: its parameters x epochs
    assert priority([500], 300) > priority([500, 300, 100], 50)  # a converged run: longest
    assert priority([2], 1) == 1  # never 0, the priority of every other job
    # the conv family by its multiply-adds, not its parameters (51,651 for [16, 32, 64], far
    # fewer than the MLP's, for about as much work per image)
    conv = [priority([16, 32, 64][:depth], 50, "conv") for depth in (1, 2, 3)]
    assert conv == sorted(conv) and conv[2] > article[0] // 2


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

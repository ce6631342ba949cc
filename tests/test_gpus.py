"""Local GPU assignment for training jobs, with fake GPUs (no GPU was available to test on)."""

from __future__ import annotations

import subprocess
import sys
from contextlib import ExitStack

import pytest

from aedepth.gpus import gpu_slot, one_gpu_per_job, visible_gpus


def test_visible_gpus_from_the_driver_or_cuda_visible_devices(tmp_path):
    driver = tmp_path / "gpus"
    driver.mkdir()
    for bus in ("0000:17:00.0", "0000:65:00.0", "0000:ca:00.0"):
        (driver / bus).mkdir()
    assert visible_gpus({}, driver) == ["0", "1", "2"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}, driver) == ["2", "3"]  # Slurm's
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, driver) == []
    assert visible_gpus({}, tmp_path / "no-driver") == []


@pytest.mark.parametrize("gpus", [1, 2, 4])
def test_n_gpus_are_all_used_then_shared_round_robin(tmp_path, gpus):
    ids = [str(i) for i in range(gpus)]
    with ExitStack() as jobs:
        held = [jobs.enter_context(gpu_slot(ids, tmp_path)) for _ in range(2 * gpus + 1)]
    assert held[:gpus] == ids  # the first N jobs: N different GPUs
    assert sorted(held) == sorted(ids * 2 + ["0"])  # then shared evenly


def test_a_finished_jobs_slot_is_taken_again(tmp_path):
    with gpu_slot(["0", "1"], tmp_path) as first:
        with gpu_slot(["0", "1"], tmp_path) as second:
            assert (first, second) == ("0", "1")
        with gpu_slot(["0", "1"], tmp_path) as third:
            assert third == "1"  # the slot the finished job held
    with gpu_slot(["0", "1"], tmp_path) as again:
        assert again == "0"


def test_slots_are_exclusive_across_processes(tmp_path):
    """Jobs are separate processes: a slot held by another process is not handed out."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time;"
            "from pathlib import Path; from aedepth.gpus import gpu_slot\n"
            "with gpu_slot(['0', '1'], Path(sys.argv[1])) as g:\n"
            "    print(g, flush=True); time.sleep(30)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "0"
        with gpu_slot(["0", "1"], tmp_path) as gpu:
            assert gpu == "1"
    finally:
        holder.kill()
        holder.wait()
    with gpu_slot(["0", "1"], tmp_path) as gpu:  # a killed job's lock is released
        assert gpu == "0"


def test_one_gpu_per_job_sets_and_restores_cuda_visible_devices(tmp_path):
    environ = {"CUDA_VISIBLE_DEVICES": "4,5"}
    with one_gpu_per_job("auto", environ, tmp_path) as gpu:
        assert gpu == "4" and environ["CUDA_VISIBLE_DEVICES"] == "4"
        with one_gpu_per_job("cuda", dict(environ, CUDA_VISIBLE_DEVICES="4,5"), tmp_path) as g2:
            assert g2 == "5"
    assert environ == {"CUDA_VISIBLE_DEVICES": "4,5"}
    with one_gpu_per_job("cpu", environ, tmp_path) as gpu:  # CPU training: untouched
        assert gpu is None and environ == {"CUDA_VISIBLE_DEVICES": "4,5"}
    no_gpu = {"CUDA_VISIBLE_DEVICES": ""}
    with one_gpu_per_job("auto", no_gpu, tmp_path) as gpu:
        assert gpu is None and no_gpu == {"CUDA_VISIBLE_DEVICES": ""}

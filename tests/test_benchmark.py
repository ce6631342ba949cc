"""The training-speed benchmark runs end to end and writes its documented CSV."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from aedepth.data import load_sample, save_dataset

REPO = Path(__file__).resolve().parents[1]


def benchmark_module(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is a folder of scripts, no package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_benchmark_writes_the_table_for_both_loops(tmp_path):
    arrays = load_sample(test_fraction=0.2)  # 4,000 + 1,000 real digits
    save_dataset(tmp_path / "dataset.npz", arrays)
    csv = tmp_path / "results.csv"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks/train_speed.py"),
            "--data",
            str(tmp_path / "dataset.npz"),
            "--depths",
            "1",
            "2",
            "--epochs",
            "2",
            "--threads",
            "1",
            "--csv",
            str(csv),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "| aedepth " in run.stdout and "| tutorial " in run.stdout
    table = pd.read_csv(csv)
    assert list(table.columns) == [
        "loop",
        "depth",
        "params",
        "threads",
        "batch_size",
        "epoch_s",
        "images_per_s",
        "gflop_per_s",
        "pct_of_peak",
        "speedup_vs_tutorial",
        "other_cpu_pct",
    ]
    assert list(table["loop"][:2]) == ["matmul peak (fp32, 2048^3)", "matmul torch default (fp32)"]
    loops = table.iloc[2:]
    assert list(zip(loops["loop"], loops["depth"])) == [
        ("aedepth", 1),
        ("tutorial", 1),
        ("matmuls alone", 1),
        ("aedepth", 2),
        ("tutorial", 2),
        ("matmuls alone", 2),
    ]
    # 784-500-2 and 784-500-300-2, mirrored: weights plus biases
    assert list(loops["params"][::3]) == [787_786, 1_087_586]
    assert (loops["epoch_s"] > 0).all()
    # the CSV keeps 4 significant digits
    assert ((loops["images_per_s"] * loops["epoch_s"] / 4000 - 1).abs() < 2e-3).all()
    assert (loops.loc[loops["loop"] == "tutorial", "speedup_vs_tutorial"] == 1.0).all()
    ours = loops[loops["loop"] == "aedepth"].set_index("depth")
    tutorial = loops[loops["loop"] == "tutorial"].set_index("depth")
    floor = loops[loops["loop"] == "matmuls alone"].set_index("depth")
    assert (ours["speedup_vs_tutorial"] - tutorial["epoch_s"] / ours["epoch_s"]).abs().max() < 0.01
    # the step's matmuls alone are part of our epoch's work: they take less than it, more
    # for the deeper model, and no other CPUs' load is claimed for them
    assert (floor["epoch_s"] < ours["epoch_s"]).all()
    assert floor["epoch_s"][2] > floor["epoch_s"][1]
    assert floor["other_cpu_pct"].isna().all() and ours["other_cpu_pct"].notna().all()


def test_tutorial_epochs_take_torch_default_route_even_inside_ours(monkeypatch):
    """The tutorial's epochs run between ours, i.e. inside aedepth.speed.fp32_matmuls: they
    must still take torch's default matmul route, or the comparison flatters the tutorial."""
    train_speed = benchmark_module("train_speed")
    seen = []
    loop = object.__new__(train_speed.TutorialLoop)
    monkeypatch.setattr(
        train_speed.TutorialLoop,
        "_epoch",
        lambda self: seen.append(torch.backends.mkldnn.matmul.fp32_precision) or 1.0,
    )
    matmul = torch.backends.mkldnn.matmul
    previous, matmul.fp32_precision = matmul.fp32_precision, "bf16"  # as our oneDNN route
    try:
        assert loop.epoch() == 1.0
        assert matmul.fp32_precision == "bf16"
    finally:
        matmul.fp32_precision = previous
    assert seen == ["none"]


@pytest.mark.slow
def test_study_benchmark_schedules_jobs_as_the_workflow_and_reports_the_flop_limit(tmp_path):
    arrays = load_sample(test_fraction=0.2)
    save_dataset(tmp_path / "dataset.npz", arrays)
    csv = tmp_path / "study.csv"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks/study_speed.py"),
            "--data",
            str(tmp_path / "dataset.npz"),
            "--depths",
            "1",
            "3",
            "--seeds",
            "2",
            "--epochs",
            "1",
            "--cores",
            "64",
            "--csv",
            str(csv),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    # as the workflow under --cores 64 with training_threads 1: as many at once as CPUs
    from aedepth.cpus import training_reservation, usable_cpus

    threads, reserve = 1, training_reservation(64, usable_cpus(), 1)
    side_by_side = min(4, 64 // reserve)
    assert (
        f"4 training jobs, {side_by_side} side by side, 1 thread(s) each "
        f"(each reserves {reserve} of --cores)"
    ) in run.stdout
    for key in (
        "% of fp32 peak",
        "projected default-study training s",
        "projected / limit",
        "projected % of fp32 peak (50 epochs)",
    ):
        assert key in run.stdout
    table = pd.read_csv(csv)  # in the order the jobs started: longest first, as the workflow
    assert list(table["run"]) == [
        "depth3_dim2_seed0",
        "depth3_dim2_seed1",
        "depth1_dim2_seed0",
        "depth1_dim2_seed1",
    ]
    assert (table["threads"] == threads).all() and (table["seconds"] > 0).all()
    assert set(table["training_path"]) <= {"written-out backward", "autograd"}


def test_the_jobs_a_benchmark_waits_for_count_as_its_own_cpu_time():
    """study_speed.py trains in child processes: their CPU time is not "other processes'"."""
    OtherLoad = benchmark_module("train_speed").OtherLoad

    busy = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
    before = OtherLoad()._sample()[2]
    subprocess.run([sys.executable, "-c", busy], check=True)
    # os.times() counts children in clock ticks: 0.5 s may read as 0.49999 or one tick short.
    tick = 1 / os.sysconf("SC_CLK_TCK")
    assert OtherLoad()._sample()[2] - before >= 0.5 - 2 * tick

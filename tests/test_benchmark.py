"""The training-speed benchmark runs end to end and writes its documented CSV."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    # the step's matmuls alone are timed, not an epoch: no other CPUs' load is claimed for
    # them (how their time compares with an epoch's is a measurement, not a test: it varies
    # with the machine's load)
    assert (floor["epoch_s"] > 0).all()
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


TSV_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def test_memory_benchmark_reads_every_jobs_rss_and_names_the_largest(tmp_path):
    """data_memory.py: Snakemake's benchmark files (NA where a job ended before the first
    sample), by rule and job, joined with the exact peaks; the largest reading wins."""
    data_memory = benchmark_module("data_memory")
    files = {
        "data/npz-1234/benchmarks/prepare_data.tsv": "0.41\t0:00:00\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA",
        "s/benchmarks/train/depth1_dim2_seed0.tsv": "11.6\t0:00:11\t764.5\t4000\t1\t1\t0\t0\t90\t10",
        "s/benchmarks/evaluate/depth1_dim2_seed0.tsv": "8.7\t0:00:08\t780.0\t4000\t1\t1\t0\t0\t90\t8",
        "s/benchmarks/explorer.tsv": "15.3\t0:00:15\t907.0\t4000\t1\t1\t0\t0\t90\t14",
    }
    for name, line in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(TSV_HEADER + line + "\n")
    rows = data_memory.read_benchmarks(tmp_path)
    assert {(r["rule"], r["job"]): (r["seconds"], r["max_rss_mb"]) for r in rows} == {
        ("prepare_data", ""): (0.41, None),
        ("train", "depth1_dim2_seed0"): (11.6, 764.5),
        ("evaluate", "depth1_dim2_seed0"): (8.7, 780.0),
        ("explorer", ""): (15.3, 907.0),
    }
    exact = {
        ("prepare_data", ""): 189.0,
        ("evaluate", "depth1_dim2_seed0"): 918.0,  # above its sampled 780
        ("summarize", ""): 192.0,  # no benchmark file
    }
    table = data_memory.job_table(rows, exact)
    assert [(r["rule"], r["max_rss_mb"], r["exact_peak_mb"]) for r in table] == [
        ("evaluate", 780.0, 918.0),
        ("explorer", 907.0, None),
        ("prepare_data", None, 189.0),
        ("summarize", None, 192.0),
        ("train", 764.5, None),
    ]
    peak, where = data_memory.largest(table)
    assert (peak, where["rule"]) == (918.0, "evaluate")
    assert data_memory.per_rule(table)["evaluate"] == (1, 780.0, 918.0)


def test_memory_benchmark_probe_records_a_jobs_own_peak(tmp_path):
    """The sitecustomize the benchmark puts on the jobs' path writes each script job's rule,
    wildcards and own peak RSS at exit, also where the process ends with os._exit."""
    data_memory = benchmark_module("data_memory")
    (tmp_path / "sitecustomize.py").write_text(data_memory.PROBE)
    log = tmp_path / "rss.jsonl"
    job = (
        "import os, types\n"
        "snakemake = types.SimpleNamespace(rule='train', wildcards=['depth1_dim2_seed0'])\n"
        "held = b'x' * (64 * 2**20)\n"
    )
    env = os.environ | {"PYTHONPATH": str(tmp_path), "AEDEPTH_RSS_LOG": str(log)}
    subprocess.run([sys.executable, "-c", job], env=env, check=True)
    subprocess.run([sys.executable, "-c", "import os; os._exit(0)"], env=env, check=True)
    jobs, others = data_memory.read_probe(log)
    assert list(jobs) == [("train", "depth1_dim2_seed0")]
    # its own peak: not the ~600 MiB (torch imported) of this test's process that started it
    assert 64 < jobs["train", "depth1_dim2_seed0"] < 200
    assert len(others) == 1 and others[0][0] < jobs["train", "depth1_dim2_seed0"]


def test_memory_benchmark_data_is_a_valid_npz_source(tmp_path):
    """The streamed .npz reads as the workflow reads a source: uint8 RGB images, balanced
    labels, the class names; each image the same whatever range is generated."""
    from aedepth.sources import load_npz, npz_classes

    data_memory = benchmark_module("data_memory")
    path = tmp_path / "small.npz"
    data_memory.write_npz(path, train=2_500, test=30, size=16, seed=3)
    arrays = load_npz(path, [])
    assert arrays["x_train"].shape == (2_500, 16, 16, 3) and arrays["x_train"].dtype == "uint8"
    assert arrays["x_test"].shape == (30, 16, 16, 3)
    assert (np.bincount(arrays["y_train"]) == 250).all()
    assert npz_classes(path, []) == data_memory.CLASSES
    x, y = data_memory.images(1_990, 2_010, 16, 3, 0)  # across two chunks
    assert (x == arrays["x_train"][1_990:2_010]).all() and (
        y == arrays["y_train"][1_990:2_010]
    ).all()
    assert len(np.unique(arrays["x_train"][:10].reshape(10, -1), axis=0)) == 10


@pytest.mark.slow
def test_the_folder_benchmark_times_planning_and_preparing_a_folder(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks/folder_scale.py"),
            "--images",
            "100",
            "--size",
            "8",
            "--workdir",
            str(tmp_path),
            "--csv",
            str(tmp_path / "folder.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(tmp_path / "folder.csv")
    assert list(table.columns) == ["step", "seconds", "max_rss_mib", "images", "cpu"]
    assert len(table) == 5 and (table["seconds"] > 0).all() and (table["images"] == 100).all()
    assert table.loc[table["step"].str.startswith("prepare_data"), "max_rss_mib"].notna().all()
    # the folder the workflow prepared: 100 images of 10 classes, a fifth of each for testing
    [dataset] = (tmp_path / "study/results/data").glob("big-imagefolder-*/dataset.npz")
    with np.load(dataset) as arrays:
        assert arrays["x_train"].shape == (80, 8, 8, 3) and arrays["x_test"].shape == (20, 8, 8, 3)

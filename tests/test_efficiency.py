"""The study's training FLOPs against the machine's fp32 peak, from the workflow's files."""

from __future__ import annotations

import json
import os

import pytest

from aedepth.efficiency import benchmarked_peak, study_line, training_flop
from aedepth.grid import parameter_count
from aedepth.model import Autoencoder

TSV_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


@pytest.mark.parametrize("widths", [[500], [500, 300], [500, 300, 100], [64]])
def test_parameter_count_is_the_models(widths):
    model = Autoencoder(widths, 2)
    assert parameter_count(widths, 2) == sum(p.numel() for p in model.parameters())


def job(results, rule, name, end, seconds):
    tsv = results / "benchmarks" / rule / f"{name}.tsv"
    tsv.parent.mkdir(parents=True, exist_ok=True)
    tsv.write_text(TSV_HEADER + f"{seconds}\t0:00:00\t900\t0\t0\t0\t0\t0\t0\t0\n")
    os.utime(tsv, (end, end))


def model(results, name, widths, epochs):
    folder = results / "models" / name
    folder.mkdir(parents=True)
    hparams = {"widths": widths, "latent_dim": 2, "validation_fraction": 0.0}
    (folder / "hparams.json").write_text(json.dumps(hparams))
    (folder / "history.csv").write_text("epoch\n" + "".join(f"{e}\n" for e in range(epochs)))


def test_the_study_line_puts_the_run_next_to_the_flop_limit(tmp_path):
    start = 1_000_000.0
    job(tmp_path, "prepare_data", "x", start + 10, 10)  # the study starts at `start`
    for i, widths in enumerate([[500], [500, 300]]):
        model(tmp_path, f"depth{i + 1}_dim2_seed0", widths, 50)
        job(tmp_path, "train", f"depth{i + 1}_dim2_seed0", start + 110 + 10 * i, 100)
    job(tmp_path, "evaluate", "y", start + 140, 10)
    flop = sum(
        training_flop({"widths": w, "latent_dim": 2}, 60_000, 50) for w in ([500], [500, 300])
    )
    line = study_line(tmp_path, 60_000, peak_gflops=100.0, since=start)
    limit = flop / 100e9
    speed = f"{flop / 1e12:.3g} TFLOP of training at {flop / 110 / 1e9:.0f} GFLOP/s"
    assert line == (
        f"aedepth: 2 model(s), {speed}; the jobs took 140 s = {140 / limit:.2f} x the "
        f"training-FLOP limit ({limit:.3g} s); training ran at {flop / 110 / 1e9:.0f} % of "
        "the fp32 peak benchmarks/train_speed.py measured (100 GFLOP/s)"
    )
    assert study_line(tmp_path, 60_000, 100.0, since=start + 1000) is None  # nothing trained
    assert study_line(tmp_path, 60_000, None, since=start) == (  # no benchmark here yet
        f"aedepth: 2 model(s), {speed}; the jobs took 140 s (python "
        "benchmarks/train_speed.py measures the fp32 peak to compare)"
    )


def test_the_peak_is_the_one_the_benchmark_last_wrote(tmp_path):
    table = tmp_path / "results.csv"
    assert benchmarked_peak(table) is None  # never benchmarked here
    table.write_text(
        "loop,depth,gflop_per_s\n"
        '"matmul peak (fp32, 2048^3)",,389\n'
        '"matmul torch default (fp32)",,380\n'
        "aedepth,3,183\n"
    )
    assert benchmarked_peak(table) == 389.0
    table.write_text("loop,depth,gflop_per_s\naedepth,3,183\n")
    assert benchmarked_peak(table) is None

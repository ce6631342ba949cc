"""The study's training FLOPs against the machine's fp32 peak, from the workflow's files."""

from __future__ import annotations

import json
import os

import pytest

from aedepth.efficiency import best_peak, study_line, training_flop
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
    flop = training_flop([500], 2, 60_000, 50) + training_flop([500, 300], 2, 60_000, 50)
    line = study_line(tmp_path, 60_000, peak_gflops=100.0, since=start)
    limit = flop / 100e9
    assert line == (
        f"aedepth: 2 model(s), {flop / 1e12:.3g} TFLOP of training at "
        f"{flop / 110 / 1e9:.0f} GFLOP/s ({flop / 110 / 1e9:.0f} % of this machine's fp32 "
        f"peak, 100 GFLOP/s); the jobs took 140 s = {140 / limit:.2f} x the training-FLOP "
        f"limit ({limit:.3g} s)"
    )
    measured = []
    peak = lambda: measured.append(1) or 100.0  # noqa: E731
    assert study_line(tmp_path, 60_000, peak, since=start + 1000) is None  # nothing trained
    assert not measured  # so the peak was not measured
    assert study_line(tmp_path, 60_000, peak, since=start) == line and measured == [1]


def test_the_peak_is_the_highest_measured_on_this_machine(tmp_path):
    cache = tmp_path / "peak.json"
    readings = iter([{"default": 150.0, "onednn-fp32": 170.0}, {"default": 123.0}, {"x": 180.0}])

    def measure(threads):
        assert threads == 2
        return next(readings)

    assert best_peak(cache, 2, measure) == 170.0  # the faster route
    assert best_peak(cache, 2, measure) == 170.0  # a loaded machine's 123 does not lower it
    assert best_peak(cache, 2, measure) == 180.0  # a higher reading replaces it
    (stored,) = json.loads(cache.read_text()).values()
    assert stored == 180.0

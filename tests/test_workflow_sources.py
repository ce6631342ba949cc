"""The whole study end to end on the new sources, through the real `snakemake` command line:
scikit-learn's 8x8 digits written as an image folder, and 32x32 colour shapes as an .npz."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import torch
from source_data import DIGIT_CLASSES, SHAPE_CLASSES, write_digits_folder, write_shapes_npz
from conftest import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

FEW = ("epochs=3", "seeds=[0,1]")


def run_study(workdir, source, dataset):
    config = ("--config", f"source={source}", f"dataset={dataset}", *FEW)
    snakemake(workdir, "--cores", "2", *config)
    report = f"results/{dataset}/report.html"
    snakemake(workdir, "--cores", "2", *config, "--report", report)
    return workdir / "results" / dataset


def check_study(study, models: int, shape: tuple[int, int, int], classes: list[str]):
    """The summary, findings, figures, explorer and report of a finished study."""
    summary = pd.read_csv(study / "summary.csv")
    assert len(summary[summary["method"] == "autoencoder"]) == models
    assert summary["knn_accuracy"].between(0, 1).all()
    findings = (study / "findings.md").read_text()
    assert "1 → 2 hidden layers" in findings and "2 → 3 hidden layers" in findings
    hparams = json.loads((study / "models/depth3_dim2_seed1/hparams.json").read_text())
    assert hparams["image_shape"] == list(shape)
    state = torch.load(study / "models/depth3_dim2_seed1/model.pt", weights_only=True)
    assert state["encoder.0.weight"].shape == (500, int(np.prod(shape)))
    assert hparams["params"] == sum(t.numel() for t in state.values())
    explorer = (study / "explorer.html").read_text()
    assert all(name in explorer for name in classes)
    assert (study / "report.html").stat().st_size > 100_000
    for name in ("reconstructions", "depth1_dim2_reconstructions", "depth1_dim2_latent"):
        figure = matplotlib.image.imread(study / f"figures/{name}.png")
        assert figure.shape[0] > 100 and figure.shape[1] > 100
    return matplotlib.image.imread(study / "figures/reconstructions.png")


def test_digits_as_an_image_folder_end_to_end(tmp_path):
    folder = write_digits_folder(tmp_path / "digits")
    workdir = copy_workflow(tmp_path / "study")
    study = run_study(workdir, folder, "digits")
    [data] = (workdir / "results/data").glob("digits-imagefolder-*")
    with np.load(data / "dataset.npz", allow_pickle=False) as arrays:
        assert arrays["x_train"].shape == (1437, 8, 8) and arrays["x_test"].shape == (360, 8, 8)
    check_study(study, 6, (8, 8, 1), DIGIT_CLASSES)


def test_colour_shapes_as_an_npz_end_to_end_in_colour(tmp_path):
    source = write_shapes_npz(tmp_path / "shapes.npz")
    workdir = copy_workflow(tmp_path / "study")
    study = run_study(workdir, source, "shapes")
    figure = check_study(study, 6, (32, 32, 3), SHAPE_CLASSES)
    # in colour: the figure's channels differ (a grey figure has R = G = B everywhere)
    rgb = figure[..., :3]
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    assert (spread > 0.5).mean() > 0.01

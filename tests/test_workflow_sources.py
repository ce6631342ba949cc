"""The whole study end to end on the new sources, through the real `snakemake` command line:
scikit-learn's 8x8 digits written as an image folder (both model families, its explorer read
in Chromium), and 32x32 colour shapes as an .npz."""

from __future__ import annotations

import json
import re

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from source_data import (
    DIGIT_CLASSES,
    SHAPE_CLASSES,
    digits,
    write_digits_folder,
    write_shapes_npz,
)
from conftest import copy_workflow, snakemake
from test_explorer import _LOADED, _POINT, _SHOWN, CHROMIUM, _loneliest, _offsite

pytestmark = pytest.mark.workflow

FEW = ("epochs=3", "seeds=[0,1]")


def run_study(workdir, source, dataset, *more):
    config = ("--config", f"source={source}", f"dataset={dataset}", *FEW, *more)
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


def test_digits_as_an_image_folder_end_to_end_in_both_families(tmp_path):
    folder = write_digits_folder(tmp_path / "digits")
    workdir = copy_workflow(tmp_path / "study")
    study = run_study(workdir, folder, "digits", "architectures=[mlp,conv]")
    [data] = (workdir / "results/data").glob("digits-imagefolder-*")
    with np.load(data / "dataset.npz", allow_pickle=False) as arrays:
        assert arrays["x_train"].shape == (1437, 8, 8) and arrays["x_test"].shape == (360, 8, 8)
    check_study(study, 12, (8, 8, 1), DIGIT_CLASSES)
    # the conv family: its own runs, counted and built as its hparams say, answered apart
    hparams = json.loads((study / "models/depth3_dim2_seed1_archconv/hparams.json").read_text())
    assert hparams["architecture"] == "conv" and hparams["widths"] == [16, 32, 64]
    assert hparams["training_path"] == "autograd"
    state = torch.load(study / "models/depth3_dim2_seed1_archconv/model.pt", weights_only=True)
    assert state["encoder.0.weight"].shape == (16, 1, 3, 3)
    assert hparams["params"] == sum(t.numel() for t in state.values())
    findings = (study / "findings.md").read_text()
    for family in ("conv", "mlp"):
        assert f"1 → 2 hidden layers (latent size 2, architecture {family})" in findings
    for name in ("depth1_dim2_archconv_reconstructions", "depth3_dim2_archconv_latent"):
        assert (study / f"figures/{name}.png").stat().st_size > 10_000
    if CHROMIUM:
        check_explorer_in_chromium(study / "explorer.html", thumbnail_width=8)


def test_digits_as_one_folder_of_classes_are_split_and_prepared(tmp_path):
    """One folder per class, no train/ or test/: the prepare job keeps a fifth of each class
    for testing, as aedepth.sources lists them."""
    from aedepth.sources import folder_files

    images, labels = digits()
    tree = tmp_path / "digits"
    for index, (image, label) in enumerate(zip(images, labels)):
        (tree / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tree / str(label) / f"{index:05d}.png")
    workdir = copy_workflow(tmp_path / "study")
    snakemake(
        workdir,
        "--cores",
        "2",
        "--until",
        "prepare_data",
        "--config",
        f"source={tree}",
        "dataset=digits",
    )
    [data] = (workdir / "results/data").glob("digits-imagefolder-*")
    files = folder_files(tree)
    with np.load(data / "dataset.npz", allow_pickle=False) as arrays:
        for split in ("train", "test"):
            assert arrays[f"y_{split}"].tolist() == [label for _, label in files[split]]
        tested = sum(round(0.2 * count) for count in np.bincount(labels))  # a fifth of each class
        assert arrays["x_train"].shape == (1797 - tested, 8, 8)
        assert arrays["x_test"].shape == (tested, 8, 8)
        first_test = int(files["test"][0][0].stem)
        assert np.array_equal(arrays["x_test"][0], images[first_test])


def check_explorer_in_chromium(page_file, thumbnail_width):
    """Open the explorer offline: hovering a point shows its image and reconstruction at the
    data's size, and the architecture menu switches to the conv family's model."""
    sync_api = pytest.importorskip("playwright.sync_api")
    requests = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("request", lambda request: requests.append(request.url))
        page.route(re.compile(r"^(?!file:|data:)"), lambda route: route.abort())
        page.goto(page_file.as_uri())
        page.wait_for_function(_LOADED, timeout=30_000)
        shown = page.evaluate(_SHOWN)
        assert shown["title"] == "autoencoder, depth 1, latent size 2, seed 0"
        points = page.evaluate(
            "() => { const d = Bokeh.documents[0].get_model_by_name('shown').data;"
            " return [Array.from(d.x), Array.from(d.y)]; }"
        )
        point = page.evaluate(_POINT, _loneliest(np.array(points).T))
        page.mouse.move(point["x"], point["y"])
        tooltip = page.get_by_text("test image").locator("xpath=../..")
        tooltip.wait_for(state="visible", timeout=10_000)
        widths = tooltip.locator("img").evaluate_all(
            "(images) => images.map((i) => i.naturalWidth)"
        )
        assert widths == [thumbnail_width, thumbnail_width]  # decoded at the data's size
        menu = page.locator(".bk-input-group", has_text="architecture").locator("select")
        menu.select_option("conv")
        page.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('latent-space').title.text"
            ".includes('architecture conv')"
        )
        assert not np.allclose(page.evaluate(_SHOWN)["x"], shown["x"])
        browser.close()
    assert _offsite(requests) == []


def test_colour_shapes_as_an_npz_end_to_end_in_colour(tmp_path):
    source = write_shapes_npz(tmp_path / "shapes.npz")
    workdir = copy_workflow(tmp_path / "study")
    study = run_study(workdir, source, "shapes")
    figure = check_study(study, 6, (32, 32, 3), SHAPE_CLASSES)
    # in colour: the figure's channels differ (a grey figure has R = G = B everywhere)
    rgb = figure[..., :3]
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    assert (spread > 0.5).mean() > 0.01

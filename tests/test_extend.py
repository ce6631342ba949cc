"""Extending the study without touching the rules: a new axis and a new baseline.

CONTRIBUTING.md says an axis is one entry in config.yaml plus its values
key in the schema, and a baseline one entry in the registry (aedepth/baselines.py). This test
does exactly that in a copy of the project and checks that the new runs reach every table and
figure, with no rule, script, statistics or plotting code edited.
"""

from __future__ import annotations

import filecmp
import json

import matplotlib.image
import pandas as pd
import pytest
import yaml
from conftest import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.workflow

LEARNING_RATES = [0.001, 0.003]

# A baseline that just keeps the first pixels of the image centre: one registry entry, which
# cannot reconstruct (None), unseeded.
TOY_BASELINE = '''

def centre_pixels(x_train, x_test, n_components, seed):
    """The first n_components pixels of the image's middle row."""
    columns = slice(14 * 28 + 10, 14 * 28 + 10 + n_components)
    return x_train[:, columns], x_test[:, columns], None


BASELINES["centre_pixels"] = Baseline(centre_pixels, seeded=False, description="centre pixels")
'''


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("extend") / "study")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["axes"].append(
        {"name": "learning_rate", "values": "learning_rates", "tag": "lr", "label": "lr"}
    )
    config["learning_rates"] = LEARNING_RATES
    config["baselines"] = ["pca", "centre_pixels"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    schema_path = workdir / "workflow/schemas/config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    schema["properties"]["learning_rates"] = {
        "type": "array",
        "items": {"type": "number", "exclusiveMinimum": 0},
        "description": "a list of learning rates > 0",
    }
    schema_path.write_text(yaml.safe_dump(schema, sort_keys=False))
    with (workdir / "workflow/scripts/aedepth/baselines.py").open("a") as handle:
        handle.write(TOY_BASELINE)
    snakemake(
        workdir, "--cores", "2", "--config",
        "source=sample", "epochs=1", "depths=[1,2]", "seeds=[0,1]",
    )  # fmt: skip
    return workdir


def test_no_rule_script_or_analysis_code_was_edited(extended):
    for folder in ("workflow/rules", "workflow/scripts"):
        comparison = filecmp.dircmp(REPO / folder, extended / folder, ignore=["__pycache__"])
        assert not comparison.diff_files and not comparison.left_only, folder
    changed = filecmp.dircmp(
        REPO / "workflow/scripts/aedepth", extended / "workflow/scripts/aedepth",
        ignore=["__pycache__"],
    ).diff_files  # fmt: skip
    assert changed == ["baselines.py"]


def test_the_new_axis_and_baseline_have_their_rows_in_the_summary(extended):
    summary = pd.read_csv(extended / "results/mnist-sample/summary.csv")
    assert "learning_rate" in summary.columns
    models = summary[summary["method"] == "autoencoder"]
    assert len(models) == 2 * 2 * len(LEARNING_RATES)
    assert sorted(models["learning_rate"].unique()) == LEARNING_RATES
    assert "depth2_dim2_seed1_lr0.003" in set(models["model"])
    toy = summary[summary["method"] == "centre_pixels"].iloc[0]
    assert toy["model"] == "centre_pixels_dim2"
    assert 0 < toy["knn_accuracy"] < 1 and pd.isna(toy["reconstruction_bce"])
    # the axis value reached training: it overrides the learning_rate setting
    hparams = json.loads(
        (
            extended / "results/mnist-sample/models/depth1_dim2_seed0_lr0.003/hparams.json"
        ).read_text()
    )
    assert hparams["learning_rate"] == 0.003


def test_intervals_and_comparisons_are_per_learning_rate(extended):
    intervals = pd.read_csv(extended / "results/mnist-sample/depth_intervals.csv")
    assert "learning_rate" in intervals.columns
    models = intervals[intervals["method"] == "autoencoder"]
    assert models.groupby(["learning_rate", "depth"]).size().to_dict() == {
        (lr, d): 10
        for lr in LEARNING_RATES
        for d in (1, 2)  # 9 metrics and the loss gap
    }
    assert (intervals["method"] == "centre_pixels").sum() == 7  # no reconstruction metrics
    comparisons = pd.read_csv(extended / "results/mnist-sample/depth_comparisons.csv")
    assert sorted(comparisons["learning_rate"].unique()) == LEARNING_RATES
    assert (comparisons["n_pairs"] == 2).all()
    findings = (extended / "results/mnist-sample/findings.md").read_text()
    assert "1 → 2 hidden layers (latent size 2, lr 0.003)" in findings
    assert "| baseline centre_pixels, latent size 2 |" in findings


def test_figures_exist_per_setting_and_show_the_new_values(extended):
    figures = extended / "results/mnist-sample/figures"
    for depth in (1, 2):
        for lr in LEARNING_RATES:
            for kind in ("latent", "reconstructions"):
                image = matplotlib.image.imread(figures / f"depth{depth}_dim2_lr{lr}_{kind}.png")
                assert image[..., :3].std() > 0.05
    for name in ("metrics_vs_depth.png", "training_curves.png", "reconstructions.png"):
        assert (figures / name).stat().st_size > 20_000

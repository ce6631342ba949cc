"""The study's grid: run records built from the config alone."""

import copy

import pytest
import yaml

from aedepth.baselines import BASELINES
from aedepth.config import ConfigError
from aedepth.grid import build_grid, training_hparams
from conftest import REPO

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def config_with(**changes):
    return copy.deepcopy(CONFIG) | changes


def test_the_default_grid_is_the_articles_study_with_a_pca_reference():
    grid = build_grid(CONFIG, BASELINES)
    assert [run.id for run in grid.models] == [
        f"depth{d}_dim2_seed{s}" for d in (1, 2, 3) for s in (0, 1, 2)
    ]
    assert [run.id for run in grid.baseline_runs] == ["pca_dim2"]
    assert list(grid.groups()) == ["depth1_dim2", "depth2_dim2", "depth3_dim2"]
    assert grid.conditions == ["latent_dim"]
    run = grid.run("depth2_dim2_seed1")
    assert (run["depth"], run["latent_dim"], run["seed"]) == (2, 2, 1)
    assert run.path("weights") == "results/models/depth2_dim2_seed1/model.pt"
    assert run.record() == {
        "model": "depth2_dim2_seed1",
        "method": "autoencoder",
        "depth": 2,
        "latent_dim": 2,
        "seed": 1,
    }


def test_a_seeded_baseline_gets_a_run_per_seed_and_an_unseeded_one_per_size():
    grid = build_grid(
        config_with(baselines=["pca", "random_projection"], latent_dims=[2, 8], seeds=[0, 1]),
        BASELINES,
    )
    assert [run.id for run in grid.baseline_runs] == [
        "pca_dim2",
        "pca_dim8",
        "random_projection_dim2_seed0",
        "random_projection_dim2_seed1",
        "random_projection_dim8_seed0",
        "random_projection_dim8_seed1",
    ]
    assert grid.run("pca_dim8").record() == {"model": "pca_dim8", "method": "pca", "latent_dim": 8}
    assert list(grid.groups("random_projection")) == [
        "random_projection_dim2",
        "random_projection_dim8",
    ]


def test_training_hyperparameters_hold_the_runs_values_and_only_its_own_widths():
    grid = build_grid(CONFIG, BASELINES)
    hparams = training_hparams(grid.run("depth2_dim2_seed1"), CONFIG)
    assert hparams == {
        "epochs": 50,
        "batch_size": 128,
        "learning_rate": 0.001,
        "early_stopping_patience": 0,
        "validation_fraction": 0.0,
        "depth": 2,
        "latent_dim": 2,
        "seed": 1,
        "widths": [500, 300],
    }


def test_a_new_axis_is_one_config_entry_and_overrides_the_setting_of_its_name():
    config = config_with(
        axes=[*CONFIG["axes"], {"name": "learning_rate", "values": "learning_rates", "tag": "lr"}],
        learning_rates=[0.001, 0.01],
        depths=[1],
        seeds=[0],
    )
    grid = build_grid(config, BASELINES)
    assert [run.id for run in grid.models] == [
        "depth1_dim2_seed0_lr0.001",
        "depth1_dim2_seed0_lr0.01",
    ]
    assert list(grid.groups()) == ["depth1_dim2_lr0.001", "depth1_dim2_lr0.01"]
    assert grid.conditions == ["latent_dim", "learning_rate"]
    assert training_hparams(grid.models[1], config)["learning_rate"] == 0.01
    assert [run.id for run in grid.baseline_runs] == ["pca_dim2"]  # not a baseline axis


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"axes": [a for a in CONFIG["axes"] if a["name"] != "seed"]},
            "config key 'axes' lacks the axis 'seed': keep the entries depth, latent_dim, seed",
        ),
        (
            {"axes": [*CONFIG["axes"], {"name": "seed", "values": "seeds2", "tag": "s"}]},
            "config key 'axes' repeats the name 'seed': give each axis its own",
        ),
        (
            {"axes": [*CONFIG["axes"], {"name": "dropout", "values": "dropouts", "tag": "p"}]},
            "config key 'dropouts' (the values of axis 'dropout') must be a non-empty list",
        ),
        ({"depths": [1, 1]}, "config key 'depths' repeats a value: list each once"),
        (
            {"baselines": ["pca", "umap"]},
            "config key 'baselines' names 'umap', not a known baseline: use some of pca, "
            "random_projection",
        ),
    ],
)
def test_a_bad_grid_is_one_line_naming_the_key(changes, message):
    with pytest.raises(ConfigError) as error:
        build_grid(config_with(**changes), BASELINES)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_a_value_that_cannot_be_a_file_name_is_refused():
    config = config_with(
        axes=[*CONFIG["axes"], {"name": "act", "values": "acts", "tag": "act"}], acts=["a/b"]
    )
    with pytest.raises(ConfigError, match="'acts' holds 'a/b', which cannot be part of a file"):
        build_grid(config, BASELINES)

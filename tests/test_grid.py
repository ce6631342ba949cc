"""The study's grid: run records built from the config alone."""

import copy

import pytest
import yaml

from aedepth.baselines import BASELINES
from aedepth.config import ConfigError
from aedepth.grid import (
    build_grid,
    copied_hparams,
    matched_widths,
    parameter_count,
    training_hparams,
)
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
    assert grid.conditions == ["latent_dim", "arm", "training"]
    run = grid.run("depth2_dim2_seed1")
    assert (run["depth"], run["latent_dim"], run["seed"]) == (2, 2, 1)
    assert run.path("weights") == "results/mnist/models/depth2_dim2_seed1/model.pt"
    assert run.record() == {
        "model": "depth2_dim2_seed1",
        "method": "autoencoder",
        "depth": 2,
        "latent_dim": 2,
        "seed": 1,
        "arm": "article",
        "training": "fixed",
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
        "arm": "article",
        "training": "fixed",
        "widths": [500, 300],
        "params": 1_087_586,
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
    assert grid.conditions == ["latent_dim", "arm", "training", "learning_rate"]
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
            {"baselines": ["pca", "isomap"]},
            "config key 'baselines' names 'isomap', not a known baseline: use some of pca, "
            "random_projection, umap, tsne",
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


def test_parameter_count_is_that_of_the_models_linear_layers():
    from aedepth.model import Autoencoder

    for widths, latent in (([500], 2), ([500, 300, 100], 2), ([7, 5], 3)):
        model = Autoencoder(widths, latent)
        assert parameter_count(widths, latent) == sum(p.numel() for p in model.parameters())
    # the article's three models: 0.79 M, 1.09 M, 1.15 M
    assert [parameter_count([500, 300, 100][:d], 2) for d in (1, 2, 3)] == [
        787_786,
        1_087_586,
        1_146_986,
    ]


@pytest.mark.parametrize("budget", [1_146_986, 400_000, 3_000_000])
@pytest.mark.parametrize(
    "taper", [[500], [500, 300], [500, 300, 100], [500, 300, 100, 100, 100, 100]]
)
def test_matched_widths_hit_the_budget_within_one_percent_and_keep_the_taper(taper, budget):
    widths = matched_widths(taper, budget, lambda scaled: parameter_count(scaled, 2))
    assert abs(parameter_count(widths, 2) - budget) <= 0.01 * budget
    assert len(widths) == len(taper)
    ratios = [w / widths[0] for w in widths]
    assert ratios == pytest.approx([w / taper[0] for w in taper], abs=0.02)


def test_the_matched_arm_gives_every_depth_the_deepest_article_models_count():
    config = config_with(arms=["article", "matched_params"], seeds=[0])
    grid = build_grid(config, BASELINES)
    assert [run.id for run in grid.models] == [
        f"depth{d}_dim2_seed0{arm}" for d in (1, 2, 3) for arm in ("", "_armmatched-params")
    ]
    matched = [training_hparams(r, config) for r in grid.models if r["arm"] == "matched_params"]
    for hparams in matched:
        assert abs(hparams["params"] - 1_146_986) <= 11_470
    assert matched[0]["widths"] == [728]
    assert matched[2]["widths"] == [500, 300, 100]  # the budget model itself
    budget = config_with(arms=["matched_params"], seeds=[0], param_budget=500_000)
    hparams = training_hparams(build_grid(budget, BASELINES).models[1], budget)
    assert abs(hparams["params"] - 500_000) <= 5_000


def test_a_model_whose_training_an_earlier_run_does_is_copied_not_trained_again():
    grid = build_grid(CONFIG, BASELINES)
    assert grid.trained == grid.models and grid.copied == []
    config = config_with(arms=["article", "matched_params"], seeds=[0, 1])
    grid = build_grid(config, BASELINES)
    # the matched arm's depth-3 models have the article's widths: its own models, per seed
    assert {run.id: grid.trained_as[run.id] for run in grid.copied} == {
        "depth3_dim2_seed0_armmatched-params": "depth3_dim2_seed0",
        "depth3_dim2_seed1_armmatched-params": "depth3_dim2_seed1",
    }
    assert len(grid.trained) == 10 and all(grid.trained_as[r.id] == r.id for r in grid.trained)
    # another budget: no matched model is an article one, all 12 train
    budget = config_with(arms=["article", "matched_params"], seeds=[0, 1], param_budget=900_000)
    assert build_grid(budget, BASELINES).copied == []
    # regimes that differ in a setting never share a training
    regimes = config_with(trainings=["fixed", "converged"], seeds=[0])
    assert build_grid(regimes, BASELINES).copied == []
    # ... but one that changes nothing is the same training under another name
    same = config_with(trainings=["fixed", "again"], training_regimes={"fixed": {}, "again": {}})
    grid = build_grid(same, BASELINES)
    assert grid.trained_as["depth1_dim2_seed0_trainingagain"] == "depth1_dim2_seed0"


def test_a_copied_models_hparams_are_its_own_then_how_the_training_ran():
    own = {"depth": 3, "arm": "matched_params", "widths": [500, 300, 100], "seed": 0}
    trained = {"depth": 3, "arm": "article", "widths": [500, 300, 100], "seed": 0}
    trained |= {"device": "cpu", "threads": 1, "training_path": "autograd"}
    copied = copied_hparams(own, trained, "depth3_dim2_seed0")
    assert copied == own | {
        "device": "cpu",
        "threads": 1,
        "training_path": "autograd",
        "trained_as": "depth3_dim2_seed0",
    }
    assert list(copied)[: len(own)] == list(own)


def test_a_training_regime_overrides_the_settings_and_is_checked():
    config = config_with(trainings=["fixed", "converged"], seeds=[0], depths=[1])
    grid = build_grid(config, BASELINES)
    assert [run.id for run in grid.models] == [
        "depth1_dim2_seed0",
        "depth1_dim2_seed0_trainingconverged",
    ]
    hparams = training_hparams(grid.models[1], config)
    assert (
        hparams["epochs"],
        hparams["validation_fraction"],
        hparams["early_stopping_patience"],
    ) == (300, 0.1, 10)
    assert training_hparams(grid.models[0], config)["epochs"] == 50
    bad = config_with(
        trainings=["quick"], training_regimes={"quick": {"early_stopping_patience": 3}}
    )
    with pytest.raises(ConfigError, match="without a validation split"):
        build_grid(bad, BASELINES)
    with pytest.raises(ConfigError, match="not a key of 'training_regimes'"):
        build_grid(config_with(trainings=["nope"]), BASELINES)


def test_setting_labels_leave_out_an_axis_at_its_omitted_value():
    from aedepth.grid import setting_label

    config = config_with(arms=["article", "matched_params"], seeds=[0], depths=[1])
    grid = build_grid(config, BASELINES)
    assert grid.omitted == {"arm": "article", "training": "fixed"}
    article, matched = (run.record() for run in grid.models)
    names = grid.axis_names
    assert setting_label(article, names, grid.labels, grid.omitted) == "depth 1, latent size 2"
    assert (
        setting_label(matched, names, grid.labels, grid.omitted)
        == "depth 1, latent size 2, arm matched_params"
    )

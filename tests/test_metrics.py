"""Metrics on inputs whose answers are known."""

import math

import numpy as np
import pandas as pd
import pytest

from layouts import SUMMARY_LAYOUT

from aedepth.baselines import BASELINES, embed_baseline
from aedepth.metrics import METRICS, latent_metrics, reconstruction_errors, score_embedding
from aedepth.summary import representative_seed, representatives, summary_table

AXES = ["depth", "latent_dim", "seed"]


def separated_clusters(n_per_class=40, n_classes=10, spread=0.01, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.stack([np.cos(np.arange(n_classes)), np.sin(np.arange(n_classes))], axis=1) * 10
    labels = np.repeat(np.arange(n_classes), n_per_class)
    return centres[labels] + rng.normal(scale=spread, size=(len(labels), 2)), labels


def test_perfectly_separated_latents_score_perfectly():
    z_train, y_train = separated_clusters(seed=0)
    z_test, y_test = separated_clusters(seed=1)
    scores, _ = latent_metrics(
        z_train, y_train, z_test, y_test, x_test=z_test, trustworthiness_samples=200
    )
    assert scores["knn_accuracy"] == 1.0
    assert scores["kmeans_ari"] == pytest.approx(1.0)
    assert scores["kmeans_nmi"] == pytest.approx(1.0)
    assert scores["silhouette"] > 0.99
    assert scores["davies_bouldin"] < 0.01
    assert scores["trustworthiness"] == pytest.approx(1.0)  # the latents are the inputs


def test_random_latents_score_near_chance():
    rng = np.random.default_rng(0)
    z_train, z_test = rng.normal(size=(2000, 2)), rng.normal(size=(1000, 2))
    y_train, y_test = rng.integers(0, 10, 2000), rng.integers(0, 10, 1000)
    scores, _ = latent_metrics(z_train, y_train, z_test, y_test, x_test=z_test)
    assert 0.03 < scores["knn_accuracy"] < 0.2
    assert abs(scores["kmeans_ari"]) < 0.02
    assert scores["silhouette"] < 0.05


def test_reconstruction_errors_known_values():
    x = np.array([[0.0, 1.0, 0.5, 0.5]])
    perfect, _ = reconstruction_errors(x[:, :2], x[:, :2])
    assert perfect["reconstruction_mse"] == 0.0
    assert perfect["reconstruction_bce"] == pytest.approx(0.0, abs=1e-6)
    half, _ = reconstruction_errors(np.full((3, 4), 0.5), np.full((3, 4), 0.5))
    assert half["reconstruction_bce"] == pytest.approx(math.log(2))
    off, _ = reconstruction_errors(np.zeros((1, 2)), np.full((1, 2), 0.5))
    assert off["reconstruction_mse"] == pytest.approx(0.25)


def points_on_a_plane(seed=0):
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(2, 16))
    x_train = np.clip(0.5 + 0.05 * rng.normal(size=(200, 2)) @ basis, 0, 1)
    x_test = np.clip(0.5 + 0.05 * rng.normal(size=(50, 2)) @ basis, 0, 1)
    return x_train.astype(np.float32), x_test.astype(np.float32)


def test_pca_baseline_reconstructs_data_on_a_plane():
    x_train, x_test = points_on_a_plane()
    z_train, z_test, x_hat = embed_baseline("pca", x_train, x_test, n_components=2)
    assert z_train.shape == (200, 2) and z_test.shape == (50, 2)
    assert z_train.dtype == np.float32 and x_hat.dtype == np.float32
    assert np.abs(x_hat - x_test).max() < 0.02  # a 2-D plane is recovered by 2 components


def test_random_projection_is_seeded_and_worse_than_pca_on_a_plane():
    x_train, x_test = points_on_a_plane()
    assert BASELINES["random_projection"].seeded and not BASELINES["pca"].seeded
    first = embed_baseline("random_projection", x_train, x_test, 2, seed=0)
    again = embed_baseline("random_projection", x_train, x_test, 2, seed=0)
    other = embed_baseline("random_projection", x_train, x_test, 2, seed=1)
    assert np.array_equal(first[1], again[1]) and not np.array_equal(first[1], other[1])
    pca_error = np.abs(embed_baseline("pca", x_train, x_test, 2)[2] - x_test).mean()
    assert np.abs(first[2] - x_test).mean() > 2 * pca_error


def test_a_run_without_reconstructions_scores_nan_errors():
    latents, labels = separated_clusters()
    x = np.random.default_rng(0).uniform(size=(len(labels), 5))
    scores, per_image = score_embedding(
        latents, labels, latents, labels, x, None, trustworthiness_samples=50
    )
    assert set(scores) == set(METRICS)
    assert set(per_image) == {"knn_accuracy", "silhouette"}  # no reconstructions, no errors
    assert math.isnan(scores["reconstruction_bce"]) and scores["knn_accuracy"] == 1.0


@pytest.mark.parametrize(
    ("knn", "expected"),
    [
        ({0: 0.5, 1: 0.7, 2: 0.6}, 2),
        ({3: 0.9}, 3),
        ({0: 0.2, 1: 0.1}, 1),
        ({0: 0.5, 1: 0.5, 2: 0.5}, 1),
    ],
)
def test_representative_seed_is_the_median(knn, expected):
    assert representative_seed(knn) == expected


def record(model, depth, seed, knn, method=None, latent_dim=2):
    return {
        "model": model,
        "method": method or ("autoencoder" if depth else "pca"),
        "depth": depth,
        "seed": seed,
        "latent_dim": latent_dim,
        "n_test": 10,
        **{m: 0.5 for m in METRICS},
        "knn_accuracy": knn,
    }


def test_summary_table_orders_rows_and_columns():
    records = [
        record("random_projection_dim2_seed0", None, 0, 0.3, method="random_projection"),
        record("pca_dim2", None, None, 0.4),
        record("depth2_dim8_seed0", 2, 0, 0.8, latent_dim=8),
        record("depth2_dim2_seed1", 2, 1, 0.8),
        record("depth1_dim2_seed0", 1, 0, 0.6),
        record("depth2_dim2_seed0", 2, 0, 0.7),
    ]
    table = summary_table(records, AXES, ["autoencoder", "pca", "random_projection"])
    # SUMMARY_LAYOUT is the default study's, whose axes include arm and training
    assert list(table.columns) == [c for c in SUMMARY_LAYOUT if c not in ("arm", "training")]
    # models by latent size, depth, seed; then the baselines in config order
    assert table["model"].tolist() == [
        "depth1_dim2_seed0",
        "depth2_dim2_seed0",
        "depth2_dim2_seed1",
        "depth2_dim8_seed0",
        "pca_dim2",
        "random_projection_dim2_seed0",
    ]
    assert pd.isna(table["depth"].iloc[-1]) and table["depth"].dtype == "Int64"


def test_representatives_pick_the_median_seed_per_depth():
    records = [
        record("a", 1, 0, 0.1),
        record("b", 1, 1, 0.3),
        record("c", 1, 2, 0.2),
        record("d", 2, 0, 0.9),
    ]
    assert representatives(records, AXES) == {(2, 1): 2, (2, 2): 3}


def history(held_out, validation=False):
    n = len(held_out)
    return pd.DataFrame(
        {
            "epoch": range(1, n + 1),
            "train_loss": [0.1] * n,
            "val_loss": held_out if validation else [float("nan")] * n,
            "test_loss": [0.2] * n if validation else held_out,
            "kept": [0] * (n - 1) + [1],
        }
    )


def test_convergence_reads_the_slope_of_the_held_out_loss():
    from aedepth.summary import convergence

    falling = convergence(history([0.30 - 0.01 * e for e in range(20)]))  # test loss
    assert falling["val_slope_last10"] == pytest.approx(-0.01)
    assert falling["still_improving"] is True
    flat = convergence(history([0.2] * 15, validation=True))  # the validation loss
    assert flat["val_slope_last10"] == pytest.approx(0.0) and flat["still_improving"] is False
    short = convergence(history([0.3, 0.2]))
    assert pd.isna(short["val_slope_last10"]) and short["still_improving"] is None


def test_size_columns():
    from aedepth.summary import size_columns

    assert size_columns({"widths": [500, 300], "params": 1_087_586}) == {
        "params": 1_087_586,
        "widths": "500-300",
    }


def test_reconstruction_errors_in_chunks_match_the_whole_float64_formula():
    rng = np.random.default_rng(0)
    x = rng.random((2 * 1024 + 77, 50), dtype=np.float32)
    x_hat = rng.random(x.shape, dtype=np.float32)
    p = np.clip(x_hat.astype(np.float64), 1e-7, 1 - 1e-7)
    x64 = x.astype(np.float64)
    expected_bce = float(np.mean(-(x64 * np.log(p) + (1 - x64) * np.log1p(-p))))
    expected_mse = float(np.mean((x64 - x_hat.astype(np.float64)) ** 2))
    errors, _ = reconstruction_errors(x, x_hat)
    assert errors["reconstruction_bce"] == pytest.approx(expected_bce, rel=1e-12)
    assert errors["reconstruction_mse"] == pytest.approx(expected_mse, rel=1e-12)


def test_per_image_values_average_to_the_scores_and_every_metric_has_one_construct():
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import KNeighborsClassifier

    from aedepth.metrics import CONSTRUCTS, PER_IMAGE

    rng = np.random.default_rng(3)
    z_train, z_test = rng.normal(size=(600, 2)), rng.normal(size=(300, 2)).astype(np.float32)
    y_train, y_test = rng.integers(0, 4, 600), rng.integers(0, 4, 300)
    x = rng.random((300, 12), dtype=np.float32)
    x_hat = rng.random((300, 12), dtype=np.float32)
    scores, per_image = score_embedding(
        z_train, y_train, z_test, y_test, x, x_hat, kmeans_clusters=4, trustworthiness_samples=50
    )
    assert tuple(per_image) == PER_IMAGE and all(len(v) == 300 for v in per_image.values())
    for metric in PER_IMAGE:
        # float32 latents: sklearn averages the silhouettes in float32
        assert per_image[metric].mean() == pytest.approx(scores[metric], rel=1e-6)
    # the same numbers the library's own scores give
    knn = KNeighborsClassifier(n_neighbors=5).fit(z_train, y_train)
    assert scores["knn_accuracy"] == knn.score(z_test, y_test)
    assert scores["silhouette"] == silhouette_score(z_test, y_test)
    assert set(per_image["knn_accuracy"]) <= {0.0, 1.0}
    listed = [m for metrics in CONSTRUCTS.values() for m in metrics]
    assert sorted(listed) == sorted(METRICS)

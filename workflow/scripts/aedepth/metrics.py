"""How well a latent space separates the classes, and how well its run reconstructs.

All metrics are scored on the test split; the kNN classifier is fit on the train latents.
Higher is better except for davies_bouldin, reconstruction_bce and reconstruction_mse.
Models and baselines are scored by the same function, `score_embedding`. Four metrics are
means over the test images (PER_IMAGE); their per-image values are kept too, so that the
primary comparison can count the test set's own sampling noise (aedepth.stats).
"""

from __future__ import annotations

import math

import numpy as np

# scikit-learn is imported where it is used: the config check reads METRICS at parse time,
# which stays free of heavy imports (tests/test_imports.py).

# Metric name -> True when higher is better. The order is the column order of summary.csv.
METRICS = {
    "knn_accuracy": True,
    "silhouette": True,
    "davies_bouldin": False,
    "calinski_harabasz": True,
    "kmeans_ari": True,
    "kmeans_nmi": True,
    "trustworthiness": True,
    "reconstruction_bce": False,
    "reconstruction_mse": False,
}

# The scientific constructs the metrics measure: secondary results are reported per construct,
# and a claim about a construct holds only where all of its metrics agree.
CONSTRUCTS = {
    "class separation": ("knn_accuracy", "silhouette", "davies_bouldin", "calinski_harabasz"),
    "cluster agreement": ("kmeans_ari", "kmeans_nmi"),
    "neighbourhood preservation": ("trustworthiness",),
    "reconstruction": ("reconstruction_bce", "reconstruction_mse"),
}
# The metrics that are a mean over the test images, kept per image (per_image/<run>.parquet):
# kNN accuracy (1 where the image's 5-NN vote is right), silhouette (silhouette_samples), and
# each image's mean per-pixel BCE and MSE.
PER_IMAGE = ("knn_accuracy", "silhouette", "reconstruction_bce", "reconstruction_mse")
# Those of PER_IMAGE whose per-image values are independent across test images given the
# model, so that the test set's sampling noise is their column variance over N: an image's
# kNN vote and reconstruction error depend on it alone; its silhouette depends on every other
# test image too, so silhouette's intervals are over seeds only (conditional on this test set).
IMAGE_MEANS = ("knn_accuracy", "reconstruction_bce", "reconstruction_mse")

_EPS = 1e-7  # clip predictions so BCE stays finite for a pixel predicted at exactly 0 or 1
# Each metric's possible values (lowest, highest): a smallest difference that matters must be
# below their span. ARI is at least -0.5; BCE per pixel at most -log(_EPS), by the clip above.
RANGES = {
    "knn_accuracy": (0.0, 1.0),
    "silhouette": (-1.0, 1.0),
    "davies_bouldin": (0.0, math.inf),
    "calinski_harabasz": (0.0, math.inf),
    "kmeans_ari": (-0.5, 1.0),
    "kmeans_nmi": (0.0, 1.0),
    "trustworthiness": (0.0, 1.0),
    "reconstruction_bce": (0.0, -math.log(_EPS)),
    "reconstruction_mse": (0.0, 1.0),
}
# Memory bounds (every job stays under 1 GB with torch's ~0.7 GB imported): sklearn's pairwise
# work in chunks of at most this many MB (its default, 1024, took 0.44 GB for the silhouette
# of 10,000 test images), and the reconstruction errors in float64 over this many rows at once.
WORKING_MEMORY_MB = 16
ERROR_ROWS = 1024


def latent_metrics(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_test: np.ndarray,
    y_test: np.ndarray,
    x_test: np.ndarray,
    knn_neighbors: int = 5,
    kmeans_clusters: int = 10,
    trustworthiness_samples: int = 2000,
    trustworthiness_neighbors: int = 5,
    seed: int = 0,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Cluster-quality metrics of a latent space, and the per-image values of those that are
    means over the test images; `x_test` (N, D) are the inputs it encodes."""
    import sklearn
    from sklearn.cluster import KMeans
    from sklearn.manifold import trustworthiness
    from sklearn.metrics import (
        adjusted_rand_score,
        calinski_harabasz_score,
        davies_bouldin_score,
        normalized_mutual_info_score,
        silhouette_samples,
    )
    from sklearn.neighbors import KNeighborsClassifier

    with sklearn.config_context(working_memory=WORKING_MEMORY_MB):
        knn = KNeighborsClassifier(n_neighbors=knn_neighbors).fit(z_train, y_train)
        clusters = KMeans(n_clusters=kmeans_clusters, n_init=10, random_state=seed).fit_predict(
            z_test
        )
        # trustworthiness is quadratic in n: score a fixed subsample, the same for every model.
        rng = np.random.default_rng(seed)
        subset = rng.choice(
            len(z_test), size=min(trustworthiness_samples, len(z_test)), replace=False
        )
        # knn.score and silhouette_score are these means: the same numbers, computed once
        correct = knn.predict(z_test) == y_test
        silhouettes = silhouette_samples(z_test, y_test)
        per_image = {
            "knn_accuracy": correct.astype(np.float64),
            "silhouette": silhouettes.astype(np.float64),
        }
        scores = {
            "knn_accuracy": float(np.average(correct)),
            "silhouette": float(np.mean(silhouettes)),
            "davies_bouldin": float(davies_bouldin_score(z_test, y_test)),
            "calinski_harabasz": float(calinski_harabasz_score(z_test, y_test)),
            "kmeans_ari": float(adjusted_rand_score(y_test, clusters)),
            "kmeans_nmi": float(normalized_mutual_info_score(y_test, clusters)),
            "trustworthiness": float(
                trustworthiness(
                    x_test[subset], z_test[subset], n_neighbors=trustworthiness_neighbors
                )
            ),
        }
        return scores, per_image


def reconstruction_errors(
    x: np.ndarray, x_hat: np.ndarray
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Mean per-pixel BCE and MSE between inputs and reconstructions, both in [0, 1], and
    each image's own means.

    Computed in float64, ERROR_ROWS rows at a time: float64 copies of all 10,000 test images
    would take 63 MB each, and the formula several of them."""
    bce_sum = mse_sum = 0.0
    per_image = {name: np.empty(len(x)) for name in ("reconstruction_bce", "reconstruction_mse")}
    for start in range(0, len(x), ERROR_ROWS):
        rows = x[start : start + ERROR_ROWS].astype(np.float64)
        predicted = x_hat[start : start + ERROR_ROWS].astype(np.float64)
        p = np.clip(predicted, _EPS, 1 - _EPS)
        bce = -(rows * np.log(p) + (1 - rows) * np.log1p(-p))
        mse = (rows - predicted) ** 2
        bce_sum += float(np.sum(bce))
        mse_sum += float(np.sum(mse))
        per_image["reconstruction_bce"][start : start + len(rows)] = bce.mean(axis=1)
        per_image["reconstruction_mse"][start : start + len(rows)] = mse.mean(axis=1)
    n = x.size
    scores = {"reconstruction_bce": bce_sum / n, "reconstruction_mse": mse_sum / n}
    return scores, per_image


def score_embedding(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_test: np.ndarray,
    y_test: np.ndarray,
    x_test: np.ndarray,
    x_hat: np.ndarray | None,
    **settings,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Every metric of METRICS for one run, and the per-image values of PER_IMAGE; the
    reconstruction errors are NaN (and have no per-image values) for a run that cannot
    reconstruct (x_hat None). `settings` are latent_metrics' keyword arguments."""
    scores, per_image = latent_metrics(z_train, y_train, z_test, y_test, x_test, **settings)
    if x_hat is None:
        nan = {"reconstruction_bce": float("nan"), "reconstruction_mse": float("nan")}
        return scores | nan, per_image
    errors, image_errors = reconstruction_errors(x_test, x_hat)
    return scores | errors, per_image | image_errors


def unit_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W[, 3]) -> float32 (N, H * W[ * 3]) intensities in [0, 1] (one copy: the
    division in place)."""
    pixels = images.reshape(len(images), -1).astype(np.float32)
    pixels /= np.float32(255)
    return pixels

"""How well a latent space separates the classes, and how well its run reconstructs.

All metrics are scored on the test split; the kNN classifier is fit on the train latents.
Higher is better except for davies_bouldin, reconstruction_bce and reconstruction_mse.
Models and baselines are scored by the same function, `score_embedding`.
"""

from __future__ import annotations

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.manifold import trustworthiness
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)
from sklearn.neighbors import KNeighborsClassifier

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

_EPS = 1e-7  # clip predictions so BCE stays finite for a pixel predicted at exactly 0 or 1
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
) -> dict[str, float]:
    """Cluster-quality metrics of a latent space; `x_test` (N, D) are the inputs it encodes."""
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
        return {
            "knn_accuracy": float(knn.score(z_test, y_test)),
            "silhouette": float(silhouette_score(z_test, y_test)),
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


def reconstruction_errors(x: np.ndarray, x_hat: np.ndarray) -> dict[str, float]:
    """Mean per-pixel BCE and MSE between inputs and reconstructions, both in [0, 1].

    Computed in float64, ERROR_ROWS rows at a time: float64 copies of all 10,000 test images
    would take 63 MB each, and the formula several of them."""
    bce_sum = mse_sum = 0.0
    for start in range(0, len(x), ERROR_ROWS):
        rows = x[start : start + ERROR_ROWS].astype(np.float64)
        predicted = x_hat[start : start + ERROR_ROWS].astype(np.float64)
        p = np.clip(predicted, _EPS, 1 - _EPS)
        bce_sum -= float(np.sum(rows * np.log(p) + (1 - rows) * np.log1p(-p)))
        mse_sum += float(np.sum((rows - predicted) ** 2))
    n = x.size
    return {"reconstruction_bce": bce_sum / n, "reconstruction_mse": mse_sum / n}


def score_embedding(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_test: np.ndarray,
    y_test: np.ndarray,
    x_test: np.ndarray,
    x_hat: np.ndarray | None,
    **settings,
) -> dict[str, float]:
    """Every metric of METRICS for one run; the reconstruction errors are NaN for a run
    that cannot reconstruct (x_hat None). `settings` are latent_metrics' keyword arguments."""
    scores = latent_metrics(z_train, y_train, z_test, y_test, x_test, **settings)
    if x_hat is None:
        return scores | {"reconstruction_bce": float("nan"), "reconstruction_mse": float("nan")}
    return scores | reconstruction_errors(x_test, x_hat)


def unit_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float32 (N, 784) intensities in [0, 1] (one copy: the
    division in place)."""
    pixels = images.reshape(len(images), -1).astype(np.float32)
    pixels /= np.float32(255)
    return pixels

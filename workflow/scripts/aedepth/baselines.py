"""Reference embeddings the autoencoders are scored against, as a registry.

A baseline is fitted on the training images and embeds the training and test images into as
many dimensions as the latent size; it reconstructs the test images where it can (None
where it cannot, e.g. a nonlinear map without an inverse). Adding one is one entry in
`BASELINES` (see CONTRIBUTING.md); the rules, summary, figures and findings pick it
up by name from `baselines:` in config.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# (x_train, x_test, n_components, seed) -> (z_train, z_test, test reconstructions or None);
# pixels and reconstructions as float32 in [0, 1].
Embedder = Callable[
    [np.ndarray, np.ndarray, int, int], tuple[np.ndarray, np.ndarray, np.ndarray | None]
]


@dataclass(frozen=True)
class Baseline:
    embed: Embedder
    seeded: bool  # its result depends on the seed: one run per seed, intervals like models
    description: str  # one line for the README and the findings


def pca(x_train, x_test, n_components, seed):
    """PCA of the pixels; reconstruction by the inverse map, clipped to [0, 1]."""
    from sklearn.decomposition import PCA  # here, not at the top: Snakemake imports this module

    model = PCA(n_components=n_components, random_state=seed).fit(x_train)
    z_test = model.transform(x_test)
    x_hat = np.clip(model.inverse_transform(z_test), 0.0, 1.0)
    return model.transform(x_train), z_test, x_hat


def random_projection(x_train, x_test, n_components, seed):
    """A Gaussian random linear map of the pixels: what a code no training chose gives.

    Reconstruction by the map's pseudo-inverse, clipped to [0, 1].
    """
    from sklearn.random_projection import GaussianRandomProjection

    model = GaussianRandomProjection(
        n_components=n_components, random_state=seed, compute_inverse_components=True
    ).fit(x_train)
    z_test = model.transform(x_test)
    x_hat = np.clip(model.inverse_transform(z_test), 0.0, 1.0)
    return model.transform(x_train), z_test, x_hat


def umap_embedding(x_train, x_test, n_components, seed):
    """UMAP (umap-learn, its defaults: 15 neighbours, min_dist 0.1) fitted on the training
    images; the test images placed by its `transform`. No reconstruction.

    Imported here, not at module import: umap pulls numba, and this module is read whenever
    Snakemake parses the workflow. A fixed random_state makes it deterministic (and serial).
    """
    import umap

    model = umap.UMAP(n_components=n_components, random_state=seed)
    z_train = model.fit_transform(x_train)
    return z_train, model.transform(x_test), None


def tsne_embedding(x_train, x_test, n_components, seed):
    """t-SNE (openTSNE, its defaults: perplexity 30) fitted on the training images; the test
    images embedded into that fixed map by openTSNE's `transform`. No reconstruction.

    One thread, so that a seed gives the same map on every machine; FFT gradients for up to
    2 dimensions, Barnes-Hut (openTSNE's only choice there) above.
    """
    from openTSNE import TSNE

    method = "fft" if n_components <= 2 else "bh"
    embedding = TSNE(
        n_components=n_components, random_state=seed, n_jobs=1, negative_gradient_method=method
    ).fit(x_train)
    return np.asarray(embedding), np.asarray(embedding.transform(x_test)), None


BASELINES: dict[str, Baseline] = {
    "pca": Baseline(pca, seeded=False, description="PCA of the pixels (linear, best in MSE)"),
    "random_projection": Baseline(
        random_projection, seeded=True, description="a Gaussian random projection of the pixels"
    ),
    "umap": Baseline(
        umap_embedding, seeded=True, description="UMAP of the pixels (a nonlinear ceiling)"
    ),
    "tsne": Baseline(
        tsne_embedding,
        seeded=True,
        description="t-SNE of the pixels, test images placed in the fitted map (a ceiling)",
    ),
}


def embed_baseline(
    method: str, x_train: np.ndarray, x_test: np.ndarray, n_components: int, seed: int = 0
):
    """Run baseline `method` on float32 pixels in [0, 1]; latents as float32."""
    z_train, z_test, x_hat = BASELINES[method].embed(x_train, x_test, n_components, seed)
    reconstructed = None if x_hat is None else x_hat.astype(np.float32)
    return z_train.astype(np.float32), z_test.astype(np.float32), reconstructed

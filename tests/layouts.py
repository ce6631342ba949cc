"""The column layouts docs/outputs.md documents for the result tables, spelled out once.

The tests compare the files against these lists rather than against constants of the code
under test, so a renamed, dropped or moved column fails until docs/outputs.md, code and this file agree.
"""

SUMMARY_LAYOUT = [
    "model", "method", "depth", "latent_dim", "seed", "arm", "training", "n_test",
    "params", "widths", "epochs", "early_stopping_patience",
    "knn_accuracy", "silhouette", "davies_bouldin", "calinski_harabasz", "kmeans_ari",
    "kmeans_nmi", "trustworthiness", "reconstruction_bce", "reconstruction_mse",
    "kept_epoch", "train_loss", "val_loss", "test_loss", "loss_gap",
    "val_slope_last10", "still_improving",
]  # fmt: skip
LOSS_COLUMNS = SUMMARY_LAYOUT[-7:-2]
SIZE_COLUMNS = ["params", "widths"]
CONVERGENCE_COLUMNS = SUMMARY_LAYOUT[-2:]
HISTORY_LAYOUT = ["epoch", "train_loss", "val_loss", "test_loss", "seconds", "kept"]
INTERVAL_LAYOUT = [
    "method", "latent_dim", "arm", "training", "depth", "metric", "higher_is_better", "n_seeds",
    "mean", "ci_low", "ci_high",
]  # fmt: skip
COMPARISON_LAYOUT = [
    "latent_dim", "arm", "training", "depth", "previous_depth", "metric", "higher_is_better",
    "n_pairs", "mean_difference", "confidence", "ci_low", "ci_high", "p_value", "p_adjusted",
    "verdict", "effect_size", "effect_low", "effect_high",
]  # fmt: skip
PRIMARY_LAYOUT = [
    "latent_dim", "arm", "training", "depth", "previous_depth", "metric", "higher_is_better",
    "smallest_difference", "n_pairs", "n_seeds", "n_images", "mean_difference", "confidence",
    "ci_low", "ci_high", "seed_variance", "image_variance", "p_value", "p_adjusted", "verdict",
    "seeds_to_detect", "seeds_for_equivalence", "seeds_to_detect_observed",
    "seeds_for_equivalence_observed", "epochs", "early_stopping_patience", "n_models",
    "still_improving",
]  # fmt: skip
PER_IMAGE_LAYOUT = [
    "index",
    "knn_accuracy",
    "silhouette",
    "reconstruction_bce",
    "reconstruction_mse",
]

# Every key of config.yaml, as the "unknown config key" message lists them (docs/configuration.md).
ALL_KEYS = (
    "architectures, arms, axes, baselines, batch_size, checksums, classes, conv_channels, "
    "dataset, datasets, depths, device, "
    "download_retries, download_timeout, early_stopping_patience, epochs, explorer_points, "
    "hidden_sizes, kmeans_clusters, knn_neighbors, latent_dims, learning_rate, matmul_route, "
    "mirrors, param_budget, plot_digits, plot_dpi, primary_metric, sample_test_fraction, seeds, "
    "smallest_difference, source, study, "
    "training_regimes, training_threads, trainings, trustworthiness_neighbors, "
    "trustworthiness_samples, validation_fraction"
)


def studies_headline_layout(groups: list[str]) -> list[str]:
    """The headline columns of results/studies.csv (after study and the differing config keys):
    per autoencoder group, e.g. depth1_dim2, each metric's mean over seeds and its interval."""
    return [
        f"{group}_{metric}{statistic}"
        for group in groups
        for metric in ("knn_accuracy", "silhouette", "trustworthiness", "reconstruction_bce")
        for statistic in ("", "_ci_low", "_ci_high")
    ]

"""The column layouts README.md documents for the result tables, spelled out once.

The tests compare the files against these lists rather than against constants of the code
under test, so a renamed, dropped or moved column fails until README, code and this file agree.
"""

SUMMARY_LAYOUT = [
    "model", "method", "depth", "latent_dim", "seed", "n_test",
    "knn_accuracy", "silhouette", "davies_bouldin", "calinski_harabasz", "kmeans_ari",
    "kmeans_nmi", "trustworthiness", "reconstruction_bce", "reconstruction_mse",
    "kept_epoch", "train_loss", "val_loss", "test_loss", "loss_gap",
]  # fmt: skip
LOSS_COLUMNS = SUMMARY_LAYOUT[-5:]
HISTORY_LAYOUT = ["epoch", "train_loss", "val_loss", "test_loss", "seconds", "kept"]
INTERVAL_LAYOUT = [
    "method", "latent_dim", "depth", "metric", "higher_is_better", "n_seeds", "mean",
    "ci_low", "ci_high",
]  # fmt: skip
COMPARISON_LAYOUT = [
    "latent_dim", "depth", "previous_depth", "metric", "higher_is_better", "n_pairs",
    "mean_difference", "ci_low", "ci_high", "verdict",
]  # fmt: skip

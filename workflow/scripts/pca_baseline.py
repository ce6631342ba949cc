"""Snakemake adapter: score a PCA of the pixels (as many components as the latent size)."""

from aedepth.data import load_dataset
from aedepth.files import write_json
from aedepth.jobs import job_log
from aedepth.metrics import latent_metrics, pca_baseline, reconstruction_errors

with job_log(snakemake.log[0]):
    data = load_dataset(snakemake.input.data)
    x_train, x_test = (data[k].reshape(len(data[k]), -1) / 255.0 for k in ("x_train", "x_test"))
    z_train, z_test, x_hat = pca_baseline(x_train, x_test, snakemake.params.latent_dim)
    scores = latent_metrics(
        z_train, data["y_train"], z_test, data["y_test"], x_test, **snakemake.params.metrics
    )
    scores |= reconstruction_errors(x_test, x_hat)
    write_json(
        snakemake.output[0],
        {
            "model": f"pca_dim{snakemake.params.latent_dim}",
            "method": "pca",
            "depth": None,
            "seed": None,
            "latent_dim": snakemake.params.latent_dim,
            "n_test": len(x_test),
            **scores,
        },
    )

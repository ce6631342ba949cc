"""Snakemake adapter: one group's test set in latent space (its median-kNN seed)."""

from aedepth.files import read_json, reading
from aedepth.jobs import job_log
from aedepth.latents import read_latents
from aedepth.markup import param_value
from aedepth.plots import latent_scatter, save_figure
from aedepth.grid import setting_label
from aedepth.summary import representatives

# What this figure reads of each metrics JSON.
METRIC_KEYS = ("seed", "knn_accuracy", "silhouette")

with job_log(snakemake.log[0]):
    records = [read_json(path, METRIC_KEYS) for path in snakemake.input.metrics]
    axes = [name for name in snakemake.params.labels if name in records[0]]
    (position,) = representatives(records, axes).values()
    record = records[position]
    with reading(snakemake.input.latents[position], "the latents Parquet aedepth wrote"):
        splits, _ = read_latents(snakemake.input.latents[position])
    title = (
        f"{setting_label(record, axes, snakemake.params.labels, snakemake.params.omit)}, seed {record['seed']}:"
        " test set in latent space"
        f"\nkNN accuracy {record['knn_accuracy']:.3f}, silhouette {record['silhouette']:.3f}"
    )
    save_figure(
        latent_scatter(*splits["test"], title, param_value(snakemake.params.classes)),
        snakemake.output[0],
        snakemake.params.dpi,
        tight=False,  # its own size: bounded whatever the classes (LATENT_FIGURE_INCHES)
    )

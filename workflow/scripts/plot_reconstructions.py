"""Snakemake adapter: the same test images, original and reconstructed by each setting's model
(its median-kNN seed). Used per group and for the combined figure (a row per setting)."""

from aedepth.data import image_shape, load_dataset
from aedepth.files import read_json
from aedepth.jobs import job_log
from aedepth.model import load_model, reconstruct_images
from aedepth.plots import digit_grid, pick_digits, save_figure
from aedepth.grid import setting_label
from aedepth.summary import representatives

with job_log(snakemake.log[0]):
    data = load_dataset(snakemake.input.data)
    originals = data["x_test"][pick_digits(data["y_test"], snakemake.params.digits)]
    rows = [("original", originals / 255.0)]
    records = [read_json(path, ("seed", "knn_accuracy")) for path in snakemake.input.metrics]
    labels = snakemake.params.labels
    axes = [name for name in labels if name in records[0]]
    for position in representatives(records, axes).values():
        record = records[position]
        model = load_model(
            snakemake.input.weights[position], read_json(snakemake.input.hparams[position])
        )
        label = (
            f"{setting_label(record, axes, labels, snakemake.params.omit)}\nseed {record['seed']}"
        )
        rows.append((label, reconstruct_images(model, originals)))
    title = snakemake.params.title
    if len(rows) == 2:  # a single setting: say which in the title
        title += f", {setting_label(records[0], axes, labels, snakemake.params.omit)}"
    figure = digit_grid(rows, title, image_shape(data["x_test"]))
    save_figure(figure, snakemake.output[0], snakemake.params.dpi)

"""Snakemake adapter: the same test digits, original and reconstructed by each depth's model.

Used per depth and for the combined figure (originals on top, one row per depth).
"""

from aedepth.data import load_dataset
from aedepth.files import read_json
from aedepth.jobs import job_log
from aedepth.model import load_model, reconstruct_images
from aedepth.plots import digit_grid, pick_digits, save_figure
from aedepth.summary import representatives

with job_log(snakemake.log[0]):
    data = load_dataset(snakemake.input.data)
    originals = data["x_test"][pick_digits(data["y_test"], snakemake.params.digits)]
    rows = [("original", originals / 255.0)]
    records = [read_json(path) for path in snakemake.input.metrics]
    for (latent, depth), position in representatives(records).items():
        model = load_model(
            snakemake.input.weights[position], read_json(snakemake.input.hparams[position])
        )
        label = f"depth {depth}, latent {latent}\nseed {records[position]['seed']}"
        rows.append((label, reconstruct_images(model, originals)))
    save_figure(digit_grid(rows, snakemake.params.title), snakemake.output[0], snakemake.params.dpi)

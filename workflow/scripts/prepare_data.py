"""Snakemake adapter: turn the configured source into the one uint8 array file."""

from pathlib import Path

from aedepth.data import arrays_from_idx, load_sample, md5_owners, read_idx_folder, save_dataset
from aedepth.jobs import job_log

with job_log(snakemake.log[0]):
    if snakemake.params.source == "sample":
        arrays = load_sample(test_fraction=snakemake.params.sample_test_fraction)
    else:
        folder = Path(snakemake.input.idx[0]).parent
        # the other datasets' checksums only name a mislabelled file: read from the config,
        # not params, so that adding a dataset reruns nothing
        owners = md5_owners(snakemake.config["datasets"], snakemake.config["dataset"])
        arrays = arrays_from_idx(read_idx_folder(folder, snakemake.params.checksums, owners))
    save_dataset(snakemake.output[0], arrays)

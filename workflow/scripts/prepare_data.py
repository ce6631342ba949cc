"""Snakemake adapter: turn the configured source into the one uint8 array file."""

from pathlib import Path

from aedepth.data import (
    arrays_from_idx,
    dataset_fingerprint,
    load_sample,
    md5_owners,
    read_idx_folder,
    save_dataset,
)
from aedepth.files import write_json
from aedepth.jobs import job_log
from aedepth.sources import DOWNLOAD, IDX, SAMPLE, load_source, source_kind

with job_log(snakemake.log[0]):
    source = snakemake.params.source
    kind = source_kind(source)
    if kind == SAMPLE:
        arrays = load_sample(test_fraction=snakemake.params.sample_test_fraction)
    elif kind in (DOWNLOAD, IDX):
        folder = Path(snakemake.input.idx[0]).parent
        # the other datasets' checksums only name a mislabelled file: read from the config,
        # not params, so that adding a dataset reruns nothing
        owners = md5_owners(snakemake.config["datasets"], snakemake.config["dataset"])
        arrays = arrays_from_idx(read_idx_folder(folder, snakemake.params.checksums, owners))
    if kind in (SAMPLE, DOWNLOAD, IDX):
        save_dataset(snakemake.output.data, arrays)
    else:
        # `classes` from the config, not params: they name the classes and never change the
        # arrays (load_source checks the labels against them), so renaming one reruns nothing
        arrays = load_source(source, snakemake.config["classes"])
        save_dataset(snakemake.output.data, arrays, classes=None)
    write_json(snakemake.output.fingerprint, dataset_fingerprint(arrays))

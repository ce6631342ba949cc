"""Snakemake adapter: fetch one IDX file from the mirrors and keep its verified bytes."""

from aedepth.data import download_idx, md5_owners
from aedepth.files import atomic_output
from aedepth.jobs import job_log

with job_log(snakemake.log[0]):
    name = snakemake.wildcards.name
    # the other datasets' checksums only name a mirror serving their file (see prepare_data)
    owners = md5_owners(snakemake.config["datasets"], snakemake.config["dataset"])
    raw = download_idx(
        name,
        snakemake.params.mirrors,
        snakemake.params.md5,
        retries=snakemake.params.retries,
        timeout=snakemake.params.timeout,
        owners=owners[name],
    )
    with atomic_output(snakemake.output[0], len(raw)) as tmp:
        tmp.write_bytes(raw)

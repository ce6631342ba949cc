"""Snakemake adapter: fetch one IDX file from the mirrors and keep its verified bytes."""

from aedepth.data import download_idx
from aedepth.files import atomic_output
from aedepth.jobs import job_log

with job_log(snakemake.log[0]):
    name = snakemake.wildcards.name
    raw = download_idx(
        name,
        snakemake.params.mirrors,
        snakemake.params.md5,
        retries=snakemake.params.retries,
        timeout=snakemake.params.timeout,
    )
    with atomic_output(snakemake.output[0]) as tmp:
        tmp.write_bytes(raw)

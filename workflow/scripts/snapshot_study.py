"""Snakemake adapter: the study's resolved config as results/<study>/study.yaml."""

from aedepth.jobs import job_log
from aedepth.studies import write_snapshot

with job_log(snakemake.log[0]):
    write_snapshot(snakemake.params.config, snakemake.params.study, snakemake.output[0])

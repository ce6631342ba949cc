"""Snakemake adapter: the primary question and when it was set, as results/<study>/question.json."""

from aedepth.jobs import job_log
from aedepth.studies import record_question

with job_log(snakemake.log[0]):
    record_question(
        snakemake.output[0],
        snakemake.params.primary_metric,
        snakemake.params.smallest_difference,
        snakemake.params.models,
    )

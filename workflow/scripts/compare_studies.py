"""Snakemake adapter: every study's differing config values and headline numbers, as
results/studies.csv and results/studies.html."""

from aedepth.files import atomic_output
from aedepth.jobs import job_log
from aedepth.studies import compare_studies, studies_html

with job_log(snakemake.log[0]):
    table = compare_studies(snakemake.input.snapshots, snakemake.input.intervals)
    with atomic_output(snakemake.output.table) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_output(snakemake.output.page) as tmp:
        tmp.write_text(studies_html(table))

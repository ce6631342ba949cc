"""Snakemake adapter: one row per run (models, then baselines) in results/<study>/summary.csv."""

from aedepth.files import atomic_output, read_json
from aedepth.jobs import job_log
from aedepth.summary import summary_table

with job_log(snakemake.log[0]):
    table = summary_table(
        [read_json(path) for path in snakemake.input.metrics],
        snakemake.params.axes,
        snakemake.params.methods,
    )
    with atomic_output(snakemake.output[0]) as tmp:
        table.to_csv(tmp, index=False)

"""Snakemake adapter: every study's differing config values and headline numbers, as
results/studies.csv and results/studies.html."""

from pathlib import Path

from aedepth.files import atomic_output
from aedepth.jobs import UserFacingError, job_log
from aedepth.studies import INTERVALS, SNAPSHOT, compare_studies, studies_html

with job_log(snakemake.log[0]):
    folders = [Path(folder) for folder in snakemake.params.studies]
    if not folders:
        raise UserFacingError(
            "no finished study under results/ to compare: run one first "
            "(snakemake --cores 4 --config source=sample study=a epochs=3)"
        )
    table = compare_studies([f / SNAPSHOT for f in folders], [f / INTERVALS for f in folders])
    with atomic_output(snakemake.output.table) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_output(snakemake.output.page) as tmp:
        tmp.write_text(studies_html(table))

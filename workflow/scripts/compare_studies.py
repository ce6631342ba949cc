"""Snakemake adapter: every study's differing config values and headline numbers, as
results/studies.csv and results/studies.html."""

from pathlib import Path

from aedepth.files import atomic_output, read_table, read_yaml
from aedepth.jobs import UserFacingError, job_log
from aedepth.studies import INTERVALS, NO_STUDY, SNAPSHOT, compare_studies, studies_html

# What compare reads of each study; a damaged file names its study and what to do.
FIX = "delete it and run that study again (or delete the study's folder to leave it out)"

with job_log(snakemake.log[0]):
    folders = [Path(folder) for folder in snakemake.params.studies]
    if not folders:
        raise UserFacingError(NO_STUDY)
    for folder in folders:  # bounded reads first: a YAML bomb or a damaged table, one line
        read_yaml(folder / SNAPSHOT, ("study", "axes"), FIX)
        read_table(folder / INTERVALS, ("method", "metric", "mean", "ci_low", "ci_high"), fix=FIX)
    table = compare_studies([f / SNAPSHOT for f in folders], [f / INTERVALS for f in folders])
    with atomic_output(snakemake.output.table) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_output(snakemake.output.page) as tmp:
        tmp.write_text(studies_html(table))

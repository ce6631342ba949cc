"""Snakemake adapter: intervals over seeds, paired depth comparisons and the written findings."""

from aedepth.files import atomic_output, read_json, read_table, reading
from aedepth.grid import AUTOENCODER, COMPARED, REPLICATE
from aedepth.jobs import job_log
from aedepth.latents import read_per_image
from aedepth.markup import param_value
from aedepth.metrics import METRICS
from aedepth.findings import findings_markdown, headline, headline_rst
from aedepth.stats import Question, depth_comparisons, depth_intervals, primary_comparisons
from aedepth.studies import QUESTION_KEYS

with job_log(snakemake.log[0]):
    conditions = snakemake.params.conditions
    # the columns every step below reads: a damaged summary is refused in one line
    summary = read_table(
        snakemake.input.summary,
        ("method", COMPARED, REPLICATE, *conditions),
        numeric=(COMPARED, REPLICATE, *METRICS, "loss_gap"),
    )
    models = summary[summary["method"] == AUTOENCODER]
    question = Question(**snakemake.params.question)
    per_image = {}
    for run, path in zip(snakemake.params.models, snakemake.input.per_image):
        with reading(path, "the per-image scores Parquet aedepth wrote"):
            per_image[run] = read_per_image(path, question.metric)
    intervals = depth_intervals(summary, conditions)
    comparisons = depth_comparisons(models, conditions)
    primary = primary_comparisons(models, conditions, question, per_image)
    source = param_value(snakemake.params.source)
    data = f"{snakemake.params.dataset} (source: {source})"
    for table, path in (
        (intervals, snakemake.output.intervals),
        (comparisons, snakemake.output.comparisons),
        (primary, snakemake.output.primary),
    ):
        with atomic_output(path) as tmp:
            table.to_csv(tmp, index=False)
    findings = findings_markdown(
        summary,
        intervals,
        comparisons,
        primary,
        conditions,
        snakemake.params.labels,
        data,
        # The published reference points are for the full data set only.
        snakemake.params.dataset if source != "sample" else None,
        snakemake.params.omit,
        question_record=read_json(snakemake.input.question, QUESTION_KEYS),
    )
    sentences = headline(
        summary, primary, conditions, snakemake.params.labels, snakemake.params.omit
    )
    for text, path in (
        (findings, snakemake.output.findings),
        (headline_rst(sentences), snakemake.output.headline),
    ):
        with atomic_output(path) as tmp:
            tmp.write_text(text)

# Latent embeddings of every run, and how well they separate the classes.


localrules:
    summarize,
    summary_table,
    declare_question,
    compare_depths,


rule embed:
    input:
        data=DATA_INPUT,
        data_id=DATA_ID,
        weights=GRID.pattern("weights"),
        hparams=GRID.pattern("hparams"),
        code=code_of("embed_latents.py"),
    output:
        GRID.pattern("latents"),
    log:
        in_study("logs/embed/{run}.log"),
    benchmark:
        in_study("benchmarks/embed/{run}.tsv")
    conda:
        ENV
    params:
        record=lambda wildcards: run_of(wildcards).record(),
        dataset=config["dataset"],
        source=config["source"],
    script:
        "../scripts/embed_latents.py"


rule evaluate:
    input:
        data=DATA_INPUT,
        data_id=DATA_ID,
        latents=GRID.pattern("latents"),
        weights=GRID.pattern("weights"),
        hparams=GRID.pattern("hparams"),
        history=GRID.pattern("history"),
        code=code_of("evaluate_latents.py"),
    output:
        metrics=GRID.pattern("metrics"),
        per_image=GRID.pattern("per_image"),
    log:
        in_study("logs/evaluate/{run}.log"),
    benchmark:
        in_study("benchmarks/evaluate/{run}.tsv")
    conda:
        ENV
    params:
        record=lambda wildcards: run_of(wildcards).record(),
        metrics=metric_settings(),
    script:
        "../scripts/evaluate_latents.py"


rule baseline:
    input:
        data=DATA_INPUT,
        data_id=DATA_ID,
        code=code_of("fit_baseline.py"),
    output:
        latents=BASELINE_LATENTS,
        metrics=BASELINE_METRICS,
    log:
        in_study("logs/baseline/{method}_{setting}.log"),
    benchmark:
        in_study("benchmarks/baseline/{method}_{setting}.tsv")
    conda:
        ENV
    params:
        hparams=lambda wildcards: baseline_hparams(run_of(wildcards)),
        record=lambda wildcards: run_of(wildcards).record(),
        metrics=metric_settings(),
        dataset=config["dataset"],
        source=config["source"],
    script:
        "../scripts/fit_baseline.py"


rule summarize:
    input:
        metrics=of_runs("metrics", GRID.runs),
        code=code_of("summarize.py"),
    output:
        report(
            in_study("summary.csv"),
            caption="../report/summary.rst",
            category="Metrics",
            labels={"figure": "summary table (CSV download)"},
        ),
    log:
        in_study("logs/summarize.log"),
    conda:
        ENV
    params:
        axes=GRID.axis_names,
        methods=["autoencoder", *GRID.baselines],
    script:
        "../scripts/summarize.py"


rule summary_table:
    input:
        summary=in_study("summary.csv"),
        code=code_of("summary_table.py"),
    output:
        report(
            in_study("summary.html"),
            caption="../report/summary.rst",
            category="Metrics",
            labels={"figure": "summary table"},
        ),
    log:
        in_study("logs/summary_table.log"),
    conda:
        ENV
    params:
        significant_digits=4,
    script:
        "../scripts/summary_table.py"


# The primary question and when it was set (aedepth.studies.record_question): which of the
# study's models were trained by then. Its params are the question and a fixed folder, so new
# seeds or depths never rerun it; a changed question reruns it and the comparison alone. A
# checkpoint, so that training waits for it only where no question.json exists (train.smk).
# update(): Snakemake keeps the file for the job, which keeps the record of an unchanged
# question (the job reruns when its code changes, which changes no question).
checkpoint declare_question:
    input:
        code=code_of("declare_question.py"),
    output:
        update(in_study(QUESTION)),
    log:
        in_study("logs/declare_question.log"),
    conda:
        ENV
    params:
        primary_metric=config["primary_metric"],
        smallest_difference=config["smallest_difference"],
        # a fixed string: the models trained by then are read when the job runs
        models=in_study("models"),
    script:
        "../scripts/declare_question.py"


rule compare_depths:
    input:
        summary=in_study("summary.csv"),
        question=in_study(QUESTION),
        per_image=of_runs("per_image"),
        code=code_of("compare_depths.py"),
    output:
        intervals=in_study("depth_intervals.csv"),
        comparisons=in_study("depth_comparisons.csv"),
        primary=in_study("primary_comparisons.csv"),
        findings=report(
            in_study("findings.md"),
            caption="../report/findings.rst",
            category="Metrics",
            labels={"figure": "findings"},
        ),
        # findings.md's headline sentences, which the report's home page includes from beside it
        headline=in_study("headline.rst"),
    log:
        in_study("logs/compare_depths.log"),
    conda:
        ENV
    params:
        conditions=GRID.conditions,
        labels=GRID.labels,
        omit=GRID.omitted,
        models=[run.id for run in GRID.models],
        question={
            "metric": config["primary_metric"],
            "smallest_difference": config["smallest_difference"],
        },
        dataset=config["dataset"],
        source=report_param(config["source"]),  # as the report can show it (aedepth.markup)
    script:
        "../scripts/compare_depths.py"

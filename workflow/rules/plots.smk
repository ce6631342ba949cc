# Figures: per group (a depth and its conditions, all seeds), combined, metrics against depth,
# training curves. The Snakemake report (snakemake --report results/report.html) groups them
# by category; its captions are the .rst files in workflow/report/.


report: "../report/workflow.rst"


localrules:
    plot_answer,
    plot_reconstructions,
    plot_latent,
    plot_combined,
    plot_metrics,
    plot_training,


rule plot_answer:
    input:
        intervals=in_study("depth_intervals.csv"),
        comparisons=in_study("depth_comparisons.csv"),
        primary=in_study("primary_comparisons.csv"),
        code=code_of("plot_answer.py"),
    output:
        answer=report(
            in_study("figures/answer.png"),
            caption="../report/answer.rst",
            category="1. Answer",
            labels={"figure": "the answer at a glance"},
        ),
        gap=report(
            in_study("figures/gap_vs_depth.png"),
            caption="../report/gap_vs_depth.rst",
            category="1. Answer",
            labels={"figure": "overfitting against depth"},
        ),
    log:
        in_study("logs/plot_answer.log"),
    benchmark:
        in_study("benchmarks/plot_answer.tsv")
    conda:
        ENV
    params:
        dpi=config["plot_dpi"],
        conditions=GRID.conditions,
        labels=GRID.labels,
    script:
        "../scripts/plot_answer.py"


rule plot_reconstructions:
    input:
        data=DATA_INPUT,
        data_id=DATA_ID,
        weights=of_group("weights"),
        hparams=of_group("hparams"),
        metrics=of_group("metrics"),
        code=code_of("plot_reconstructions.py"),
    output:
        report(
            in_study("figures/{group}_reconstructions.png"),
            caption="../report/depth_reconstructions.rst",
            category="Per depth",
            subcategory=lambda wildcards: group_setting(wildcards).capitalize(),
            labels=group_labels("reconstructions"),
        ),
    log:
        in_study("logs/plot_reconstructions/{group}.log"),
    benchmark:
        in_study("benchmarks/plot_reconstructions/{group}.tsv")
    conda:
        ENV
    params:
        digits=config["plot_digits"],
        dpi=config["plot_dpi"],
        labels=GRID.labels,
        omit=GRID.omitted,
        setting=group_setting,
        title="Test images (top) and their reconstructions",
    script:
        "../scripts/plot_reconstructions.py"


use rule plot_reconstructions as plot_combined with:
    input:
        data=DATA_INPUT,
        data_id=DATA_ID,
        weights=of_runs("weights"),
        hparams=of_runs("hparams"),
        metrics=of_runs("metrics"),
        code=code_of("plot_reconstructions.py"),
    output:
        report(
            in_study("figures/reconstructions.png"),
            caption="../report/reconstructions.rst",
            category="Combined",
            labels={"figure": "reconstructions, all depths"},
        ),
    log:
        in_study("logs/plot_combined.log"),
    benchmark:
        in_study("benchmarks/plot_combined.tsv")
    params:
        digits=config["plot_digits"],
        dpi=config["plot_dpi"],
        labels=GRID.labels,
        omit=GRID.omitted,
        setting="all settings",
        title="Test images (top) and their reconstructions, one row per depth and setting",


rule plot_latent:
    input:
        latents=of_group("latents"),
        metrics=of_group("metrics"),
        code=code_of("plot_latent.py"),
    output:
        report(
            in_study("figures/{group}_latent.png"),
            caption="../report/depth_latent.rst",
            category="Per depth",
            subcategory=lambda wildcards: group_setting(wildcards).capitalize(),
            labels=group_labels("latent space"),
        ),
    log:
        in_study("logs/plot_latent/{group}.log"),
    benchmark:
        in_study("benchmarks/plot_latent/{group}.tsv")
    conda:
        ENV
    params:
        dpi=config["plot_dpi"],
        classes=report_param(DATA["classes"]),  # as the report can show it (aedepth.markup)
        labels=GRID.labels,
        omit=GRID.omitted,
        setting=group_setting,
    script:
        "../scripts/plot_latent.py"


rule plot_metrics:
    input:
        summary=in_study("summary.csv"),
        code=code_of("plot_metrics.py"),
    output:
        report(
            in_study("figures/metrics_vs_depth.png"),
            caption="../report/metrics_vs_depth.rst",
            category="Metrics",
            labels={"figure": "metrics against depth"},
        ),
    log:
        in_study("logs/plot_metrics.log"),
    benchmark:
        in_study("benchmarks/plot_metrics.tsv")
    conda:
        ENV
    params:
        dpi=config["plot_dpi"],
        conditions=GRID.conditions,
        labels=GRID.labels,
    script:
        "../scripts/plot_metrics.py"


rule plot_training:
    input:
        histories=of_runs("history"),
        code=code_of("plot_training.py"),
    output:
        report(
            in_study("figures/training_curves.png"),
            caption="../report/training_curves.rst",
            category="Combined",
            labels={"figure": "training curves, all depths"},
        ),
    log:
        in_study("logs/plot_training.log"),
    benchmark:
        in_study("benchmarks/plot_training.tsv")
    conda:
        ENV
    params:
        dpi=config["plot_dpi"],
        records=[run.record() for run in GRID.models],
        labels=GRID.labels,
        omit=GRID.omitted,
    script:
        "../scripts/plot_training.py"

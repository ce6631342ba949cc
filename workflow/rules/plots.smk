# Figures: per depth, combined, metrics against depth, training curves.
# The Snakemake report (snakemake --report results/report.html) groups them by category;
# its captions are the .rst files in workflow/report/.


report: "../report/workflow.rst"


localrules:
    plot_reconstructions,
    plot_latent,
    plot_combined,
    plot_metrics,
    plot_training,


rule plot_reconstructions:
    input:
        data=DATASET,
        weights=per_seed(WEIGHTS),
        hparams=per_seed(HPARAMS),
        metrics=per_seed(METRICS),
        code=code_of("plot_reconstructions.py"),
    output:
        report(
            "results/figures/depth{depth}_dim{latent}_reconstructions.png",
            caption="../report/depth_reconstructions.rst",
            category="Per depth",
            subcategory="Depth {depth}, latent size {latent}",
            labels={
                "figure": "reconstructions",
                "depth": "{depth}",
                "latent size": "{latent}",
            },
        ),
    log:
        "results/logs/plot_reconstructions/depth{depth}_dim{latent}.log",
    benchmark:
        "results/benchmarks/plot_reconstructions/depth{depth}_dim{latent}.tsv"
    conda:
        ENV
    params:
        digits=config["plot_digits"],
        dpi=config["plot_dpi"],
        title=lambda wildcards: (
            f"Test images (top) reconstructed with {wildcards.depth} hidden layer(s), "
            f"latent size {wildcards.latent}"
        ),
    script:
        "../scripts/plot_reconstructions.py"


use rule plot_reconstructions as plot_combined with:
    input:
        data=DATASET,
        weights=per_model(WEIGHTS),
        hparams=per_model(HPARAMS),
        metrics=per_model(METRICS),
        code=code_of("plot_reconstructions.py"),
    output:
        report(
            "results/figures/reconstructions.png",
            caption="../report/reconstructions.rst",
            category="Combined",
            labels={"figure": "reconstructions, all depths"},
        ),
    log:
        "results/logs/plot_combined.log",
    benchmark:
        "results/benchmarks/plot_combined.tsv"
    params:
        digits=config["plot_digits"],
        dpi=config["plot_dpi"],
        title="Test images (top) and their reconstructions, one row per depth and latent size",


rule plot_latent:
    input:
        latents=per_seed(LATENTS),
        metrics=per_seed(METRICS),
        code=code_of("plot_latent.py"),
    output:
        report(
            "results/figures/depth{depth}_dim{latent}_latent.png",
            caption="../report/depth_latent.rst",
            category="Per depth",
            subcategory="Depth {depth}, latent size {latent}",
            labels={
                "figure": "latent space",
                "depth": "{depth}",
                "latent size": "{latent}",
            },
        ),
    log:
        "results/logs/plot_latent/depth{depth}_dim{latent}.log",
    benchmark:
        "results/benchmarks/plot_latent/depth{depth}_dim{latent}.tsv"
    conda:
        ENV
    params:
        dpi=config["plot_dpi"],
        classes=DATA["classes"],
    script:
        "../scripts/plot_latent.py"


rule plot_metrics:
    input:
        summary="results/summary.csv",
        intervals="results/depth_intervals.csv",
        code=code_of("plot_metrics.py"),
    output:
        report(
            "results/figures/metrics_vs_depth.png",
            caption="../report/metrics_vs_depth.rst",
            category="Metrics",
            labels={"figure": "metrics against depth"},
        ),
    log:
        "results/logs/plot_metrics.log",
    benchmark:
        "results/benchmarks/plot_metrics.tsv"
    conda:
        ENV
    params:
        dpi=config["plot_dpi"],
    script:
        "../scripts/plot_metrics.py"


rule plot_training:
    input:
        hparams=per_model(HPARAMS),
        histories=per_model(HISTORY),
        code=code_of("plot_training.py"),
    output:
        report(
            "results/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Combined",
            labels={"figure": "training curves, all depths"},
        ),
    log:
        "results/logs/plot_training.log",
    benchmark:
        "results/benchmarks/plot_training.tsv"
    conda:
        ENV
    params:
        dpi=config["plot_dpi"],
    script:
        "../scripts/plot_training.py"

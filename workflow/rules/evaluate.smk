# Latent embeddings and how well they separate the digits.


localrules:
    summarize,
    summary_table,
    compare_depths,


rule embed:
    input:
        data=DATASET,
        weights=WEIGHTS,
        hparams=HPARAMS,
        code=code_of("embed_latents.py"),
    output:
        LATENTS,
    log:
        "results/logs/embed/depth{depth}_dim{latent}_seed{seed}.log",
    benchmark:
        "results/benchmarks/embed/depth{depth}_dim{latent}_seed{seed}.tsv"
    conda:
        ENV
    params:
        dataset=config["dataset"],
        source=config["source"],
    script:
        "../scripts/embed_latents.py"


rule evaluate:
    input:
        data=DATASET,
        latents=LATENTS,
        weights=WEIGHTS,
        hparams=HPARAMS,
        history=HISTORY,
        code=code_of("evaluate_latents.py"),
    output:
        METRICS,
    log:
        "results/logs/evaluate/depth{depth}_dim{latent}_seed{seed}.log",
    benchmark:
        "results/benchmarks/evaluate/depth{depth}_dim{latent}_seed{seed}.tsv"
    conda:
        ENV
    params:
        metrics=metric_settings(),
    script:
        "../scripts/evaluate_latents.py"


rule pca_baseline:
    input:
        data=DATASET,
        code=code_of("pca_baseline.py"),
    output:
        PCA_METRICS,
    log:
        "results/logs/pca_baseline/dim{latent}.log",
    benchmark:
        "results/benchmarks/pca_baseline/dim{latent}.tsv"
    conda:
        ENV
    params:
        latent_dim=lambda wildcards: int(wildcards.latent),
        metrics=metric_settings(),
    script:
        "../scripts/pca_baseline.py"


rule summarize:
    input:
        metrics=[
            *per_model(METRICS),
            *expand(PCA_METRICS, latent=config["latent_dims"]),
        ],
        code=code_of("summarize.py"),
    output:
        report(
            "results/summary.csv",
            caption="../report/summary.rst",
            category="Metrics",
            labels={"figure": "summary table (CSV download)"},
        ),
    log:
        "results/logs/summarize.log",
    conda:
        ENV
    script:
        "../scripts/summarize.py"


rule summary_table:
    input:
        summary="results/summary.csv",
        code=code_of("summary_table.py"),
    output:
        report(
            "results/summary.html",
            caption="../report/summary.rst",
            category="Metrics",
            labels={"figure": "summary table"},
        ),
    log:
        "results/logs/summary_table.log",
    conda:
        ENV
    params:
        significant_digits=4,
    script:
        "../scripts/summary_table.py"


rule compare_depths:
    input:
        summary="results/summary.csv",
        code=code_of("compare_depths.py"),
    output:
        intervals="results/depth_intervals.csv",
        comparisons="results/depth_comparisons.csv",
        findings=report(
            "results/findings.md",
            caption="../report/findings.rst",
            category="Metrics",
            labels={"figure": "findings"},
        ),
    log:
        "results/logs/compare_depths.log",
    conda:
        ENV
    params:
        dataset=config["dataset"],
        source=config["source"],
    script:
        "../scripts/compare_depths.py"

# Latent embeddings and how well they separate the digits.


localrules:
    summarize,
    summary_table,


rule embed:
    input:
        data=DATASET,
        weights=WEIGHTS,
        hparams=HPARAMS,
        code=code_of("embed_latents.py"),
    output:
        LATENTS,
    log:
        "results/logs/embed/depth{depth}_seed{seed}.log",
    benchmark:
        "results/benchmarks/embed/depth{depth}_seed{seed}.tsv"
    conda:
        ENV
    params:
        source=config["source"],
    script:
        "../scripts/embed_latents.py"


rule evaluate:
    input:
        data=DATASET,
        latents=LATENTS,
        weights=WEIGHTS,
        hparams=HPARAMS,
        code=code_of("evaluate_latents.py"),
    output:
        METRICS,
    log:
        "results/logs/evaluate/depth{depth}_seed{seed}.log",
    benchmark:
        "results/benchmarks/evaluate/depth{depth}_seed{seed}.tsv"
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
        "results/metrics/pca.json",
    log:
        "results/logs/pca_baseline.log",
    benchmark:
        "results/benchmarks/pca_baseline.tsv"
    conda:
        ENV
    params:
        latent_dim=config["latent_dim"],
        metrics=metric_settings(),
    script:
        "../scripts/pca_baseline.py"


rule summarize:
    input:
        metrics=[*per_model(METRICS), "results/metrics/pca.json"],
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

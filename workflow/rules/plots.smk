# Figures: per depth, combined, metrics against depth, training curves.


localrules:
    plot_reconstructions,
    plot_latent,
    plot_combined,
    plot_metrics,
    plot_training,


rule plot_reconstructions:
    input:
        data=DATASET,
        weights=per_depth(MODEL_DIR + "/model.pt"),
        hparams=per_depth(MODEL_DIR + "/hparams.json"),
        metrics=per_depth(METRICS),
        code=code_of("plot_reconstructions.py"),
    output:
        report(
            "results/figures/depth{depth}_reconstructions.png",
            caption="../report/depth_reconstructions.rst",
            category="Per depth",
            subcategory="Depth {depth}",
        ),
    params:
        digits=config["plot_digits"],
        dpi=config["plot_dpi"],
        title=lambda wildcards: f"Test digits (top) reconstructed with {wildcards.depth} hidden layer(s)",
    log:
        "results/logs/plot_reconstructions/depth{depth}.log",
    conda:
        ENV
    script:
        "../scripts/plot_reconstructions.py"


use rule plot_reconstructions as plot_combined with:
    input:
        data=DATASET,
        weights=per_model(MODEL_DIR + "/model.pt"),
        hparams=per_model(MODEL_DIR + "/hparams.json"),
        metrics=per_model(METRICS),
        code=code_of("plot_reconstructions.py"),
    output:
        report(
            "results/figures/reconstructions.png",
            caption="../report/reconstructions.rst",
            category="Combined",
        ),
    params:
        digits=config["plot_digits"],
        dpi=config["plot_dpi"],
        title="Test digits (top) and their reconstructions, one row per depth",
    log:
        "results/logs/plot_combined.log",


rule plot_latent:
    input:
        latents=per_depth(LATENTS),
        metrics=per_depth(METRICS),
        code=code_of("plot_latent.py"),
    output:
        report(
            "results/figures/depth{depth}_latent.png",
            caption="../report/depth_latent.rst",
            category="Per depth",
            subcategory="Depth {depth}",
        ),
    params:
        dpi=config["plot_dpi"],
    log:
        "results/logs/plot_latent/depth{depth}.log",
    conda:
        ENV
    script:
        "../scripts/plot_latent.py"


rule plot_metrics:
    input:
        summary="results/summary.csv",
        code=code_of("plot_metrics.py"),
    output:
        report(
            "results/figures/metrics_vs_depth.png",
            caption="../report/metrics_vs_depth.rst",
            category="Metrics",
        ),
    params:
        dpi=config["plot_dpi"],
    log:
        "results/logs/plot_metrics.log",
    conda:
        ENV
    script:
        "../scripts/plot_metrics.py"


rule plot_training:
    input:
        hparams=per_model(MODEL_DIR + "/hparams.json"),
        histories=per_model(MODEL_DIR + "/history.csv"),
        code=code_of("plot_training.py"),
    output:
        report(
            "results/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Metrics",
        ),
    params:
        dpi=config["plot_dpi"],
    log:
        "results/logs/plot_training.log",
    conda:
        ENV
    script:
        "../scripts/plot_training.py"

# The latent explorer: one self-contained HTML page to browse the test set in the latent space
# of every model and baseline of the study (hover for images, select to count classes).


localrules:
    explorer,


rule explorer:
    input:
        data=DATA_INPUT,
        data_id=DATA_ID,
        latents=of_runs("latents", GRID.runs),
        weights=of_runs("weights"),
        hparams=of_runs("hparams"),
        code=code_of("make_explorer.py"),
    output:
        report(
            in_study("explorer.html"),
            caption="../report/explorer.rst",
            category="Latent explorer",
            labels={"figure": "latent explorer (interactive page)"},
        ),
    log:
        in_study("logs/explorer.log"),
    benchmark:
        in_study("benchmarks/explorer.tsv")
    conda:
        ENV
    params:
        points=config["explorer_points"],
        records=[run.record() for run in GRID.runs],
        classes=report_param(DATA["classes"]),  # as the report can show it (aedepth.markup)
        labels=GRID.labels,
        omit=GRID.omitted,
        dataset=config["dataset"],
    script:
        "../scripts/make_explorer.py"

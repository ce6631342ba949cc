# One autoencoder per (depth, seed).


rule train:
    input:
        data=DATASET,
        code=code_of("train_model.py"),
    output:
        weights=WEIGHTS,
        hparams=HPARAMS,
        history=HISTORY,
    log:
        "results/logs/train/depth{depth}_dim{latent}_seed{seed}.log",
    benchmark:
        "results/benchmarks/train/depth{depth}_dim{latent}_seed{seed}.tsv"
    conda:
        ENV
    threads: training_threads()
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        hparams=training_hparams,
        device=config["device"],
    script:
        "../scripts/train_model.py"

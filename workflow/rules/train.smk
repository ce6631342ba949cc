# One autoencoder per model run of the grid (see aedepth.grid).


rule train:
    input:
        data=DATASET,
        code=code_of("train_model.py"),
    output:
        weights=PATHS["weights"],
        hparams=PATHS["hparams"],
        history=PATHS["history"],
    log:
        "results/logs/train/{run}.log",
    benchmark:
        "results/benchmarks/train/{run}.tsv"
    conda:
        ENV
    threads: TRAINING_THREADS
    resources:
        mem_mb=2000,
        runtime=60,
        gpu=training_gpu(),
    params:
        hparams=lambda wildcards: training_hparams(run_of(wildcards), config),
        device=config["device"],
        compute_threads=TRAINING_COMPUTE_THREADS,
    script:
        "../scripts/train_model.py"

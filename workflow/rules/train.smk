# One autoencoder per (depth, seed).


rule train:
    input:
        data=DATASET,
        code=code_of("train_model.py"),
    output:
        weights=MODEL_DIR + "/model.pt",
        hparams=MODEL_DIR + "/hparams.json",
        history=MODEL_DIR + "/history.csv",
    params:
        hparams=training_hparams,
        device=config["device"],
    threads: training_threads()
    resources:
        mem_mb=2000,
        runtime=60,
    log:
        "results/logs/train/depth{depth}_seed{seed}.log",
    benchmark:
        "results/benchmarks/train/depth{depth}_seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/train_model.py"

# One autoencoder per model run of the grid (see aedepth.grid).
import time

import numpy as np


rule train:
    input:
        data=DATASET,
        code=code_of("train_model.py"),
    output:
        weights=GRID.pattern("weights"),
        hparams=GRID.pattern("hparams"),
        history=GRID.pattern("history"),
    log:
        in_study("logs/train/{run}.log"),
    benchmark:
        in_study("benchmarks/train/{run}.tsv")
    priority: lambda wildcards: training_priority(training_hparams(run_of(wildcards), config))
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


STARTED = time.time()


onsuccess:
    # One line on how close the training of this run came to the hardware (see
    # aedepth.efficiency); printed only where this run trained models. Never fails the run.
    try:
        from aedepth.efficiency import best_peak, study_line

        if Path(DATASET).exists():
            with np.load(DATASET) as dataset:
                images = len(dataset["y_train"])
            peak = lambda: best_peak(  # measured only where models were trained
                Path(".snakemake/aedepth-fp32-peak.json"), usable_cpus()
            )
            line = study_line(Path(STUDY), images, peak, since=STARTED)
            if line:
                print(line)
    except Exception as error:  # a summary line must never fail a finished study
        print(f"aedepth: no speed summary ({type(error).__name__}: {error})")

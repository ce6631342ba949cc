# One autoencoder per distinct training of the grid's model runs (see aedepth.grid).
import time


localrules:
    copy_training,


rule train:
    input:
        data=DATA_INPUT,
        data_id=DATA_ID,
        # a new study records its question first (question_first, common.smk)
        question=question_first,
        code=code_of("train_model.py"),
    output:
        weights=GRID.pattern("weights"),
        hparams=GRID.pattern("hparams"),
        history=GRID.pattern("history"),
    log:
        in_study("logs/train/{run}.log"),
    benchmark:
        in_study("benchmarks/train/{run}.tsv")
    wildcard_constraints:
        run=one_of(run.id for run in GRID.trained),
    priority:
        lambda wildcards: training_priority(
            training_hparams(run_of(wildcards), config, IMAGE_SHAPE)
        )
    conda:
        ENV
    threads: training_cores()
    resources:
        # its estimate (aedepth.memory): trainings that cannot fit are refused at parse time
        mem_mb=training_mem_mb,
        runtime=60,
        gpu=training_gpu(),
    params:
        hparams=lambda wildcards: training_hparams(
            run_of(wildcards), config, IMAGE_SHAPE
        ),
        device=config["device"],
        # declared settings that can change the bits (see aedepth.hardware): never --cores
        threads=config["training_threads"],
        matmul_route=config["matmul_route"],
    script:
        "../scripts/train_model.py"


# A model run whose training another run of the grid does (GRID.trained_as: same widths, seed
# and settings, e.g. the matched arm's deepest model is the article's): its files are that
# run's, copied, with its own hyperparameters; not a second training of the same model.
rule copy_training:
    input:
        weights=lambda wildcards: trained_by(wildcards).path("weights"),
        hparams=lambda wildcards: trained_by(wildcards).path("hparams"),
        history=lambda wildcards: trained_by(wildcards).path("history"),
        code=code_of("copy_training.py"),
    output:
        weights=GRID.pattern("weights"),
        hparams=GRID.pattern("hparams"),
        history=GRID.pattern("history"),
    log:
        in_study("logs/copy_training/{run}.log"),
    wildcard_constraints:
        run=one_of(run.id for run in GRID.copied),
    conda:
        ENV
    params:
        hparams=lambda wildcards: training_hparams(
            run_of(wildcards), config, IMAGE_SHAPE
        ),
        trained_as=lambda wildcards: trained_by(wildcards).id,
    script:
        "../scripts/copy_training.py"


STARTED = time.time()


onsuccess:
    # One line on how fast this run trained (see aedepth.efficiency); printed only where it
    # trained models, against the fp32 peak benchmarks/train_speed.py last measured, if any.
    try:
        from aedepth.efficiency import benchmarked_peak, study_line

        if Path(DATASET).exists():
            import numpy as np

            with np.load(DATASET) as dataset:
                images = len(dataset["y_train"])
            peak = benchmarked_peak(Path("benchmarks/results.csv"))
            line = study_line(Path(STUDY), images, peak, since=STARTED)
            if line:
                print(line)
    except Exception as error:  # a summary line must never fail a finished study
        print(f"aedepth: no speed summary ({type(error).__name__}: {error})")

# Obtain MNIST once, verified, as one uint8 array file that every later rule reads.


localrules:
    download_idx,


rule download_idx:
    output:
        in_data("idx/{name}"),
    log:
        in_data("logs/download_idx/{name}.log"),
    benchmark:
        in_data("benchmarks/download_idx/{name}.tsv")
    wildcard_constraints:
        name="|".join(IDX_NAMES),
    conda:
        ENV
    params:
        mirrors=DATA["mirrors"],
        md5=lambda wildcards: DATA["checksums"][wildcards.name],
        retries=config["download_retries"],
        timeout=config["download_timeout"],
    script:
        "../scripts/download_idx.py"


rule prepare_data:
    input:
        idx=source_files,
        code=code_of("prepare_data.py"),
    output:
        data=DATASET,
        fingerprint=DATA_ID,
    log:
        in_data("logs/prepare_data.log"),
    benchmark:
        in_data("benchmarks/prepare_data.tsv")
    conda:
        ENV
    params:
        # Only what this source reads, so that editing the other's setting reruns nothing.
        source=config["source"],
        checksums=None if config["source"] == "sample" else DATA["checksums"],
        sample_test_fraction=(
            config["sample_test_fraction"] if config["source"] == "sample" else None
        ),
    script:
        "../scripts/prepare_data.py"

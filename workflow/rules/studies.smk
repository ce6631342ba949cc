# Studies side by side: each study's config snapshot, and `snakemake compare`, which tabulates
# every finished study under results/ (see aedepth.studies).


localrules:
    study_snapshot,
    compare,


rule study_snapshot:
    input:
        code=code_of("snapshot_study.py"),
    output:
        in_study(SNAPSHOT),
    log:
        in_study("logs/study_snapshot.log"),
    conda:
        ENV
    params:
        # the whole config: the snapshot is rewritten whenever a value changes
        config=config,
        study=Path(STUDY).name,
    script:
        "../scripts/snapshot_study.py"


# `snakemake compare` tabulates the finished studies it finds and builds nothing else: their
# files are read, not inputs (inputs would make Snakemake rebuild a stale one first).
rule compare:
    input:
        code=code_of("compare_studies.py"),
    output:
        table=f"{RESULTS}/studies.csv",
        page=f"{RESULTS}/studies.html",
    log:
        f"{RESULTS}/logs/compare.log",
    conda:
        ENV
    params:
        studies=compared_studies(),
    script:
        "../scripts/compare_studies.py"

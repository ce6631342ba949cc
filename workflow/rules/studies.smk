# Studies side by side: each study's config snapshot, and `snakemake compare`, which tabulates
# every study under results/ (see aedepth.studies).


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


# Looked for once, so that the snapshots and intervals name the same studies.
COMPARED = compared_studies()


rule compare:
    input:
        snapshots=[f"{study}/{SNAPSHOT}" for study in COMPARED],
        intervals=[f"{study}/{INTERVALS}" for study in COMPARED],
        # builds this study to the end first
        study=final_outputs(),
        code=code_of("compare_studies.py"),
    output:
        table=f"{RESULTS}/studies.csv",
        page=f"{RESULTS}/studies.html",
    log:
        f"{RESULTS}/logs/compare.log",
    conda:
        ENV
    script:
        "../scripts/compare_studies.py"

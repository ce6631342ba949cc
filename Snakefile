# aedepth: how does the number of hidden layers change an autoencoder's latent space?
# The stages live in workflow/rules/; the logic in the package workflow/scripts/aedepth/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/explore.smk"
include: "workflow/rules/studies.smk"


rule all:
    default_target: True
    input:
        final_outputs(),

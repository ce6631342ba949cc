"""Snakemake adapter: a model run whose model another run trained (the same training) gets
that run's weights and history, and its own hparams.json (see aedepth.grid.trained_as)."""

import logging

from aedepth.files import copy_file, read_json, write_json
from aedepth.grid import copied_hparams
from aedepth.jobs import job_log

with job_log(snakemake.log[0]):
    logging.getLogger("aedepth").info(
        "the same training as %s: its model, not a second training", snakemake.params.trained_as
    )
    copy_file(snakemake.input.weights, snakemake.output.weights)
    copy_file(snakemake.input.history, snakemake.output.history)
    write_json(
        snakemake.output.hparams,
        copied_hparams(
            snakemake.params.hparams,
            read_json(snakemake.input.hparams, ("widths",)),
            snakemake.params.trained_as,
        ),
    )

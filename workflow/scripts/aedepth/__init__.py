"""aedepth: the domain logic of the depth study, as plain functions on arrays and files.

The Snakemake scripts in workflow/scripts/ are thin adapters around this package.
"""

import os

# MKL's strict conditional numerical reproducibility: its fp32 matmuls give the same bits on
# any number of threads (on one CPU type), so a model's weights do not depend on --cores, a
# run resumed on another thread count ends as if uninterrupted, and a study's last training
# job may take the CPUs its finished peers left free (aedepth.train proves the bits equal
# before it does). Without it, MKL splits some reductions by thread: on an Intel Xeon the
# depth-3 decoder's input gradient (128x784 @ 784x500) differed between 1 and 2 threads.
# MKL documents this for its AVX2 and AVX-512 branches of Intel CPUs; elsewhere the check
# in aedepth.train decides. MKL reads the mode at its first call, hence here, on import,
# before any matmul; a value the user set is kept. Measured on that Xeon: no cost.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

"""aedepth: the domain logic of the depth study, as plain functions on arrays and files.

The Snakemake scripts in workflow/scripts/ are thin adapters around this package.
"""

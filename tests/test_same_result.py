"""One config, one result: a model's weights do not depend on --cores, on repeated runs, or on
anything in the home folder (the speed-choice cache of earlier versions included)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

CONFIG = ["--config", "source=sample", "epochs=1", "depths=[1]", "seeds=[0]"]
MODEL = Path("results/mnist-sample/models/depth1_dim2_seed0")
# What earlier versions remembered in ~/.cache/aedepth/speed-choices.json: a route and path.
OLD_CACHE = {"any": {"choice": ["autograd", "onednn-fp32"], "probe_ms_per_step": {}}}


def home_with(tmp_path: Path, name: str, cache: str | None) -> str:
    home = tmp_path / name
    if cache is not None:
        (home / ".cache/aedepth").mkdir(parents=True)
        (home / ".cache/aedepth/speed-choices.json").write_text(cache)
    home.mkdir(exist_ok=True)
    return str(home)


def trained_hash(workdir: Path, cores: str, home: str, **env: str) -> str:
    """Train the one model afresh with HOME `home`; the sha256 of its model.pt."""
    for name in ("model.pt", "hparams.json", "history.csv"):
        (workdir / MODEL / name).unlink(missing_ok=True)
    snakemake(workdir, "--cores", cores, str(MODEL / "model.pt"), *CONFIG, env={"HOME": home} | env)
    return hashlib.sha256((workdir / MODEL / "model.pt").read_bytes()).hexdigest()


def test_one_config_trains_one_model_whatever_the_cores_the_runs_or_the_home_folder(tmp_path):
    workdir = copy_workflow(tmp_path / "study")
    plain = home_with(tmp_path, "plain", None)
    hashes = {
        "first": trained_hash(workdir, "2", plain),
        "again": trained_hash(workdir, "2", plain),
        "old cache": trained_hash(workdir, "2", home_with(tmp_path, "old", json.dumps(OLD_CACHE))),
        "cache not an object": trained_hash(workdir, "2", home_with(tmp_path, "list", "[1, 2]")),
        "cache garbage": trained_hash(workdir, "2", home_with(tmp_path, "garbage", "{not json")),
        # a home folder nothing can be created in (as root, a read-only folder still is);
        # Snakemake's own source cache goes elsewhere, as on a cluster with a read-only home
        "home unwritable": trained_hash(
            workdir, "2", "/dev/null/home", XDG_CACHE_HOME=str(tmp_path / "snakemake-cache")
        ),
        "--cores 1": trained_hash(workdir, "1", plain),
    }
    assert len(set(hashes.values())) == 1, hashes
    hparams = json.loads((workdir / MODEL / "hparams.json").read_text())
    assert hparams["threads"] == 1 and hparams["hardware_class"].startswith("cpu: ")
    assert not (Path(plain) / ".cache/aedepth").exists()  # nothing of ours in the home folder
    assert not (tmp_path / "snakemake-cache/aedepth").exists()

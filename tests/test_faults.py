"""Bad input, faults and untrusted files, through the real `snakemake` command line.

Each bad config must stop Snakemake before any job with one exact line; each data fault must
fail its job with one "aedepth error: ..." line and leave no complete-looking file; a training
job killed with SIGKILL must resume to the same history and weights; a second snakemake in the
same folder must be refused by the lock without disturbing the first; and nothing is unpickled.
"""

from __future__ import annotations

import ast
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from layouts import ALL_KEYS
from conftest import REPO, copy_workflow, snakemake
from idx_server import (
    IDX_NAMES,
    closed_port_url,
    fake_mnist_arrays,
    idx_bytes,
    serve_folder,
    write_fake_mnist,
)

from aedepth.jobs import UserFacingError
from aedepth.model import build_model, load_model
from aedepth.train import TrainingDiverged, train

SAMPLE = ("--cores", "2", "--config", "source=sample")
# The job that prepares the data, as a target: its file's folder under results/data is named
# by the source and checksums (aedepth.config.data_folder), so tests look for it by name.
PREPARE = "prepare_data"
# The sample study's folder: its default name is the dataset's, -sample for the sample source.
STUDY = "results/mnist-sample"
WEIGHTS = f"{STUDY}/models/depth1_dim2_seed0/model.pt"
OFFLINE_HINT = (
    "or work offline with --config source=sample or source=/path/to/folder/with/idx/files"
)


def output_of(run: subprocess.CompletedProcess) -> str:
    # Snakemake 9 logs its own errors on stdout; job scripts write to the inherited stderr.
    return run.stdout + run.stderr


def lines_starting(run: subprocess.CompletedProcess, prefix: str) -> list[str]:
    return [line for line in output_of(run).splitlines() if line.startswith(prefix)]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --- bad config: one line, no job ------------------------------------------------------------

# (--config arguments as a user types them, the exact line Snakemake shows)
BAD_CLI_CONFIGS = {
    "typo epoch=5": (
        ["epoch=5"],
        f"aedepth: unknown config key(s) 'epoch': allowed keys are {ALL_KEYS}",
    ),
    "depths=[0]": (
        ["depths=[0]"],
        "aedepth: config key 'depths[0]' = 0 is invalid (0 is less than the minimum of 1): "
        "use a non-empty list of distinct integers >= 1, e.g. [1, 2, 3]",
    ),
    "depths=[1,-1]": (
        ["depths=[1,-1]"],
        "aedepth: config key 'depths[1]' = -1 is invalid (-1 is less than the minimum of 1): "
        "use a non-empty list of distinct integers >= 1, e.g. [1, 2, 3]",
    ),
    "depths=[]": (
        ["depths=[]"],
        "aedepth: config key 'depths' = [] is invalid ([] should be non-empty): "
        "use a non-empty list of distinct integers >= 1, e.g. [1, 2, 3]",
    ),
    "depths=[2,2]": (
        ["depths=[2,2]"],
        "aedepth: config key 'depths' = [2, 2] is invalid ([2, 2] has non-unique elements): "
        "use a non-empty list of distinct integers >= 1, e.g. [1, 2, 3]",
    ),
    "depths=[1,2,4] with 3 hidden_sizes": (
        ["depths=[1,2,4]"],
        "aedepth: config key 'hidden_sizes' has 3 widths but 'depths' asks for depth 4: "
        "give at least 4 widths or drop that depth",
    ),
    "latent_dims=[0]": (
        ["latent_dims=[0]"],
        "aedepth: config key 'latent_dims[0]' = 0 is invalid (0 is less than the minimum of 1): "
        "use a non-empty list of distinct integers >= 1, e.g. [2] or [2, 8]",
    ),
    "epochs=0": (
        ["epochs=0"],
        "aedepth: config key 'epochs' = 0 is invalid (0 is less than the minimum of 1): "
        "use an integer >= 1",
    ),
    "epochs=-2": (
        ["epochs=-2"],
        "aedepth: config key 'epochs' = -2 is invalid (-2 is less than the minimum of 1): "
        "use an integer >= 1",
    ),
    "epochs=2.0": (
        ["epochs=2.0"],
        "aedepth: config key 'epochs' = 2.0 is invalid (2.0 is not of type 'integer'): "
        "use an integer >= 1",
    ),
    "batch_size=0": (
        ["batch_size=0"],
        "aedepth: config key 'batch_size' = 0 is invalid (0 is less than the minimum of 1): "
        "use an integer >= 1",
    ),
    "learning_rate=0": (
        ["learning_rate=0"],
        "aedepth: config key 'learning_rate' = 0 is invalid "
        "(0 is less than or equal to the minimum of 0): use a number > 0",
    ),
    "learning_rate=-1e-3": (
        ["learning_rate=-1e-3"],
        "aedepth: config key 'learning_rate' = -0.001 is invalid "
        "(-0.001 is less than or equal to the minimum of 0): use a number > 0",
    ),
    "learning_rate=nan": (
        ["learning_rate=nan"],
        "aedepth: config key 'learning_rate' = nan is not a finite number: use a number > 0",
    ),
    "source missing folder": (
        ["source=/no/such/mnist"],
        "aedepth: config key 'source' = '/no/such/mnist' is neither 'download', 'sample', an "
        "existing folder nor an .npz file: give a folder with the four IDX files, an image "
        "folder (train/<class>/, test/<class>/) or an .npz",
    ),
    "mirrors=[ftp://...]": (
        ["source=download", "mirrors=[ftp://example.org/mnist/]"],
        "aedepth: config key 'mirrors[0]' = 'ftp://example.org/mnist/' is invalid "
        "('ftp://example.org/mnist/' does not match '^https?://\\\\S+$'): "
        "use [] (the dataset's own mirrors) or a list of http(s) URLs, "
        "each the folder holding the *.gz IDX files",
    ),
    "mirrors=[example.org/mnist]": (
        ["source=download", "mirrors=[example.org/mnist]"],
        "aedepth: config key 'mirrors[0]' = 'example.org/mnist' is invalid "
        "('example.org/mnist' does not match '^https?://\\\\S+$'): "
        "use [] (the dataset's own mirrors) or a list of http(s) URLs, "
        "each the folder holding the *.gz IDX files",
    ),
    "seeds=[zero]": (
        ["seeds=[zero]"],
        "aedepth: config key 'seeds[0]' = 'zero' is invalid ('zero' is not of type 'integer'): "
        "use a non-empty list of distinct integers >= 0, e.g. [0, 1, 2]",
    ),
    "seeds=[0,1.5]": (
        ["seeds=[0,1.5]"],
        "aedepth: config key 'seeds[1]' = 1.5 is invalid (1.5 is not of type 'integer'): "
        "use a non-empty list of distinct integers >= 0, e.g. [0, 1, 2]",
    ),
    "study=data": (
        ["study=data"],
        "aedepth: config key 'study' = 'data' is the name of results/data, which every study "
        "shares: set 'study' to another name (not data, logs, studies.csv, studies.html)",
    ),
    "study=a/b": (
        ["study=a/b"],
        "aedepth: config key 'study' = 'a/b' is not a folder name: set 'study' to letters, "
        "digits, '.', '_', '+' or '-', starting with a letter or digit",
    ),
    "smallest_difference=1": (
        ["smallest_difference=1"],
        "aedepth: config key 'smallest_difference' = 1 is not smaller than knn_accuracy's "
        "range [0, 1]: use a difference that matters in its units, e.g. 0.01",
    ),
    "device=tpu": (
        ["device=tpu"],
        "aedepth: config key 'device' = 'tpu' is invalid "
        "('tpu' is not one of ['auto', 'cpu', 'cuda']): use one of auto, cpu, cuda",
    ),
}


def assert_refused_before_any_job(workdir: Path, run, message: str) -> None:
    assert run.returncode == 1, output_of(run)
    assert lines_starting(run, "aedepth") == [message], output_of(run)
    assert "Traceback" not in output_of(run)
    assert not (workdir / "results").exists(), files_under(workdir / "results")


@pytest.mark.workflow
@pytest.mark.parametrize(("args", "message"), BAD_CLI_CONFIGS.values(), ids=BAD_CLI_CONFIGS.keys())
def test_bad_config_stops_snakemake_with_one_line(workflow_dir, args, message):
    run = snakemake(workflow_dir, *SAMPLE, *args, check=False)
    assert_refused_before_any_job(workflow_dir, run, message)


@pytest.mark.workflow
def test_bad_configfile_stops_snakemake_with_one_line(workflow_dir, tmp_path):
    configfile = tmp_path / "mine.yaml"
    configfile.write_text("source: sample\nepoch: 5\nlearning_rate: 1e-3\n")
    run = snakemake(workflow_dir, "--cores", "2", "--configfile", str(configfile), check=False)
    message = f"aedepth: unknown config key(s) 'epoch': allowed keys are {ALL_KEYS}"
    assert_refused_before_any_job(workflow_dir, run, message)
    configfile.write_text("source: sample\nlearning_rate: 1e-3\n")
    run = snakemake(workflow_dir, "--cores", "2", "--configfile", str(configfile), check=False)
    message = (
        "aedepth: config key 'learning_rate' = '1e-3' is invalid ('1e-3' is not of type "
        "'number'; YAML reads 1e-3 as text, write 1.0e-3): use a number > 0"
    )
    assert_refused_before_any_job(workflow_dir, run, message)


@pytest.mark.workflow
def test_cli_lists_of_numbers_are_accepted(workflow_dir):
    run = snakemake(
        workflow_dir, "-n", *SAMPLE, "depths=[1,2,4]", "hidden_sizes=[64,32,16,8]", "seeds=[0,3]"
    )
    planned = output_of(run)
    for depth in (1, 2, 4):
        for seed in (0, 3):
            assert f"{STUDY}/models/depth{depth}_dim2_seed{seed}/model.pt" in planned
    assert "depth3_dim2_seed" not in planned
    assert not (workflow_dir / "results").exists()


# --- data faults -----------------------------------------------------------------------------


def prepared(workdir: Path) -> list[Path]:
    """Every prepared dataset under results/data (each data folder holds at most one)."""
    return sorted((workdir / "results/data").rglob("dataset.npz"))


def write_configfile(folder: Path, **config) -> Path:
    path = folder / "faults.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def mirror_site(tmp_path):
    """One HTTP server; mirror folders good/ (intact files), missing/ (404), err/ (500), slow/."""
    checksums = write_fake_mnist(tmp_path / "site" / "good", n_train=60, n_test=20)
    status = {f"/err/{name}.gz": 500 for name in IDX_NAMES}
    delay = {f"/slow/{name}.gz": 60.0 for name in IDX_NAMES}
    requests: list[str] = []
    with serve_folder(tmp_path / "site", status=status, delay=delay, requests=requests) as base:
        yield base, checksums, requests


def download_config(tmp_path, mirrors, checksums):
    return write_configfile(
        tmp_path,
        source="download",
        mirrors=mirrors,
        checksums=checksums,
        download_retries=1,
        download_timeout=2,  # generous: a loaded CI host must not time out the others
    )


@pytest.mark.workflow
def test_each_failing_mirror_falls_through_to_the_next(tmp_path, workflow_dir, mirror_site):
    base, checksums, requests = mirror_site
    refused = closed_port_url()
    mirrors = [f"{refused}/", f"{base}/missing/", f"{base}/err/", f"{base}/slow/", f"{base}/good/"]
    configfile = download_config(tmp_path, mirrors, checksums)
    snakemake(workflow_dir, PREPARE, "--cores", "2", "--configfile", str(configfile))
    [data] = (workflow_dir / "results/data").iterdir()
    for name, md5 in checksums.items():
        raw = (data / "idx" / name).read_bytes()
        assert hashlib.md5(raw).hexdigest() == md5
        for mirror in ("missing", "err", "slow", "good"):
            assert requests.count(f"/{mirror}/{name}.gz") == 1
        log = (data / f"logs/download_idx/{name}.log").read_text()
        assert f"{refused}/{name}.gz: [Errno 111] Connection refused" in log
        assert f"{base}/missing/{name}.gz: HTTP 404" in log
        assert f"{base}/err/{name}.gz: HTTP 500" in log
        assert f"{base}/slow/{name}.gz: timed out after 2 s" in log
        assert f"{base}/good/{name}.gz: " in log and "MD5 ok" in log
    assert prepared(workflow_dir) == [data / "dataset.npz"]


@pytest.mark.workflow
def test_all_mirrors_failing_is_one_line_and_no_file(tmp_path, workflow_dir, mirror_site):
    base, checksums, _ = mirror_site
    refused = closed_port_url()
    mirrors = [f"{refused}/", f"{base}/missing/", f"{base}/err/", f"{base}/slow/"]
    configfile = download_config(tmp_path, mirrors, checksums)
    run = snakemake(
        workflow_dir, PREPARE, "--cores", "2", "--configfile", str(configfile), check=False
    )
    assert run.returncode != 0
    errors = lines_starting(run, "aedepth error:")
    assert errors, output_of(run)
    for line in errors:  # one line per download job that ran (Snakemake stops starting new ones)
        name = line.split("could not obtain ")[1].split(" ")[0]
        assert line == (
            f"aedepth error: could not obtain {name} from any mirror ("
            f"{refused}/: [Errno 111] Connection refused; {base}/missing/: HTTP 404; "
            f"{base}/err/: HTTP 500; {base}/slow/: timed out after 2 s); "
            f"check the network or the `mirrors:` list, {OFFLINE_HINT}"
        )
    assert len(set(errors)) == len(errors)
    # no complete-looking (or partial) file anywhere under results/data: only the jobs' logs
    [data] = (workflow_dir / "results/data").iterdir()
    assert [name for name in files_under(data) if not name.startswith("logs/")] == []


@pytest.mark.workflow
def test_truncated_download_is_rejected_naming_the_file(tmp_path, workflow_dir):
    served = tmp_path / "site"
    checksums = write_fake_mnist(served, n_train=60, n_test=20)
    gz = served / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])  # honest Content-Length, cut file
    with serve_folder(served) as base:
        configfile = download_config(tmp_path, [f"{base}/"], checksums)
        run = snakemake(
            workflow_dir, PREPARE, "--cores", "1", "--configfile", str(configfile), check=False
        )
    assert run.returncode != 0
    assert lines_starting(run, "aedepth error:") == [
        f"aedepth error: could not obtain train-images-idx3-ubyte from any mirror ({base}/: "
        "corrupt gzip for train-images-idx3-ubyte); "
        f"check the network or the `mirrors:` list, {OFFLINE_HINT}"
    ]
    assert not list((workflow_dir / "results/data").rglob("train-images-idx3-ubyte"))
    assert prepared(workflow_dir) == []


def write_idx_folder(folder: Path, arrays: dict[str, np.ndarray], edit=None) -> dict[str, str]:
    """Write raw IDX files; `edit` may change one file's bytes. Return name -> MD5 of what is written."""
    folder.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for name, array in arrays.items():
        raw = idx_bytes(array)
        if edit is not None:
            raw = edit(name, raw)
        (folder / name).write_bytes(raw)
        md5s[name] = hashlib.md5(raw).hexdigest()
    return md5s


def run_folder_source(tmp_path, workdir, folder, checksums):
    configfile = write_configfile(tmp_path, source=str(folder), checksums=checksums)
    return snakemake(workdir, PREPARE, "--cores", "1", "--configfile", str(configfile), check=False)


@pytest.mark.workflow
@pytest.mark.parametrize("fault", ["altered", "truncated"])
def test_folder_file_failing_its_checksum_is_named(tmp_path, workflow_dir, fault):
    folder = tmp_path / "mnist"
    checksums = write_idx_folder(folder, fake_mnist_arrays())
    path = folder / "t10k-labels-idx1-ubyte"
    raw = path.read_bytes()
    raw = raw[:-1] + bytes([(raw[-1] + 1) % 10]) if fault == "altered" else raw[:-5]
    path.write_bytes(raw)
    run = run_folder_source(tmp_path, workflow_dir, folder, checksums)
    assert run.returncode != 0
    assert lines_starting(run, "aedepth error:") == [
        f"aedepth error: {path}: MD5 {hashlib.md5(raw).hexdigest()} does not match the expected "
        f"{checksums['t10k-labels-idx1-ubyte']}: the file is truncated or altered, or `checksums` "
        "holds the MD5s of other files; replace it with an intact copy or correct the checksum "
        "of t10k-labels-idx1-ubyte"
    ]
    assert prepared(workflow_dir) == []


def bad_magic(name, raw):
    return b"\xff\xff" + raw[2:] if name == "train-images-idx3-ubyte" else raw


def wrong_shape(arrays):
    return arrays | {"train-images-idx3-ubyte": arrays["train-images-idx3-ubyte"][:, :27, :27]}


def label_ten(arrays):
    labels = arrays["train-labels-idx1-ubyte"].copy()
    labels[7] = 10
    return arrays | {"train-labels-idx1-ubyte": labels}


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("change", "edit", "message"),
    [
        (
            None,
            bad_magic,
            "train-images-idx3-ubyte: not an IDX file (bad magic ffff0803); "
            "expected an MNIST IDX file",
        ),
        (
            wrong_shape,
            None,
            "x_train: expected uint8 images of shape (N, 28, 28), found uint8 (60, 27, 27)",
        ),
        (label_ten, None, "y_train: labels must be 0..9, found 0..10"),
    ],
    ids=["bad-magic", "wrong-shape", "label-10"],
)
def test_folder_with_wrong_files_is_a_clear_error(tmp_path, workflow_dir, change, edit, message):
    arrays = fake_mnist_arrays()
    if change is not None:
        arrays = change(arrays)
    folder = tmp_path / "mnist"
    checksums = write_idx_folder(folder, arrays, edit)  # checksums match: the content is wrong
    run = run_folder_source(tmp_path, workflow_dir, folder, checksums)
    assert run.returncode != 0
    assert lines_starting(run, "aedepth error:") == [f"aedepth error: {message}"]
    assert prepared(workflow_dir) == []


# --- training: SIGKILL and resume, divergence --------------------------------------------------

# Long enough (about 10 s of training on the sample) that a kill after epoch 2, or a second
# snakemake started once the first holds the lock, always lands while training still runs:
# with 5 epochs the margin was about 50 ms and the tests raced the machine.
EPOCHS = 30
TRAIN_ARGS = (
    "--config", "source=sample", "depths=[1]", "hidden_sizes=[128]", f"epochs={EPOCHS}", "device=cpu"
)  # fmt: skip


def wait_for(condition, process, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"snakemake ended ({process.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_snakemake(workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "snakemake"), *args],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so the test can kill it all
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )


def history_and_weights(workdir: Path):
    folder = workdir / STUDY / "models/depth1_dim2_seed0"
    history = pd.read_csv(folder / "history.csv")[["epoch", "train_loss", "test_loss"]]
    return history, torch.load(folder / "model.pt", map_location="cpu", weights_only=True)


@pytest.mark.workflow
def test_sigkilled_training_resumes_to_the_same_result(tmp_path):
    killed = copy_workflow(tmp_path / "killed")
    train_log = killed / STUDY / "logs/train/depth1_dim2_seed0.log"
    checkpoint = killed / (WEIGHTS + ".checkpoint")
    run = start_snakemake(killed, WEIGHTS, "--cores", "2", *TRAIN_ARGS)
    wait_for(
        lambda: checkpoint.exists() and f"epoch 2/{EPOCHS}" in train_log.read_text(),
        run,
        timeout=300,
        what="epoch 2 to be checkpointed",
    )
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate()
    assert not (killed / WEIGHTS).exists(), "training finished before it could be killed"
    # Exactly what Snakemake tells the user to type: no --cores, no --config.
    unlocked = snakemake(killed, "--unlock")
    assert "Unlocked working directory" in output_of(unlocked)
    resumed = snakemake(killed, WEIGHTS, "--cores", "2", "--rerun-incomplete", *TRAIN_ARGS)
    log = train_log.read_text()
    assert "resuming from" in log, output_of(resumed)
    after = int(log.split("resuming from")[1].split("after epoch ")[1].split()[0])
    assert 1 <= after < EPOCHS
    assert f"epoch 1/{EPOCHS}" not in log.split("resuming from")[1]
    assert f"epoch {after + 1}/{EPOCHS}" in log
    assert not checkpoint.exists()  # finished outputs supersede it

    uninterrupted = copy_workflow(tmp_path / "uninterrupted")
    snakemake(uninterrupted, WEIGHTS, "--cores", "2", *TRAIN_ARGS)

    history, weights = history_and_weights(killed)
    reference_history, reference_weights = history_and_weights(uninterrupted)
    assert history["epoch"].tolist() == list(range(1, EPOCHS + 1))
    pd.testing.assert_frame_equal(history, reference_history, check_exact=True)
    assert weights.keys() == reference_weights.keys()
    for key in weights:
        assert torch.equal(weights[key], reference_weights[key]), key


@pytest.mark.workflow
def test_diverging_loss_stops_the_job_naming_the_epoch(workflow_dir):
    run = snakemake(
        workflow_dir,
        WEIGHTS,
        *SAMPLE,
        "depths=[1]",
        "epochs=2",
        "learning_rate=1e38",
        check=False,
    )
    assert run.returncode != 0
    assert lines_starting(run, "aedepth error:") == [
        "aedepth error: training loss became nan in epoch 1: "
        "lower learning_rate (or batch_size) and run again"
    ]
    assert not (workflow_dir / WEIGHTS).exists()
    assert not (workflow_dir / STUDY / "models/depth1_dim2_seed0/history.csv").exists()


def test_loss_turning_nan_later_names_that_epoch_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    """Weights turned NaN just before epoch 3 (through public hooks, not the loss internals)."""
    import aedepth.train

    models = []

    def recording_build_model(hparams):
        models.append(build_model(hparams))
        return models[-1]

    def progress(epochs):
        for epoch in epochs:
            if epoch == 3:
                with torch.no_grad():
                    for parameter in models[0].parameters():
                        parameter.fill_(float("nan"))
            yield epoch

    monkeypatch.setattr(aedepth.train, "build_model", recording_build_model)
    arrays = fake_mnist_arrays(n_train=64, n_test=16)
    hparams = {
        "depth": 1, "widths": [8], "latent_dim": 2, "epochs": 5,
        "batch_size": 32, "learning_rate": 0.01, "seed": 0,
    }  # fmt: skip
    checkpoint = tmp_path / "model.pt.checkpoint"
    with pytest.raises(TrainingDiverged) as caught:
        train(
            hparams, arrays[IDX_NAMES[0]], arrays[IDX_NAMES[1]], arrays[IDX_NAMES[2]],
            checkpoint, torch.device("cpu"), progress,
        )  # fmt: skip
    assert str(caught.value) == (
        "training loss became nan in epoch 3: lower learning_rate (or batch_size) and run again"
    )
    state = torch.load(checkpoint, weights_only=True)
    assert [row["epoch"] for row in state["history"]] == [1, 2]  # nothing lost before epoch 3


# --- untrusted files: nothing is unpickled ------------------------------------------------------


def python_sources():
    return sorted((REPO / "workflow" / "scripts").rglob("*.py"))


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), {kw.arg: kw.value for kw in node.keywords}, node


def test_no_code_path_can_unpickle():
    torch_loads = 0
    for path in python_sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] + [getattr(node, "module", "") or ""]
                assert not {"pickle", "dill", "joblib", "cloudpickle"} & set(names), path
        for func, keywords, node in calls(tree):
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if func == "torch.load":
                torch_loads += 1
                flag = keywords.get("weights_only")
                assert isinstance(flag, ast.Constant) and flag.value is True, where
            if "allow_pickle" in keywords:
                flag = keywords["allow_pickle"]
                assert isinstance(flag, ast.Constant) and flag.value is False, where
            assert func.split(".")[-1] not in {"read_pickle", "loads"} or func == "json.loads", (
                where
            )
            assert "jit.load" not in func and "pickle" not in func, where
            if func in {"np.load", "numpy.load"}:
                assert "allow_pickle" in keywords, f"{where}: say allow_pickle=False"
    assert torch_loads >= 2  # load_model and the training checkpoint


class Payload:
    """Unpickling this creates a file: proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


HPARAMS = {"depth": 1, "widths": [8], "latent_dim": 2}


def test_weights_with_a_pickled_object_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    weights = tmp_path / "model.pt"
    state = build_model(HPARAMS).state_dict()
    torch.save(state | {"extra": Payload(marker)}, weights)
    with pytest.raises(UserFacingError, match="not the weights of this model"):
        load_model(str(weights), HPARAMS)
    assert not marker.exists()
    torch.save(state, weights)  # the same weights without the object load fine
    assert isinstance(load_model(str(weights), HPARAMS), torch.nn.Module)


def test_checkpoint_with_a_pickled_object_is_set_aside_unexecuted(tmp_path, caplog):
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "model.pt.checkpoint"
    torch.save({"hparams": Payload(marker)}, checkpoint)
    arrays = fake_mnist_arrays(n_train=16, n_test=8)
    hparams = HPARAMS | {"epochs": 1, "batch_size": 8, "learning_rate": 0.01, "seed": 0}
    with caplog.at_level("INFO", logger="aedepth"):
        _, history, _ = train(
            hparams, arrays[IDX_NAMES[0]], arrays[IDX_NAMES[1]], arrays[IDX_NAMES[2]],
            checkpoint, torch.device("cpu"),
        )  # fmt: skip
    assert not marker.exists()  # never unpickled: torch.load(weights_only=True) refused it
    assert "set aside" in caplog.text and (tmp_path / "model.pt.checkpoint.stale").exists()
    assert [row["epoch"] for row in history] == [1]  # trained afresh


# --- a second snakemake in the same folder -------------------------------------------------------


@pytest.mark.workflow
def test_second_snakemake_is_refused_by_the_lock(workflow_dir):
    args = (
        WEIGHTS,
        "--cores",
        "2",
        *TRAIN_ARGS,
    )
    first = start_snakemake(workflow_dir, *args)
    locks = workflow_dir / ".snakemake" / "locks"
    wait_for(
        lambda: (workflow_dir / "results/data/sample-test0.2/logs/prepare_data.log").exists()
        and locks.is_dir()
        and any(locks.iterdir()),
        first,
        timeout=120,
        what="the first run to lock the folder",
    )
    second = snakemake(workflow_dir, *args, check=False)
    still_running = first.poll() is None
    out, err = first.communicate(timeout=600)
    assert second.returncode != 0
    assert "Directory cannot be locked" in output_of(second), output_of(second)
    assert still_running, "the first run ended before the second started: test inconclusive"
    assert first.returncode == 0, out + err
    assert "steps (100%) done" in out + err
    history = pd.read_csv(workflow_dir / STUDY / "models/depth1_dim2_seed0/history.csv")
    assert history["epoch"].tolist() == list(range(1, EPOCHS + 1))
    assert not (workflow_dir / (WEIGHTS + ".checkpoint")).exists()

"""Bad input, v3: mislabelled data, YAML bombs, odd study names, settings the data cannot
support; each refused in one line before any job runs."""

from __future__ import annotations

import copy
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, copy_workflow, snakemake

from aedepth.config import coerce_cli_lists, expanded_size, load_schema, validate_config
from aedepth.data import validation_split
from aedepth.files import read_table
from aedepth.jobs import ConfigError, UserFacingError, job_log
from aedepth.studies import compare_studies

SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
DEFAULTS = coerce_cli_lists(yaml.safe_load((REPO / "config.yaml").read_text()))


def error_of(**changes) -> str:
    config = copy.deepcopy(DEFAULTS) | changes
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    text = str(error.value)
    assert "\n" not in text
    return text


def test_the_sample_is_mnist_only():
    assert error_of(source="sample", dataset="fashion-mnist") == (
        "config key 'source' = 'sample' holds MNIST digits, not fashion-mnist: use dataset: "
        "mnist with the sample, or a fashion-mnist folder or download as source"
    )


@pytest.mark.workflow
def test_the_mislabelled_sample_is_refused_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path / "project")
    run = snakemake(
        workdir, "--cores", "1", "--config", "source=sample", "dataset=fashion-mnist",
        "epochs=1", "depths=[1]", "seeds=[0]", check=False,  # small, should the guard fail
    )  # fmt: skip
    assert run.returncode == 1
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith("aedepth: config key 'source' = 'sample' holds MNIST digits")
    )
    assert not (workdir / "results").exists()


def bomb(levels: int) -> str:
    """A YAML file whose hidden_sizes expands to 10**levels values."""
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    lines.append(f"hidden_sizes: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_anchors_are_counted_once_each():
    loaded = yaml.safe_load(bomb(9))
    assert expanded_size(loaded["a1"]) == 1 + 10 * 11
    assert expanded_size(loaded["hidden_sizes"]) == 100_001  # counting stops past the limit


BOMB_CHECK = """
import sys, time, yaml
from aedepth.config import coerce_cli_lists, load_schema, validate_config
from aedepth.jobs import ConfigError
started = time.perf_counter()
config = coerce_cli_lists(yaml.safe_load(open(sys.argv[1])))
bomb = yaml.safe_load(open(sys.argv[2]))
config["hidden_sizes"] = bomb["hidden_sizes"]
try:
    validate_config(config, load_schema(sys.argv[3]))
except ConfigError as error:
    print(len(str(error)), str(error)[:100])
# VmHWM: this program's peak (ru_maxrss would count the forking test process too)
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(round(time.perf_counter() - started, 3), peak)
"""


def test_a_yaml_bomb_is_refused_fast_in_little_memory(tmp_path):
    (tmp_path / "bomb.yaml").write_text(bomb(9))  # 10**9 values once expanded
    out = subprocess.run(
        [
            sys.executable, "-c", BOMB_CHECK, str(REPO / "config.yaml"), str(tmp_path / "bomb.yaml"),
            str(REPO / "workflow/schemas/config.schema.yaml"),
        ],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.splitlines()  # fmt: skip
    length, message = out[0].split(" ", 1)
    assert message.startswith("config key 'hidden_sizes' expands to more than 100,000 values")
    seconds, max_rss_kb = out[1].split()
    assert float(seconds) < 1.0 and int(max_rss_kb) < 300_000, out


def test_a_config_error_line_is_bounded_and_keeps_its_advice():
    advice = ": use a list of layer widths >= 1, at least as long as the largest depth"
    for huge in (["x" * 5000], [[list(range(1000))] * 90]):  # a long text, 90,000 numbers
        text = error_of(hidden_sizes=huge)
        assert len(text) <= 400 and text.endswith(advice), text
    # the last resort: any line is cut at 1,000 characters
    assert len(error_of(**{f"k{i}" * 20: 1 for i in range(100)})) <= 1000


@pytest.mark.parametrize(
    ("study", "message"),
    [
        (7, "config key 'study' = 7 was read as a number, not as you wrote it"),
        (10, "config key 'study' = 10 was read as a number"),
        ("a\n", "is not a folder name"),
        ("x" * 300, "has 300 characters: use at most 100"),
    ],
)
def test_odd_study_names_are_refused(study, message):
    assert message in error_of(study=study)


def test_a_validation_fraction_the_data_cannot_split_is_refused_before_any_job():
    text = error_of(source="sample", validation_fraction=0.9999)
    assert text.startswith(
        "config key 'validation_fraction' = 0.9999 holds out 4000 of the 4000 training images"
    )
    assert "use 0.0025 to 0.9975" in text
    validate_config(
        copy.deepcopy(DEFAULTS) | {"source": "sample", "validation_fraction": 0.9975}, SCHEMA
    )
    converged = copy.deepcopy(DEFAULTS["training_regimes"])
    converged["converged"]["validation_fraction"] = 0.001
    text = error_of(source="sample", trainings=["fixed", "converged"], training_regimes=converged)
    assert text.startswith("config key 'training_regimes.converged.validation_fraction' = 0.001")
    # a regime the study does not train is not checked
    validate_config(
        copy.deepcopy(DEFAULTS) | {"source": "sample", "training_regimes": converged}, SCHEMA
    )


def test_the_validation_split_names_the_total_and_the_classes():
    with pytest.raises(Exception, match="cannot split 20 training images of 10 classes"):
        validation_split(__import__("numpy").arange(20) % 10, 0.05)


# --- damaged tables, full disks, folders where files belong -------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("\x00\x01garbage\n", "no column method, depth, seed"),
        ("", "EmptyDataError"),
        ("method,depth\nautoencoder,1\n", "no column seed"),
    ],
)
def test_a_damaged_table_is_refused_in_one_line_naming_it(tmp_path, content, reason):
    path = tmp_path / "summary.csv"
    path.write_text(content)
    with pytest.raises(UserFacingError) as error:
        read_table(path, ("method", "depth", "seed"))
    assert str(error.value) == (
        f"{path}: not the table aedepth wrote ({reason}); delete it and run again to remake it"
    )


def test_a_folder_in_place_of_a_table_is_refused(tmp_path):
    (tmp_path / "summary.csv").mkdir()
    with pytest.raises(UserFacingError, match="summary.csv: not the table aedepth wrote"):
        read_table(tmp_path / "summary.csv", ("method",))


def test_compare_names_the_damaged_study(tmp_path):
    from test_studies import make_study

    good = make_study(tmp_path, "a", study_offset=0.1)
    bad = make_study(tmp_path, "b", study_offset=0.2)
    (bad / "depth_intervals.csv").write_text("garbage\n")
    with pytest.raises(UserFacingError, match=r"b/depth_intervals.csv: not the table aedepth"):
        compare_studies(
            [good / "study.yaml", bad / "study.yaml"],
            [good / "depth_intervals.csv", bad / "depth_intervals.csv"],
        )
    snapshot = yaml.safe_load((bad / "study.yaml").read_text())
    del snapshot["axes"]
    (bad / "study.yaml").write_text(yaml.safe_dump(snapshot))
    with pytest.raises(UserFacingError, match=r"b/study.yaml is not a study snapshot \(no 'axes'"):
        compare_studies([bad / "study.yaml"], [good / "depth_intervals.csv"])


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "results/s/models/m/model.pt"),
            "aedepth error: no space left on the disk of results/s/models/m/model.pt (",
        ),
        (
            IsADirectoryError(errno.EISDIR, "Is a directory", "results/s/metrics/m.json"),
            "aedepth error: results/s/metrics/m.json is a folder where aedepth reads or writes",
        ),
    ],
)
def test_a_full_disk_or_a_folder_for_a_file_ends_a_job_in_one_line(tmp_path, capsys, error, line):
    with pytest.raises(SystemExit) as exit_, job_log(tmp_path / "job.log"):
        raise error
    assert exit_.value.code == 1
    (printed,) = capsys.readouterr().err.splitlines()
    assert printed.startswith(line)


def test_other_os_errors_keep_their_traceback(tmp_path):
    with pytest.raises(PermissionError), job_log(tmp_path / "job.log"):
        raise PermissionError(errno.EACCES, "Permission denied", "x")


@pytest.mark.workflow
def test_a_folder_where_an_output_belongs_is_refused_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path / "project")
    (workdir / "results/mnist-sample/figures/answer.png").mkdir(parents=True)
    run = snakemake(workdir, "-n", "--config", "source=sample", check=False)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "aedepth: results/mnist-sample/figures/answer.png is a folder where aedepth writes a "
        "file: delete it and run again"
    )


@pytest.mark.workflow
def test_cuda_without_a_gpu_is_refused_before_any_job_where_jobs_run_here(tmp_path):
    workdir = copy_workflow(tmp_path / "project")
    env = {"CUDA_VISIBLE_DEVICES": ""}  # no GPU, whatever this machine has
    run = snakemake(
        workdir, "--cores", "1", "--config", "source=sample", "device=cuda", check=False, env=env
    )
    assert run.returncode == 1 and not (workdir / "results").exists()
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith("aedepth: config key 'device' = 'cuda' but no GPU is visible here")
    )
    # under the Slurm profile the GPUs are the compute nodes': planned, not refused
    slurm = snakemake(
        workdir, "-n", "--workflow-profile", "profiles/slurm", "--config", "source=sample",
        "device=cuda", env=env,
    )  # fmt: skip
    assert "train" in slurm.stdout


# --- the data's identity: its checksums name the dataset ------------------------------------


def identity_config(tmp_path, **changes):
    """The shipped config over a folder of fake IDX files that a dataset "other" publishes."""
    from idx_server import write_fake_mnist

    md5s = write_fake_mnist(tmp_path / "idx")
    other = {"mirrors": ["http://127.0.0.1:1/"], "checksums": md5s, "classes": list("abcdefghij")}
    datasets = copy.deepcopy(DEFAULTS["datasets"]) | {"other": other}
    return (
        copy.deepcopy(DEFAULTS) | {"datasets": datasets, "source": str(tmp_path / "idx")} | changes
    )


def test_checksums_of_another_dataset_are_refused():
    fashion = DEFAULTS["datasets"]["fashion-mnist"]["checksums"]
    assert error_of(checksums=fashion) == (
        "config key 'checksums' holds fashion-mnist's published MD5 of train-images-idx3-ubyte, "
        "not mnist's: set dataset: fashion-mnist, or checksums: {}"
    )


def test_a_folder_of_another_datasets_files_is_refused_naming_it(tmp_path):
    config = identity_config(tmp_path)
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    assert str(error.value) == (
        f"config key 'source' = {str(tmp_path / 'idx')!r} holds other's files (the MD5 of its "
        "t10k-labels-idx1-ubyte is other's), not mnist's: set dataset: other"
    )
    validate_config(config | {"dataset": "other"}, SCHEMA)  # named right: accepted


def test_the_job_names_the_dataset_a_file_or_a_mirror_is_from(tmp_path):
    from idx_server import serve_folder

    from aedepth.data import IDX_NAMES, download_idx, md5_owners, read_idx_folder

    config = identity_config(tmp_path)
    owners = md5_owners(config["datasets"], "mnist")
    mnist = DEFAULTS["datasets"]["mnist"]["checksums"]
    with pytest.raises(UserFacingError, match=r"holds other's data \(MD5 \w+ is other's publ"):
        read_idx_folder(tmp_path / "idx", mnist, owners)
    name = IDX_NAMES[3]
    with serve_folder(tmp_path / "idx") as base, pytest.raises(UserFacingError) as error:
        download_idx(name, [base], mnist[name], retries=1, timeout=5, owners=owners[name])
    assert f"{base}: serves other's {name} (set dataset: other" in str(error.value)


# --- config files: bounded in size and expansion, and the bomb through snakemake -------------


def test_a_config_file_too_large_is_refused(tmp_path):
    from aedepth.config import check_config_files

    path = tmp_path / "big.yaml"
    path.write_text("study: a\n" + "#" * (1 << 20))
    check_config_files([REPO / "config.yaml", tmp_path / "absent.yaml"])
    with pytest.raises(ConfigError, match=r"^config file .*big.yaml has 1,048,585 bytes, more"):
        check_config_files([path])


MEASURED = """
import os, resource, subprocess, sys, time
started = time.perf_counter()
run = subprocess.run(sys.argv[2:], cwd=sys.argv[1], capture_output=True, text=True)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kB, snakemake alone
print(run.returncode, round(seconds, 3), peak)
print(run.stderr.strip().splitlines()[-1])
"""


def measured(workdir, *args):
    """(exit status, seconds, peak RSS in kB, last stderr line) of snakemake `args`."""
    program = Path(sys.executable).parent / "snakemake"
    command = [sys.executable, "-c", MEASURED, str(workdir), str(program), *args]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    status, seconds, peak = out.stdout.splitlines()[0].split()
    return int(status), float(seconds), int(peak), out.stdout.splitlines()[1]


def nested_bomb(levels: int) -> str:
    """hidden_sizes holding `levels` levels of anchors, the last 10**levels values."""
    lines = ["source: sample", "hidden_sizes:", "  - &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, levels):
        lines.append(f"  - &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.workflow
def test_a_nine_level_bomb_under_hidden_sizes_costs_snakemake_nothing(tmp_path):
    workdir = copy_workflow(tmp_path / "project")
    (tmp_path / "bomb.yaml").write_text(nested_bomb(9))
    status, seconds, peak, line = measured(
        workdir, "-n", "--configfile", str(tmp_path / "bomb.yaml")
    )
    assert status == 1 and line == (
        "aedepth: config key 'hidden_sizes' expands to more than 100,000 values (YAML anchors "
        "and aliases?): write its values out"
    )
    # as fast as refusing a plain bad value (snakemake's start is most of either), in < 300 MB
    _, plain, _, _ = measured(workdir, "-n", "--config", "epochs=0")
    assert peak < 300_000 and seconds < plain + 0.5, (seconds, plain, peak)


# --- files read back: damaged, foreign, a folder ---------------------------------------------


def test_json_yaml_and_tables_read_back_are_refused_in_one_line(tmp_path):
    from aedepth.files import read_json, read_yaml

    json_file, yaml_file, table = tmp_path / "m.json", tmp_path / "study.yaml", tmp_path / "t.csv"
    remake = "delete it and run again to remake it"
    json_file.write_text("[1, 2]")
    with pytest.raises(UserFacingError) as error:
        read_json(json_file)
    assert str(error.value) == f"{json_file}: not valid JSON (a list, not an object); {remake}"
    json_file.write_text('{"seed": 0}')
    with pytest.raises(UserFacingError, match=r"m.json: not valid JSON \(no key knn_accuracy\)"):
        read_json(json_file, ("seed", "knn_accuracy"))
    yaml_file.write_text(nested_bomb(6).replace("source: sample\n", "study: a\naxes: []\n"))
    with pytest.raises(UserFacingError, match=r"not the YAML aedepth wrote \(expands past 100,000"):
        read_yaml(yaml_file)
    for text, why in (
        ("[1]", "a list, not a mapping"),
        ("a: [", "ParserError"),
        ("a: 1", "no key axes"),
    ):
        yaml_file.write_text(text)
        with pytest.raises(UserFacingError) as error:
            read_yaml(yaml_file, ("axes",), fix="rerun it")
        assert str(error.value) == f"{yaml_file}: not the YAML aedepth wrote ({why}); rerun it"
    yaml_file.write_text("a: 1\n" + "#" * (1 << 20))
    with pytest.raises(UserFacingError, match=r"\(over 1.0 MB\)"):
        read_yaml(yaml_file)
    table.write_text("method,depth,seed\nautoencoder,deep,0\n")
    with pytest.raises(UserFacingError, match=r"t.csv: not the table aedepth wrote \(column depth"):
        read_table(table, ("method",), numeric=("depth", "seed"))


def test_a_damaged_parquet_or_a_folder_is_refused_by_reading(tmp_path):
    from aedepth.files import read_json, reading
    from aedepth.latents import read_latents

    latents = tmp_path / "run.parquet"
    latents.write_bytes(b"PAR1 not really")
    with pytest.raises(UserFacingError) as error:
        with reading(latents, "the latents Parquet aedepth wrote"):
            read_latents(latents)
    assert str(error.value) == (
        f"{latents}: not the latents Parquet aedepth wrote (ArrowInvalid); "
        "delete it and run again to remake it"
    )
    (tmp_path / "m.json").mkdir()
    with pytest.raises(UserFacingError, match=r"m.json: not valid JSON \(a folder\); delete it"):
        read_json(tmp_path / "m.json")


# --- a full disk: one line naming the file and the space it needs ----------------------------


def full_disk_job(tmp_path, capsys, write, expected=None):
    """Run `write(tmp)` in atomic_output inside job_log; return the terminal's lines."""
    from aedepth.files import atomic_output

    output = tmp_path / "models" / "m" / "model.pt"
    with pytest.raises(SystemExit) as exit_, job_log(tmp_path / "job.log"):
        with atomic_output(output, expected) as tmp:
            write(tmp)
    assert exit_.value.code == 1
    assert list((tmp_path / "models" / "m").iterdir()) == []  # nothing complete-looking left
    return output, capsys.readouterr().err.splitlines()


def test_a_write_finding_the_disk_full_is_one_line_naming_the_file(tmp_path, capsys):
    def write(tmp):
        tmp.write_bytes(b"x" * 1500)
        raise OSError(errno.ENOSPC, "No space left on device")  # a write(): no file name

    output, lines = full_disk_job(tmp_path, capsys, write, expected=4_000_000)
    assert len(lines) == 1 and lines[0].startswith(f"aedepth error: {output}: no space left")
    assert "; the file needs about 4.0 MB): free that much there and run again" in lines[0]


def test_torch_finding_the_disk_full_is_one_line_too(tmp_path, capsys, monkeypatch):
    from aedepth import files

    def write(tmp):  # what torch.save raises on a full disk: no errno
        tmp.write_bytes(b"x" * 2500)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576")

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda _: usage._replace(free=0))
    output, lines = full_disk_job(tmp_path, capsys, write)
    assert lines == [
        f"aedepth error: {output}: no space left on its disk (0 bytes free; the file needs more "
        "than the 2.5 kB written): free that much there and run again (nothing half-written is "
        "kept but a training checkpoint, which the rerun resumes)"
    ]
    monkeypatch.undo()  # with space to spare, the same error is a bug: its traceback stays
    with pytest.raises(RuntimeError), files.atomic_output(tmp_path / "x.pt") as tmp:
        write(tmp)


# --- folders where files belong ---------------------------------------------------------------


def test_a_folder_where_a_file_is_written_is_refused(tmp_path):
    from aedepth.files import write_json

    (tmp_path / "metrics.json").mkdir()
    with pytest.raises(UserFacingError) as error:
        write_json(tmp_path / "metrics.json", {"a": 1})
    assert str(error.value) == (
        f"{tmp_path / 'metrics.json'} is a folder where aedepth writes a file: "
        "delete it and run again to remake it"
    )


@pytest.mark.workflow
def test_a_folder_where_a_model_file_belongs_is_refused_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path / "project")
    folder = "results/mnist-sample/models/depth1_dim2_seed0/model.pt"
    (workdir / folder).mkdir(parents=True)
    run = snakemake(workdir, "-n", "--config", "source=sample", check=False)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"aedepth: {folder} is a folder where aedepth writes a file: delete it and run again"
    )


# --- a finished study's files damaged: each job that reads one says which, in one line ---------


@pytest.mark.workflow
def test_damaged_files_of_a_finished_study_are_named_by_the_job_reading_them(tmp_path):
    workdir = copy_workflow(tmp_path / "project")
    small = ("--config", "source=sample", "epochs=1", "depths=[1]", "seeds=[0]", "baselines=[]")
    snakemake(workdir, "--cores", "2", *small)
    study = workdir / "results/mnist-sample"
    run_id = "depth1_dim2_seed0"
    error = "aedepth error: results/mnist-sample/"
    cases = [  # (file to damage, how, the output whose job reads it, the line's start)
        ("summary.csv", "garbage", "depth_intervals.csv", f"{error}summary.csv: not the table"),
        # a folder is refused at parse time, before the job that would read it
        (f"metrics/{run_id}.json", "folder", "summary.csv", "aedepth: results/mnist-sample/me"),
        (f"latents/{run_id}.parquet", "garbage", f"metrics/{run_id}.json", f"{error}latents/"),
        ("depth_intervals.csv", "garbage", "figures/answer.png", f"{error}depth_intervals.csv"),
        ("question.json", "garbage", "findings.md", f"{error}question.json: not valid JSON"),
        (f"models/{run_id}/history.csv", "garbage", "figures/training_curves.png", error),
    ]
    finished = shutil.copytree(study, tmp_path / "finished")  # a failed job removes its outputs
    for name, how, target, start in cases:
        path = study / name
        path.unlink()
        path.mkdir() if how == "folder" else path.write_bytes(b"\x00\x01 garbage\n")
        run = snakemake(workdir, "--cores", "1", "-f", f"{study.relative_to(workdir)}/{target}",
                        *small, check=False)  # fmt: skip
        lines = [line for line in run.stderr.splitlines() if line.startswith("aedepth")]
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        assert len(lines) == 1 and lines[0].startswith(start), (name, lines)
        assert f"{name}: not" in lines[0] or "is a folder" in lines[0], lines
        assert "delete it and run again" in lines[0], lines
        shutil.rmtree(study)
        shutil.copytree(finished, study)


# --- #34 item 8: each refused in one line naming the key at fault, before any job ----------------


def small_npz(tmp_path, shape=(6, 6), y_train=None, name="data.npz") -> str:
    y = np.arange(40) % 4 if y_train is None else y_train
    x = np.zeros((len(y), *shape), np.uint8)
    path = tmp_path / name
    np.savez(path, x_train=x, y_train=y, x_test=x[:20], y_test=np.arange(20) % 4)
    return str(path)


def test_a_mistyped_npz_path_is_blamed_on_source_not_dataset(tmp_path):
    small_npz(tmp_path)
    text = error_of(source=str(tmp_path / "data.nzp"), dataset="mine")
    assert text.startswith(f"config key 'source' = '{tmp_path / 'data.nzp'}' is neither"), text


def test_a_one_pixel_image_is_refused_as_too_small(tmp_path):
    text = error_of(source=small_npz(tmp_path, shape=(1, 1)), dataset="x")
    assert "holds images of 1x1 pixels and 1 channel(s), 1 value" in text
    assert "use larger images" in text and "at most 0" not in text


def test_conv_depths_past_a_one_by_one_feature_map_are_refused(tmp_path):
    text = error_of(
        source=small_npz(tmp_path, shape=(4, 4)), dataset="x", architectures=["mlp", "conv"],
        depths=[1, 3], hidden_sizes=[8, 8, 8], conv_channels=[4, 4, 4], latent_dims=[2],
    )  # fmt: skip
    assert text == (
        "config key 'depths' asks for depth 3, but the conv family's stride-2 blocks turn the "
        "4x4 images into a 1x1 feature map after 2: use conv depths of at most 2 (or larger images)"
    )
    # MNIST's 28 x 28 reach 1 x 1 after 5 blocks (28, 14, 7, 4, 2, 1)
    assert "at most 5" in error_of(
        architectures=["conv"], depths=[6], conv_channels=[4] * 6, hidden_sizes=[8] * 6
    )


def test_a_one_image_class_with_a_validation_split_is_refused_before_training(tmp_path):
    source = small_npz(tmp_path, y_train=np.r_[np.arange(40) % 4, 4])
    text = error_of(source=source, dataset="x", validation_fraction=0.1)
    assert text.startswith(
        "config key 'validation_fraction' = 0.1 asks for a stratified validation split, but "
        "class '4' has 1 training image"
    ), text
    assert text.endswith("add images of it, or set validation_fraction: 0")


def test_a_source_path_that_is_not_utf8_is_refused_naming_it(tmp_path):
    source = os.fsdecode(bytes(tmp_path) + b"/caf\xe9.npz")
    text = error_of(source=source, dataset="x")
    assert text.startswith("config key 'source' = ") and "caf\\xe9.npz' is not UTF-8 text" in text

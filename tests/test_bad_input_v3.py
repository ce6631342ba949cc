"""Bad input, v3: mislabelled data, YAML bombs, odd study names, settings the data cannot
support; each refused in one line before any job runs."""

from __future__ import annotations

import copy
import errno
import subprocess
import sys

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
        check=False,
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


def test_a_config_error_line_is_bounded():
    text = error_of(hidden_sizes=["x" * 5000])
    assert len(text) <= 1000 and text.endswith(" ...")


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

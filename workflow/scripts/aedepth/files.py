"""Atomic file output (a killed or failed job never leaves a complete-looking file), JSON,
a lock so that two processes never write the same file, and standalone HTML table pages.

Every file the workflow reads back goes through a reader here (read_json, read_table,
read_yaml, or `reading` around another reader): a damaged or foreign file, or a folder in its
place, is refused in one line naming it and what to do.
"""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import shutil
import socket
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aedepth.jobs import UserFacingError


REMAKE = "delete it and run again to remake it"
# What a disk has left after a write failed for want of space (root may use the reserve).
_FULL = 1 << 20


class DiskFull(UserFacingError):
    """A write failed for want of disk space; str() names the file and the space it needs."""


@contextmanager
def atomic_output(path: str | Path, expected: int | None = None):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary name keeps the suffix, so writers that infer the format from it still work.
    A full disk raises DiskFull (the partial file removed); `expected`, the file's size in
    bytes where known, says how much space it needs.
    """
    path = Path(path)
    if path.is_dir():
        raise UserFacingError(f"{path} is a folder where aedepth writes a file: {REMAKE}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        if not _disk_full(error, path.parent):
            raise
        raise DiskFull(_disk_full_line(path, tmp, expected)) from error
    finally:
        tmp.unlink(missing_ok=True)


def _disk_full(error: OSError | RuntimeError, folder: Path) -> bool:
    """Whether `error` is a write that found the disk full. torch reports one without an
    errno ("basic_ios::clear: iostream error", "unexpected pos"): then the free space says."""
    if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    return getattr(error, "errno", None) is None and shutil.disk_usage(folder).free < _FULL


def _disk_full_line(path: Path, tmp: Path, expected: int | None) -> str:
    free = shutil.disk_usage(path.parent).free
    written = tmp.stat().st_size if tmp.exists() else 0
    if expected or written:
        need = f"about {_size(expected)}" if expected else f"more than the {_size(written)} written"
        what = f"the file needs {need}): free that much there"
    else:
        what = "the file needs more): free space there"
    return (
        f"{path}: no space left on its disk ({_size(free)} free; {what} and run again "
        "(nothing half-written is kept but a training checkpoint, which the rerun resumes)"
    )


def _size(count: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1000
    return f"{count:,.1f} GB"  # pragma: no cover


def copy_file(source: str | Path, destination: str | Path) -> None:
    """Copy `source` to `destination`, which appears only once complete."""
    with reading(source, "a file aedepth wrote"):
        size = Path(source).stat().st_size
    with atomic_output(destination, size) as tmp:
        shutil.copyfile(source, tmp)


def write_json(path: str | Path, data: dict) -> None:
    """Write a flat dict as JSON; NaN (not valid JSON) is written as null."""
    clean = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in data.items()}
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(clean, indent=2) + "\n")


def write_csv(path: str | Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    """Write `rows` as CSV with a header of `columns`, as pandas' to_csv writes them (floats
    as repr, NaN as a blank cell), without importing pandas: 66 MB of a training job."""

    def cell(value):
        return "" if isinstance(value, float) and math.isnan(value) else value

    with atomic_output(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([cell(row.get(column, "")) for column in columns] for row in rows)


@contextmanager
def reading(path: str | Path, what: str, fix: str = REMAKE):
    """Within the block, `path` failing to read or parse (damaged, foreign, a folder) is
    refused in one line: "<path>: not <what> (<why>); <fix>". Wrap the read alone: the
    errors caught are those a parser raises on bad bytes."""
    if Path(path).is_dir():
        raise _refused(path, what, "a folder", fix)
    try:
        yield
    except FileNotFoundError:
        raise _refused(path, what, "missing", "run again to remake it") from None
    except _PARSE_ERRORS as error:
        raise _refused(path, what, type(error).__name__, fix) from None


# What parsers raise on bad bytes (pandas' ParserError and EmptyDataError, JSONDecodeError
# and pyarrow's ArrowInvalid are ValueErrors; RecursionError: nesting too deep to walk).
_PARSE_ERRORS = (
    OSError, ValueError, KeyError, IndexError, TypeError, EOFError, RecursionError,
    zipfile.BadZipFile,
)  # fmt: skip


def _refused(path: str | Path, what: str, why: str, fix: str) -> UserFacingError:
    return UserFacingError(f"{path}: not {what} ({why}); {fix}")


def _require(path: str | Path, what: str, missing: list, kind: str, fix: str) -> None:
    if missing:
        raise _refused(path, what, f"no {kind} {', '.join(map(str, missing))}", fix)


def read_json(path: str | Path, keys: tuple[str, ...] = (), fix: str = REMAKE) -> dict:
    """The JSON object in `path`, holding at least `keys`; refused in one line otherwise."""
    what = "valid JSON"
    with reading(path, what, fix):
        data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise _refused(path, what, f"a {type(data).__name__}, not an object", fix)
    _require(path, what, [key for key in keys if key not in data], "key", fix)
    return data


def read_table(
    path: str | Path, columns: tuple[str, ...], numeric: tuple[str, ...] = (), fix: str = REMAKE
):
    """The CSV table in `path` as a DataFrame with at least `columns`, the `numeric` ones
    (where present) holding numbers or blanks; a damaged, empty or foreign file (or a
    folder) is refused in one line naming it and what to do."""
    import pandas as pd

    what = "the table aedepth wrote"
    with reading(path, what, fix):
        table = pd.read_csv(path)
    _require(path, what, [c for c in columns if c not in table.columns], "column", fix)
    for column in numeric:  # an empty column (an empty table, say) reads as text: no values
        values = table[column].dropna() if column in table.columns else ()
        if len(values) and not pd.api.types.is_numeric_dtype(values):
            raise _refused(path, what, f"column {column} holds text", fix)
    return table


def read_yaml(
    path: str | Path, keys: tuple[str, ...] = (), fix: str = REMAKE, limit: int = 1 << 20
) -> dict:
    """The YAML mapping in `path`, holding at least `keys`: refused in one line when damaged,
    over `limit` bytes, or expanding past MAX_VALUES values (YAML anchors and aliases)."""
    import yaml

    what = "the YAML aedepth wrote"
    with reading(path, what, fix):
        if Path(path).stat().st_size > limit:
            raise _refused(path, what, f"over {_size(limit)}", fix)
        try:
            data = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as error:
            raise _refused(path, what, type(error).__name__, fix) from None
        too_large = expanded_size(data) > MAX_VALUES
    if too_large:
        raise _refused(path, what, f"expands past {MAX_VALUES:,} values", fix)
    if not isinstance(data, dict):
        raise _refused(path, what, f"a {type(data).__name__}, not a mapping", fix)
    _require(path, what, [key for key in keys if key not in data], "key", fix)
    return data


# A config or snapshot holds a few hundred values; YAML anchors and aliases can make a few
# lines stand for billions (a "YAML bomb"), which any walk over them would expand.
MAX_VALUES = 100_000


def expanded_size(value: Any, limit: int = MAX_VALUES) -> int:
    """How many values `value` holds once every alias is written out, counted up to just
    past `limit`. PyYAML shares one object per anchor, so each distinct container is
    counted once and its size reused: time linear in the YAML text, not in its expansion."""
    sizes: dict[int, int] = {}

    def size(item: Any) -> int:
        if not isinstance(item, (dict, list)):
            return 1
        if id(item) not in sizes:
            sizes[id(item)] = 0  # a container inside itself: counted once
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            total = 1
            for child in children:
                total += size(child)
                if total > limit:
                    break
            sizes[id(item)] = min(total, limit + 1)
        return sizes[id(item)]

    return size(value)


class Locked(UserFacingError):
    """Another live process holds the lock."""


@contextmanager
def exclusive(path: str | Path):
    """Hold `path`.lock (it names this host and pid) while the block writes `path`.

    A second writer on this host is refused while the first is alive (e.g. a trainer left
    running after its snakemake was killed, then the job started again after --unlock); a
    lock whose owner died, or one from another host (a job requeued elsewhere by Slurm), is
    taken over.
    """
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = f"{socket.gethostname()} {os.getpid()}"
    while True:
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            host, _, pid = lock.read_text().partition(" ")
            if host == socket.gethostname() and pid.isdigit() and _alive(int(pid)):
                raise Locked(
                    f"{path} is being written by another process ({pid} on this host): "
                    "wait for it to finish, or stop it, then run again"
                ) from None
            lock.unlink(missing_ok=True)  # its owner is gone
    with os.fdopen(descriptor, "w") as handle:
        handle.write(me)
    try:
        yield
    finally:
        if lock.exists() and lock.read_text() == me:
            lock.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


# The look of the workflow's standalone table pages (summary.html, studies.html).
TABLE_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; }
tbody th { text-align: left; }
"""


def html_page(title: str, body: str) -> str:
    """A standalone HTML page (UTF-8, TABLE_STYLE) around `body`."""
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{TABLE_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )

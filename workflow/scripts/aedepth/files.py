"""Atomic file output (a killed or failed job never leaves a complete-looking file), JSON,
a lock so that two processes never write the same file, and standalone HTML table pages."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

from aedepth.jobs import UserFacingError


@contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary name keeps the suffix, so writers that infer the format from it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def copy_file(source: str | Path, destination: str | Path) -> None:
    """Copy `source` to `destination`, which appears only once complete."""
    with atomic_output(destination) as tmp:
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


def read_json(path: str | Path):
    """The JSON in `path`; a damaged file is refused in one line naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserFacingError(
            f"{path}: not valid JSON ({type(error).__name__}); delete it and run again to remake it"
        ) from None


def read_table(path: str | Path, columns: tuple[str, ...]):
    """The CSV table in `path` as a DataFrame with at least `columns`; a damaged, empty or
    foreign file (or a folder) is refused in one line naming it and what to do."""
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:  # ParserError is a ValueError
        reason = type(error).__name__
    else:
        missing = [column for column in columns if column not in table.columns]
        if not missing:
            return table
        reason = f"no column {', '.join(missing)}"
    raise UserFacingError(
        f"{path}: not the table aedepth wrote ({reason}); delete it and run again to remake it"
    )


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

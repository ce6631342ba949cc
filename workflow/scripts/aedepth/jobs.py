"""What every Snakemake script shares: its log file, and one clear line on a known failure."""

from __future__ import annotations

import errno
import logging
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path


class UserFacingError(Exception):
    """A failure the user can fix; str() is one line saying what to change."""


class ConfigError(ValueError):
    """An invalid config value; str() is one line naming the key and what it accepts.

    Here rather than in aedepth.config, so that modules that only raise it (aedepth.grid)
    do not import the data code: an edit there would rerun every job that uses the grid.
    """


@contextmanager
def job_log(log_path: str | Path):
    """Send logging, warnings and progress bars (stderr) to the job's log file.

    A UserFacingError, a full disk or a folder where a file belongs is printed as one line
    on the terminal too and ends the job with exit status 1; any other exception keeps its
    traceback (in the log and on the terminal).
    """
    terminal = sys.stderr
    try:
        handle = open(log_path, "w", buffering=1)
    except OSError as error:
        _end(terminal, error)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        handlers=[logging.StreamHandler(handle)],
        force=True,
    )
    sys.stderr = handle
    try:
        yield
    except (UserFacingError, OSError) as error:
        if isinstance(error, OSError) and _file_trouble(error) is None:
            logging.getLogger("aedepth").exception("job failed")
            raise
        logging.getLogger("aedepth").error("%s", _line(error))
        _end(terminal, error)
    except Exception:
        logging.getLogger("aedepth").exception("job failed")
        raise
    finally:
        sys.stderr = terminal
        try:
            handle.close()
        except OSError:  # a full disk: the log loses its tail, the terminal has the line
            pass


def _line(error: UserFacingError | OSError) -> str:
    return str(error) if isinstance(error, UserFacingError) else _file_trouble(error)


def _end(terminal, error: UserFacingError | OSError):
    """Print the one line of `error` on the terminal and exit 1 (re-raise an OSError that
    has no line of its own)."""
    line = _line(error)
    if line is None:
        raise error
    # One write call: lines of jobs failing at once must not interleave on the terminal.
    terminal.write(f"aedepth error: {line}\n")
    terminal.flush()
    sys.exit(1)


def _file_trouble(error: OSError) -> str | None:
    """One line for the file errors a user can act on (a full disk, a folder where a file
    belongs), naming the path; None for any other error (its traceback is kept)."""
    path = error.filename or "a file"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        folder = Path(path).parent if error.filename else Path.cwd()
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        free = shutil.disk_usage(folder).free / 1e6
        return (
            f"no space left on the disk of {path} ({free:.0f} MB free): free space there (a "
            "training job needs a few MB per model, the data ~100 MB) and run again; nothing "
            "unfinished is kept but a training checkpoint, which the rerun resumes"
        )
    if isinstance(error, IsADirectoryError):
        return f"{path} is a folder where aedepth reads or writes a file: delete it and run again"
    return None

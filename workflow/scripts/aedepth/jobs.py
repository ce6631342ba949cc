"""What every Snakemake script shares: its log file, and one clear line on a known failure."""

from __future__ import annotations

import logging
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

    A UserFacingError is printed as one line on the terminal too and ends the job with
    exit status 1; any other exception keeps its traceback (in the log and on the terminal).
    """
    terminal = sys.stderr
    with open(log_path, "w", buffering=1) as handle:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s: %(message)s",
            handlers=[logging.StreamHandler(handle)],
            force=True,
        )
        sys.stderr = handle
        try:
            yield
        except UserFacingError as error:
            logging.getLogger("aedepth").error("%s", error)
            # One write call: lines of jobs failing at once must not interleave on the terminal.
            terminal.write(f"aedepth error: {error}\n")
            terminal.flush()
            sys.exit(1)
        except Exception:
            logging.getLogger("aedepth").exception("job failed")
            raise
        finally:
            sys.stderr = terminal

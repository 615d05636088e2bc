"""Waiting out DuckDB's single-writer lock, and only that: a run holds the file for seconds, so a retry with
backoff succeeds; a corrupt file or a wrong path never heals by waiting, so it fails at once, named.

    rows = retry_locked(lambda: read(path), patience_s=20, database=path)   # DuckDBFileError if not a lock
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

T = TypeVar("T")

# DuckDB's words when another process holds the file (1.4 and 1.5: 'Could not set lock on file "X":
# Conflicting lock is held in PROG (PID N)'); every other IOException is something no wait cures.
LOCK_MESSAGES = ("Could not set lock on file", "Conflicting lock is held")
_CORRUPT = (
    "not a valid DuckDB database file",
    "Corrupt database file",
    "Could not read enough bytes",
    "database file is corrupt",
    "block checksum",
)
_MISSING = ("No files found that match the pattern", "does not exist", "No such file or directory")


class DuckDBFileError(RuntimeError):
    """An IO error that waiting does not cure (a corrupt or missing file); the message names it and the fix."""


def is_lock_error(exc: BaseException) -> bool:
    """Whether `exc` is DuckDB refusing a file because another process holds its lock."""
    return isinstance(exc, duckdb.IOException) and any(m in str(exc) for m in LOCK_MESSAGES)


def explain_io_error(exc: BaseException, database: str | None = None) -> str:
    """What a non-lock DuckDB IO error means for the user: the file, what is wrong, what to do."""
    # DuckDB appends the SQL with a caret under the error; the first line says it all.
    text = str(exc).removeprefix("IO Error: ").strip().split("\n")[0]
    where = f"{database}: " if database else ""
    if any(m in text for m in _CORRUPT):
        fix = (
            f"move it aside (mv {database} {database}.broken) and materialise the assets again (make demo)"
            if database
            else "move the file aside and materialise the assets again (make demo)"
        )
        return f"{where}the DuckDB file is damaged ({text}); {fix}"
    if any(m in text for m in _MISSING):
        return f"{where}a path DuckDB was asked to read does not exist ({text}); check the path"
    return f"{where}DuckDB could not read or write a file ({text}); check the path and its permissions"


def retry_locked(action: Callable[[], T], patience_s: float, database: str | None = None) -> T:
    """`action()`, retried with jittered exponential backoff while another process holds the file's lock.

    After `patience_s` the last lock error (a duckdb.IOException) is raised. Any other IOException becomes a
    DuckDBFileError at once, its message naming `database` and the fix; other errors are raised as they are.
    """
    deadline, attempt = time.monotonic() + patience_s, 0
    while True:
        try:
            return action()
        except duckdb.IOException as exc:
            if not is_lock_error(exc):
                raise DuckDBFileError(explain_io_error(exc, database)) from exc
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))
            attempt += 1

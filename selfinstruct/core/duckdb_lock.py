"""Waiting out DuckDB's single-writer lock, and only that: a run holds the file for seconds, so a retry with
backoff succeeds; a corrupt file or a wrong path never heals by waiting, so it fails at once, named.

    rows = retry_locked(lambda: read(path), patience_s=20, database=path)   # DuckDBFileError if not a lock
    with transaction(path) as conn:                                         # a writer: all or nothing
        conn.execute("create or replace table t as select ...")

Readers never starve a writer. DuckDB lets a writer in only while no reader holds the file, and a loop of
read-only queries (a person's `selfinstruct query`, a sensor, the UI) can hold it with gaps too short for a
backoff to hit. So a writer first takes an exclusive lock on `<file>.writer` (`writer_intent`) and keeps it
while it waits and writes; a reader that sees it held waits before opening the file (`retry_locked` treats
it like DuckDB's own lock). A writer therefore waits at most for the reads already running.
"""

from __future__ import annotations

import fcntl
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import duckdb

T = TypeVar("T")

# How long a writer waits for the file: longer than any reader holds it (a `selfinstruct query` is stopped by
# its --timeout, a sensor's query takes milliseconds), so a reader never fails a run.
WRITER_PATIENCE_S = 300.0

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


_DISK_FULL = ("No space left on device", "Disk quota exceeded")


class DuckDBFileError(RuntimeError):
    """An IO error that waiting does not cure (a corrupt or missing file); the message names it and the fix."""


class WriterWaiting(duckdb.IOException):
    """A reader found a writer waiting for (or holding) the file; it backs off like on DuckDB's own lock."""


def is_lock_error(exc: BaseException) -> bool:
    """Whether `exc` is DuckDB refusing a file because another process holds its lock (or a writer waits)."""
    return isinstance(exc, WriterWaiting) or (
        isinstance(exc, duckdb.IOException) and any(m in str(exc) for m in LOCK_MESSAGES)
    )


def is_disk_error(exc: BaseException) -> bool:
    """Whether `exc` is DuckDB failing to read or write its file (an IO error, or a commit the disk refused)."""
    return isinstance(exc, duckdb.IOException) or (
        isinstance(exc, duckdb.Error) and any(m in str(exc) for m in _DISK_FULL)
    )


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
    if any(m in text for m in _DISK_FULL):
        folder = os.path.dirname(os.path.abspath(database)) if database else "the database's folder"
        return (
            f"{where}the disk is full ({text}); the write was rolled back, so its tables keep their previous version; "
            f"free space where the file lives (df -h {folder}) and run again"
        )
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


def _intent_path(database: str) -> str | None:
    return None if database == ":memory:" or database.startswith(("md:", "motherduck:")) else f"{database}.writer"


# One writer lock per file and process, counted: a step's IO manager and its DuckDB resource may both write.
_held: dict[str, list] = {}
_held_guard = threading.Lock()


@contextmanager
def writer_intent(database: str, patience_s: float = WRITER_PATIENCE_S) -> Iterator[None]:
    """Hold `<database>.writer` exclusively: readers wait until the block ends. Other writers (other processes)
    wait for it up to `patience_s`, then the lock error is raised like DuckDB's own."""
    path = _intent_path(database)
    if path is None:
        yield
        return
    key = os.path.abspath(path)
    with _held_guard:
        mine = _held.get(key)
        if mine is not None:
            mine[1] += 1
    if mine is None:
        os.makedirs(os.path.dirname(key) or ".", exist_ok=True)
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
        deadline, attempt = time.monotonic() + patience_s, 0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise duckdb.IOException(
                        f'Could not set lock on file "{database}": Conflicting lock is held by another writer '
                        f"({key}) for {patience_s:.0f} s"
                    ) from None
                time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))
                attempt += 1
        with _held_guard:
            _held[key] = [fd, 1]
    try:
        yield
    finally:
        with _held_guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                fcntl.flock(entry[0], fcntl.LOCK_UN)
                os.close(entry[0])


def writer_waiting(database: str) -> bool:
    """Whether a writer (another process, or this one) holds or waits for `database`; readers then wait."""
    path = _intent_path(database)
    if path is None:
        return False
    if os.path.abspath(path) in _held:
        return False  # this process is the writer; DuckDB itself refuses a second configuration of the file
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # no writer has run yet (or the folder is not ours to read): DuckDB's lock still guards
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def connect_reader(database: str, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection, refused with WriterWaiting while a writer waits: call it inside retry_locked."""
    if writer_waiting(database):
        raise WriterWaiting(f'Could not set lock on file "{database}": a writer is waiting for it')
    return duckdb.connect(database, read_only=True, config=config or {})


@contextmanager
def writer_connection(
    database: str, config: dict | None = None, patience_s: float = WRITER_PATIENCE_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection held under `writer_intent`, waiting out readers and writers for `patience_s`."""
    with writer_intent(database, patience_s):
        conn = retry_locked(
            lambda: duckdb.connect(database, read_only=False, config=config or {}), patience_s, database
        )
        try:
            yield conn
        finally:
            conn.close()


@contextmanager
def transaction(
    database: str, config: dict | None = None, patience_s: float = WRITER_PATIENCE_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection inside one transaction: committed when the block ends, rolled back (and the
    connection closed) when it raises, so a failed write (a full disk) leaves every table as it was. A disk
    error is re-raised as DuckDBFileError naming the file and the fix."""
    with writer_connection(database, config, patience_s) as conn:
        try:
            conn.begin()
            try:
                yield conn
                conn.commit()
            except BaseException:
                try:
                    conn.rollback()
                except duckdb.Error:
                    pass  # a transaction DuckDB already aborted has nothing left to roll back
                raise
        except duckdb.Error as exc:
            if not is_disk_error(exc) or is_lock_error(exc):
                raise
            raise DuckDBFileError(explain_io_error(exc, database)) from exc

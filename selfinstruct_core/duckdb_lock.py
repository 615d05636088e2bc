"""Waiting out DuckDB's single-writer lock: a run holds the file for seconds, so a retry with backoff succeeds."""

from __future__ import annotations

import random
import time
from typing import Callable, TypeVar

import duckdb

T = TypeVar("T")


def retry_locked(action: Callable[[], T], patience_s: float) -> T:
    """`action()`, retried with jittered exponential backoff while the file is locked (duckdb.IOException).

    After `patience_s` the last IOException is raised; other errors are raised at once.
    """
    deadline, attempt = time.monotonic() + patience_s, 0
    while True:
        try:
            return action()
        except duckdb.IOException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(1.0, 0.02 * 2 ** attempt) * (0.5 + random.random()))
            attempt += 1

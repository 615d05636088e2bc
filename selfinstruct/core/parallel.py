"""Run a function over items on a few threads, each seeing the caller's `dspy.context` (LM, adapter).

    with dspy.context(lm=lm):
        answers = thread_map(lambda q: program(question=q), questions, threads=8)

Dagster-free. With the local backend, concurrent LM calls are gathered into batched generation, so
threads buy throughput even on a 2-core CPU; remote backends simply see concurrent requests.
Results keep the input order; the first exception is raised after all workers finish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from dspy.dsp.utils.settings import thread_local_overrides

T = TypeVar("T")
R = TypeVar("R")


def thread_map(fn: Callable[[T], R], items: Sequence[T], threads: int = 8) -> list[R]:
    if threads <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    parent = thread_local_overrides.get().copy()

    def run(item: T) -> R:
        token = thread_local_overrides.set({**thread_local_overrides.get(), **parent})
        try:
            return fn(item)
        finally:
            thread_local_overrides.reset(token)

    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(run, items))

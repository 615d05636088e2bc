"""Give a process's idle memory back to the operating system before a heavy child starts.

    on_release(my_cache.clear)       # a module registers what it can drop and rebuild on next use
    before, after = release_memory()  # drop those caches, collect, trim the C heap; RSS in GiB (None off Linux)

Dagster-free. A `make demo` run is one process: by the time a trainer starts as a child, the parent holds models
that earlier steps loaded and, worse, heap pages glibc keeps after Python and PyTorch freed them (measured: a
process that loaded SmolLM2, generated and dropped it sat at 0.98 GiB until `malloc_trim(0)` took it to 0.48).
Both count against the run's peak while the child trains, so the training launcher calls `release_memory` first.
What a releaser drops must be rebuilt on demand by its owner (a model reloads on its next call).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)

_RELEASERS: list[Callable[[], None]] = []


def on_release(releaser: Callable[[], None]) -> Callable[[], None]:
    """Register `releaser` (no arguments) to run on every `release_memory`; returns it (usable as a decorator)."""
    if releaser not in _RELEASERS:
        _RELEASERS.append(releaser)
    return releaser


def status_kib(field: str, pid: int | str = "self") -> int | None:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM: the peak RSS the kernel keeps), None where /proc lacks it."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_gib() -> float | None:
    """This process's resident set size in GiB, from /proc (None where there is no /proc)."""
    kib = status_kib("VmRSS")
    return None if kib is None else kib / 2**20


def trim_heap() -> bool:
    """Ask glibc to return free heap pages to the OS (`malloc_trim(0)`); False where libc has no such call."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False


M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h


def _mallopt(param: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.mallopt(param, value) == 1
    except (OSError, AttributeError):
        return False


def limit_malloc_arenas(n: int) -> bool:
    """Cap glibc's malloc arenas at `n` (`mallopt(M_ARENA_MAX, n)`, as MALLOC_ARENA_MAX=n would at start-up).

    By default glibc gives threads up to 8 arenas per core, and each keeps the pages its threads freed: a step that
    answers on 8 threads leaves memory behind in arenas the next step's threads never reuse. Takes effect for
    arenas made after the call, so call it early. False where libc has no mallopt (not glibc) or refuses the value.
    """
    if n < 1:
        raise ValueError(f"the malloc arena limit must be >= 1, got {n}")
    return _mallopt(M_ARENA_MAX, n)


def tune_malloc(arenas: int = 2) -> dict[str, int]:
    """`limit_malloc_arenas(arenas)` unless the environment sets MALLOC_ARENA_MAX (glibc applied it at start-up).

    What was applied, by variable name. Processes that run steps call this first (see selfinstruct_assets/
    memory_hooks.py).
    """
    if not os.environ.get("MALLOC_ARENA_MAX") and limit_malloc_arenas(arenas):
        return {"MALLOC_ARENA_MAX": arenas}
    return {}


def release_memory(drop_caches: bool = True) -> tuple[float | None, float | None]:
    """Run every registered releaser, collect garbage and trim the heap; (RSS before, RSS after) in GiB.

    drop_caches=False keeps what the releasers would drop (loaded models, memoised embeddings: the working set
    of the next step) and only collects and trims, which is what runs after every step of a job.
    A releaser that raises is logged with its name and skipped: freeing memory is an optimisation, never a reason
    to fail the step that asked for it.
    """
    before = rss_gib()
    for releaser in list(_RELEASERS) if drop_caches else []:
        try:
            releaser()
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.warning(
                "memory releaser %s failed: %s: %s",
                getattr(releaser, "__qualname__", releaser),
                type(exc).__name__,
                exc,
            )
    gc.collect()
    trim_heap()
    return before, rss_gib()

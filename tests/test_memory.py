"""release_memory: registered caches are dropped, the C heap is trimmed, and loaded models reload on next use.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_memory.py
"""

import ctypes
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from selfinstruct_core import memory  # noqa: E402
from selfinstruct_core.memory import on_release, release_memory, rss_gib, trim_heap  # noqa: E402


@pytest.fixture
def releasers(monkeypatch):
    monkeypatch.setattr(memory, "_RELEASERS", [])
    return memory._RELEASERS


def test_registered_releasers_run_once_each_and_a_failing_one_does_not_stop_the_rest(releasers, caplog):
    calls = []
    def first():
        calls.append("first")

    def broken():
        raise RuntimeError("cache is gone")

    def last():
        calls.append("last")

    for r in (first, broken, last, first):  # registering twice keeps one entry
        on_release(r)
    with caplog.at_level(logging.WARNING, logger="selfinstruct_core.memory"):
        before, after = release_memory()
    assert calls == ["first", "last"]
    assert "broken" in caplog.text and "RuntimeError: cache is gone" in caplog.text
    assert before > 0.01 and after > 0.01  # this is Linux: /proc/self/statm is there


def test_trim_gives_freed_heap_pages_back():
    """1 KiB blocks (below glibc's mmap threshold) freed behind a live block stay resident until malloc_trim."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    trim_heap()
    n, size = 200_000, 1024  # ~200 MiB
    blocks = [libc.malloc(size) for _ in range(n)]
    for b in blocks:
        ctypes.memset(b, 1, size)
    pin = libc.malloc(size)  # keeps the heap's top in use, so free() alone cannot shrink it
    for b in blocks:
        libc.free(b)
    held = rss_gib()
    assert trim_heap() is True
    given_back = held - rss_gib()
    libc.free(pin)
    assert given_back > 0.5 * n * size / 2**30, f"trim gave back only {given_back:.3f} GiB"


def test_local_lm_weights_are_dropped_and_reloaded(tiny):
    from resources.local_lm import LocalLM

    lm = LocalLM(tiny, max_tokens=4)
    chat = [{"role": "user", "content": "Which law governs?"}]
    first = lm(messages=chat)
    tok, model, _ = lm.load()
    assert lm._rt.loaded is not None
    del tok, model
    release_memory()
    assert lm._rt.loaded is None
    assert lm(messages=[{"role": "user", "content": "Which law governs? Again."}])  # reloads
    assert lm._rt.loaded is not None
    assert lm(messages=chat) == first


def test_loaded_retrievers_are_forgotten(tmp_path):
    from selfinstruct_assets.retrieval import retriever_training

    retriever_training._LOADED[("folder", 1)] = object()
    release_memory()
    assert ("folder", 1) not in retriever_training._LOADED


def test_a_republished_retriever_replaces_its_old_version(tmp_path, monkeypatch):
    from selfinstruct_assets.retrieval import retriever_training

    loads = []
    monkeypatch.setattr(retriever_training, "_LOADED", {})
    monkeypatch.setattr(retriever_training, "_load_embedder", lambda folder, bs: loads.append(folder) or (lambda t: t))
    folder = tmp_path / "retriever"
    folder.mkdir()
    first = retriever_training.model_embedder(folder)
    assert retriever_training.model_embedder(folder) is first and len(loads) == 1  # same version: loaded once
    os.utime(folder, ns=(1, 1))  # republished: a new mtime
    retriever_training.model_embedder(folder)
    assert len(loads) == 2 and len(retriever_training._LOADED) == 1

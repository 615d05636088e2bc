"""release_memory: registered caches are dropped, the C heap is trimmed, and loaded models reload on next use.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_memory.py
"""

import ctypes
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from selfinstruct.core import memory  # noqa: E402
from selfinstruct.core.memory import on_release, release_memory, rss_gib, trim_heap  # noqa: E402


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
    with caplog.at_level(logging.WARNING, logger="selfinstruct.core.memory"):
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
    from selfinstruct.retrieval import model as retriever_model

    retriever_model._LOADED[("folder", 1)] = object()
    release_memory()
    assert ("folder", 1) not in retriever_model._LOADED


def test_a_republished_retriever_replaces_its_old_version(tmp_path, monkeypatch):
    from selfinstruct.retrieval import model as retriever_model

    loads = []
    monkeypatch.setattr(retriever_model, "_LOADED", {})
    monkeypatch.setattr(retriever_model, "_load_embedder", lambda folder, bs: loads.append(folder) or (lambda t: t))
    folder = tmp_path / "retriever"
    folder.mkdir()
    first = retriever_model.model_embedder(folder)
    assert retriever_model.model_embedder(folder) is first and len(loads) == 1  # same version: loaded once
    os.utime(folder, ns=(1, 1))  # republished: a new mtime
    retriever_model.model_embedder(folder)
    assert len(loads) == 2 and len(retriever_model._LOADED) == 1


def test_a_step_release_keeps_the_caches_but_still_trims(releasers, monkeypatch):
    dropped, trims = [], []
    on_release(lambda: dropped.append(1))
    monkeypatch.setattr(memory, "trim_heap", lambda: trims.append(1) or True)
    before, after = release_memory(drop_caches=False)
    assert dropped == [] and trims == [1] and before > 0.01 and after > 0.01
    release_memory()
    assert dropped == [1] and trims == [1, 1]


ARENAS_PROBE = """
import ctypes, sys, threading
from selfinstruct.core.memory import limit_malloc_arenas
if sys.argv[1] != "none":
    assert limit_malloc_arenas(int(sys.argv[1]))
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
barrier = threading.Barrier(6)
def work():
    barrier.wait()          # all six threads alive at once: none can inherit an exited thread's arena
    libc.malloc(4096)
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
libc.malloc_stats()         # one "Arena N:" block per arena, on stderr
"""


@pytest.mark.parametrize("cap, most", [("none", None), ("1", 1), ("2", 2)])
def test_the_arena_cap_bounds_how_many_arenas_threads_get(cap, most):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", ARENAS_PROBE, cap], capture_output=True, text=True, env=env, check=True)
    arenas = sum(line.startswith("Arena ") for line in out.stderr.splitlines())
    if most is None:
        assert arenas > 2, out.stderr  # uncapped: the six threads get arenas of their own
    else:
        assert 1 <= arenas <= most, out.stderr


def test_tune_malloc_refuses_nonsense_and_leaves_an_explicit_environment_alone(monkeypatch):
    with pytest.raises(ValueError, match="arena limit must be >= 1"):
        memory.limit_malloc_arenas(0)
    calls = []
    monkeypatch.setattr(memory, "_mallopt", lambda param, value: calls.append((param, value)) or True)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.tune_malloc() == {} and calls == []
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert memory.tune_malloc(arenas=3) == {"MALLOC_ARENA_MAX": 3} and calls == [(memory.M_ARENA_MAX, 3)]


def test_every_asset_step_releases_memory_in_a_job_and_in_a_plain_materialisation(monkeypatch):
    import dagster as dg

    from selfinstruct_assets import memory_hooks
    from selfinstruct_assets.definitions import ASSETS

    assets = [a for a in ASSETS if isinstance(a, dg.AssetsDefinition)]
    assert len(assets) > 20 and all(memory_hooks.RELEASE_HOOKS <= set(a.hook_defs) for a in assets)
    calls = []
    monkeypatch.setattr(
        memory_hooks, "release_memory", lambda drop_caches=True: calls.append(drop_caches) or (2.0, 1.0)
    )

    @dg.asset
    def upstream() -> int:
        return 1

    @dg.asset
    def downstream(upstream: int) -> int:
        raise RuntimeError("boom")

    hooked = [a.with_hooks(memory_hooks.RELEASE_HOOKS) for a in (upstream, downstream)]
    defs = dg.Definitions(assets=hooked, jobs=[dg.define_asset_job("probe")])
    assert not defs.resolve_job_def("probe").execute_in_process(raise_on_error=False).success
    assert calls == [False, False]  # after the step that succeeded and after the one that failed
    assert dg.materialize(hooked[:1]).success  # the UI's ad hoc materialisations run the hook too
    assert calls == [False, False, False]


def test_the_step_release_is_logged_only_when_it_frees_something(monkeypatch):
    from types import SimpleNamespace

    from selfinstruct_assets import memory_hooks as hooks

    lines = []
    context = SimpleNamespace(step_key="rag_eval", log=SimpleNamespace(info=lines.append))
    for freed in ((2.0, 1.0), (2.0, 1.99)):
        monkeypatch.setattr(hooks, "release_memory", lambda drop_caches=True, f=freed: f)
        assert hooks.release_after_step(context) == freed
    assert lines == ["after rag_eval this process released memory: RSS 2.00 -> 1.00 GiB"]

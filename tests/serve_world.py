"""The world the `selfinstruct serve` tests run against, and the helpers they share to ask it and wait on it.

The world (bench_serve.TinyWorld): the tiny random model with two LoRA adapters (A served first, B), two CUAD
contracts indexed in embedded Chroma with the hashing embedder, the real hybrid retriever, and the app under
uvicorn on loopback. Waits have deadlines; nothing asserts a latency.

A test module imports the fixtures `tiny_world` and `fresh_world` (named `world` and `fresh`); each module that
does builds its own world.
"""

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_serve import TinyWorld, call  # noqa: E402

A, B = "aaaaaa000001", "bbbbbb000002"
TOKEN = "serve-test-token-0123456789"


@pytest.fixture(scope="module", name="world")
def tiny_world(tmp_path_factory, tiny):
    return TinyWorld(tmp_path_factory.mktemp("serve"), n_contracts=2, base=tiny)


@pytest.fixture(name="fresh")
def fresh_world(world, tmp_path):
    """The world with A served and empty inboxes of its own."""
    world.promote(A)
    world.inboxes(tmp_path / "inbox")
    return world


def wait_for(check, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while not (got := check()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:.0f} s"
        time.sleep(0.05)
    return got


def ask(url: str, question: str, contract_id: str, **extra) -> dict:
    status, body = call("POST", f"{url}/v1/answers", {"question": question, "contract_id": contract_id, **extra})
    assert status == 200, body
    return body


def splits(world) -> dict:
    return {c: "eval" for c in world.contracts}

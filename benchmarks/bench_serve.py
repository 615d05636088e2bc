"""Load on `selfinstruct serve` over loopback: concurrent clients, a promotion halfway, and the query inbox checked.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_serve.py                       # 16 clients, 1,000 requests
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_serve.py --requests 200 --out results_serve.json

The world is small and built here: the tiny random model (make_tiny_model) with two LoRA adapters, a few CUAD
contracts from the local copy indexed in embedded Chroma with the hashing embedder, the real hybrid retriever
(make_retriever) and the real service and app (selfinstruct.serving) under uvicorn in this process. Adapter A is
served; after half the requests adapter B is promoted (registry.promote, what `selfinstruct promote --to` runs).
The client that sends the middle request promotes B and waits until the server serves it (the other clients
go on meanwhile). The run stops by itself after --requests. Reported: p50/p95/max latency seen by the clients, errors, requests
answered by each adapter, and whether the query inbox holds exactly one line per answered request (after the
server stopped, i.e. flushed). tests/test_serve_load.py runs the same on a few dozen requests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy in between
QUESTIONS = [
    "Which state's law governs this agreement?",
    "Can either party terminate the agreement for convenience?",
    "Is there a limitation of liability?",
    "Does the agreement renew automatically?",
    "Is there an exclusivity obligation?",
    "What is the expiration date of the contract?",
    "Is there a non-compete clause?",
    "Can the agreement be assigned without consent?",
]


def call(method: str, url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 120):
    """(status, JSON body) of one request; HTTP errors come back as their status and body, not raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def make_adapter(base: Path, out: Path, seed: int) -> Path:
    """A LoRA adapter with random A and B (init_lora_weights=False), so it really changes the scores."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    model.save_pretrained(out)
    return out


def cuad_contracts(n: int, max_chars: int = 20_000) -> dict[str, str]:
    """`n` contracts of the local CUAD copy (../shared/cuad/CUAD_v1.zip), cut to `max_chars`, by a short id."""
    from selfinstruct.corpus.source import default_cuad_uri

    with zipfile.ZipFile(default_cuad_uri()) as zf:
        names = sorted(x for x in zf.namelist() if "/full_contract_txt/" in x and x.endswith(".txt"))[:n]
        return {f"contract-{i}": zf.read(x).decode("utf-8", "replace")[:max_chars] for i, x in enumerate(names)}


class TinyWorld:
    """Everything `serve` needs, small: base model, adapters A and B, a served pointer on A, contracts, index."""

    def __init__(self, root: Path, n_contracts: int = 3, base: Path | None = None):
        from resources.project import ChromaResource, EmbedderResource
        from selfinstruct.core.base_model import make_tiny_model
        from selfinstruct.corpus.chunking import chunk_contracts
        from selfinstruct.retrieval.retriever import make_retriever
        from selfinstruct.serving.registry import snapshot_adapter

        self.root = Path(root)
        self.base = base or make_tiny_model(self.root / "model")
        self.adapters = {
            "aaaaaa000001": make_adapter(self.base, self.root / "adapters" / "a", 1),
            "bbbbbb000002": make_adapter(self.base, self.root / "adapters" / "b", 2),
        }
        self.serving = self.root / "serving"
        self.snapshots = {i: snapshot_adapter(p, self.serving, i) for i, p in self.adapters.items()}
        self.promote("aaaaaa000001")
        self.contracts = cuad_contracts(n_contracts)
        embedder, chroma = EmbedderResource(backend="hashing"), ChromaResource(path=str(self.root / "chroma"))
        chroma.store(embedder.get()).sync(
            chunk_contracts([{"contract_id": c, "text": t} for c, t in self.contracts.items()], 1000, 0)
        )
        self.retrieve = make_retriever(embedder, chroma)  # hybrid, as benchmark_scores without a trained retriever
        self.inboxes(self.root / "inbox")

    def inboxes(self, folder: Path) -> None:
        """Point the query and feedback inboxes at `folder`/queries and `folder`/feedback."""
        from selfinstruct.core.inbox import Inbox

        self.queries = Inbox(str(Path(folder) / "queries"))
        self.feedback = Inbox(str(Path(folder) / "feedback"))

    def promote(self, adapter_id: str) -> dict:
        from selfinstruct.serving.registry import promote

        entry = {
            "method": "sft",
            "adapter_id": adapter_id,
            "path": str(self.snapshots[adapter_id]),
            "scores": {"cuad_match": 0.5},
            "benchmark_run_id": "bench",
        }
        return promote(self.serving, entry, f"bench_serve promotes {adapter_id}")

    def load_scorer(self, adapter: Path | None):
        from resources.local_lm import LocalLM
        from selfinstruct.answering import SpanScorer

        tok, model, _ = LocalLM(self.base, adapter).load()
        return SpanScorer(model, tok)

    def service(self, candidate: str | None = None, load_scorer=None, margin_for=None, **settings):
        from selfinstruct.serving.serve_settings import ServeSettings
        from selfinstruct.serving.service import ServedPointer, Service

        named = None
        if candidate is not None:
            found = {"adapter_id": candidate, "method": "dpo", "folder": Path(self.snapshots[candidate])}
            named = lambda: found  # noqa: E731
        return Service(
            self.retrieve,
            self.contracts,
            load_scorer or self.load_scorer,
            ServedPointer(self.serving),
            self.queries,
            ServeSettings(**{"poll_s": 0.2, **settings}),
            candidate=named,
            seed=0,
            margin_for=margin_for,
        )

    def app(self, service, token: str | None = None, **kw):
        from selfinstruct.serving.app import create_app

        return create_app(service, self.feedback, self.queries, token=token, **kw)

    def inbox_lines(self) -> list[dict]:
        return [
            json.loads(line)
            for f in self.queries.files()
            for line in self.queries.read(f.name).decode().splitlines()
            if line.strip()
        ]


def run_load(
    base_url: str, jobs: list[tuple[str, str]], clients: int, token: str | None = None, at_half: callable = None
) -> dict:
    """POST /v1/answers for each (question, contract_id) from `clients` threads; `at_half()` runs once when half
    the requests were sent. Latency is the client's wall time per request."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    half, sent, lock = len(jobs) // 2, [0], threading.Lock()

    def one(job: tuple[str, str]) -> tuple[float, int, dict | str]:
        with lock:
            sent[0] += 1
            fire = sent[0] == half and at_half is not None
        if fire:
            at_half()
        t0 = time.perf_counter()
        status, body = call("POST", f"{base_url}/v1/answers", {"question": job[0], "contract_id": job[1]}, headers)
        return time.perf_counter() - t0, status, body

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, jobs))
    wall = time.perf_counter() - t0
    ok = [(s, b) for _, s, b in results if s == 200]
    lat = sorted(t for t, s, _ in results if s == 200)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else lat * 99
    return {
        "requests": len(jobs),
        "clients": clients,
        "answered": len(ok),
        "errors": len(results) - len(ok),
        "error_samples": [b for _, s, b in results if s != 200][:3],
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(jobs) / wall, 1),
        "p50_s": round(q[49], 4) if lat else None,
        "p95_s": round(q[94], 4) if lat else None,
        "max_s": round(lat[-1], 4) if lat else None,
        "by_adapter": dict(Counter(b["adapter_id"] for _, b in ok)),
        "request_ids": [b["request_id"] for _, b in ok],
    }


def bench(root: Path, requests: int, clients: int, n_contracts: int = 3) -> dict:
    from selfinstruct.serving.app import serve_in_thread

    t0 = time.perf_counter()
    world = TinyWorld(root, n_contracts)
    setup_s = time.perf_counter() - t0
    ids = sorted(world.contracts)
    jobs = [(QUESTIONS[i % len(QUESTIONS)], ids[i % len(ids)]) for i in range(requests)]
    token = "bench-token-" + "x" * 20
    service = world.service()

    def promote_b() -> None:  # then wait for the server to follow, so the second half really meets B
        world.promote("bbbbbb000002")
        deadline = time.monotonic() + 60
        while service.model_ids()["served"] != "bbbbbb000002" and time.monotonic() < deadline:
            time.sleep(0.05)

    with serve_in_thread(world.app(service, token=token)) as url:
        report = run_load(url, jobs, clients, token, at_half=promote_b)
    lines = world.inbox_lines()  # the server has stopped: its query log is flushed
    ids_logged = Counter(line["query_id"] for line in lines)
    answered = report.pop("request_ids")
    report.update(
        setup_s=round(setup_s, 1),
        swaps=service.swaps,
        inbox_lines=len(lines),
        inbox_files=len(world.queries.files()),
        inbox_exactly_once=sorted(ids_logged) == sorted(answered) and set(ids_logged.values()) <= {1},
        token_in_inbox=any(token in json.dumps(line) for line in lines),
        model="tiny random Llama (2 layers, hidden 64) + LoRA r2 adapters",
        contracts=n_contracts,
        cpus=os.cpu_count(),
    )
    return report


def main(argv: list[str] | None = None) -> int:
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--contracts", type=int, default=3)
    p.add_argument("--out", default=None, help="write the report as JSON here (e.g. benchmarks/results_serve.json)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = bench(Path(tmp), args.requests, args.clients, args.contracts)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if report["errors"] == 0 and report["inbox_exactly_once"] else 1


if __name__ == "__main__":
    sys.exit(main())

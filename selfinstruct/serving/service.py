"""What `selfinstruct serve` does, without HTTP: answer with the served adapter (or the A/B candidate), follow
promotions, and log every answered request to the query inbox.

    service = Service(retrieve, contracts, load_scorer, served=ServedPointer(home / "serving"),
                      queries=inbox_for("queries"), settings=ServeSettings(candidate_share=0.1))
    service.start()                                    # loads the served model, starts the poller and the log
    record = service.ask("Which law governs?", "c-1")  # quote + contract offsets, or "No such clause."
    service.stop()                                     # flushes the query log

Dagster-free; serving/app.py puts HTTP in front of it. The answer is the benchmark's (serving/answer.py's
`answer_question` is the one call); the settings live in serve_settings.py, the query log in query_log.py and the
refusals in request_errors.py. A poller re-reads the served pointer every `poll_s`; a new adapter is loaded beside
the old one and swapped in by one assignment, so a request keeps the model it started with and a promotion is
served within seconds without a restart.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from selfinstruct.answering import NO_CLAUSE, SpanScorer
from selfinstruct.core.artifact_store import ArtifactStore
from selfinstruct.serving.answer import answer_question, locate
from selfinstruct.serving.query_log import QueryLog, query_line
from selfinstruct.serving.registry import adapter_dir, current
from selfinstruct.serving.request_errors import RequestError, utf8_text
from selfinstruct.serving.serve_settings import ServeSettings

log = logging.getLogger(__name__)

BASE = "base"  # the adapter id answered with while nothing is promoted: the base model alone
SERVED, CANDIDATE = "served", "candidate"  # the A/B arms recorded with each request


# ------------------------------------------------------------------------------------------------ the models


@dataclass(frozen=True)
class Model:
    """One loaded adapter (or the base model) and the lock its forward passes take in turn."""

    adapter_id: str
    method: str
    folder: Path | None
    scorer: SpanScorer
    margin: float = 0.0  # its abstain margin: "No such clause." unless the best window beats it by this
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)


def entry_key(entry: dict | None) -> tuple:
    return (BASE, None) if entry is None else (entry["adapter_id"], str(entry["folder"]))


class ServedPointer:
    """The promoted entry `serving_model` marks current: {adapter_id, method, folder}, or None before any."""

    def __init__(self, serving_root: Path, store: ArtifactStore | None = None):
        self.root, self.store = Path(serving_root), store

    def __call__(self) -> dict | None:
        entry = current(self.root, self.store)
        if entry is None:
            return None
        folder = adapter_dir(self.root, entry, self.store)
        return {"adapter_id": entry["adapter_id"], "method": entry["method"], "folder": folder}


# ------------------------------------------------------------------------------------------------ the service


class Service:
    """Answers (contract, question) requests with the served model or the candidate, and records each one."""

    def __init__(
        self,
        retrieve: Callable[[str, str, int], list[str]],
        contracts: Mapping[str, str],
        load_scorer: Callable[[Path | None], SpanScorer],
        served: Callable[[], dict | None],
        queries,
        settings: ServeSettings | None = None,
        candidate: Callable[[], dict | None] | None = None,
        seed: int | None = None,
        keep_records: int = 50_000,
        margin_for: Callable[[str, str], float | None] | None = None,
    ):
        self.retrieve, self.contracts, self.load_scorer = retrieve, contracts, load_scorer
        self.margin_for = margin_for  # (adapter_id, method) -> its recorded abstain margin, None if none
        self.served_entry, self.candidate_entry = served, candidate or (lambda: None)
        self.settings = settings or ServeSettings()
        self.log = QueryLog(queries, self.settings.flush_s)
        self.models: dict[str, Model | None] = {SERVED: None, CANDIDATE: None}
        self.errors: dict[str, str] = {}  # arm -> why its latest pointer could not be loaded
        self._rng = random.Random(seed)
        self._retrieve_lock, self._load_lock, self._records_lock = threading.Lock(), threading.Lock(), threading.Lock()
        self.records: OrderedDict[str, dict] = OrderedDict()  # request_id -> record, the newest `keep_records`
        self.keep_records = keep_records
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.swaps = 0  # how many times a new model replaced the one an arm served

    # -- models ----------------------------------------------------------------------------------------
    def _load(self, entry: dict | None) -> Model:
        folder = None if entry is None else Path(entry["folder"])
        adapter_id, method = (BASE, BASE) if entry is None else (entry["adapter_id"], entry["method"])
        recorded = self.margin_for(adapter_id, method) if self.margin_for else None
        margin = self.settings.margin if recorded is None else recorded
        return Model(adapter_id, method, folder, self.load_scorer(folder), margin)

    def refresh(self) -> None:
        """Read the served pointer and the candidate; load what changed and swap it in (one assignment per arm)."""
        with self._load_lock:
            for arm, read in ((SERVED, self.served_entry), (CANDIDATE, self.candidate_entry)):
                try:
                    entry = read()
                    if arm == CANDIDATE and entry is None:
                        self.models[arm] = None
                        continue
                    now = self.models[arm]
                    if now is not None and entry_key(entry) == (now.adapter_id, now.folder and str(now.folder)):
                        self.errors.pop(arm, None)
                        continue
                    model = self._load(entry)
                except Exception as exc:  # the arm keeps what it served; /v1/models shows why
                    self.errors[arm] = f"{type(exc).__name__}: {exc}"
                    log.error("serve: the %s arm keeps its model: %s", arm, self.errors[arm])
                    continue
                self.models[arm] = model  # requests that already hold the old model finish with it
                self.swaps += now is not None
                self.errors.pop(arm, None)
                log.info("serve: %s arm now answers with %s (%s)", arm, model.adapter_id, model.method)

    def start(self) -> Service:
        self.refresh()
        if self.models[SERVED] is None:
            raise RuntimeError(f"no model to serve: {self.errors.get(SERVED, 'the served pointer gave none')}")
        self.log.start()

        def poll() -> None:
            while not self._stop.wait(self.settings.poll_s):
                self.refresh()

        self._poller = threading.Thread(target=poll, name="served-pointer", daemon=True)
        self._poller.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        self.log.close()

    # -- requests ---------------------------------------------------------------------------------------
    def model_ids(self) -> dict[str, str | None]:
        return {arm: (m.adapter_id if m else None) for arm, m in self.models.items()}

    def pick(self, model: str | None = None) -> tuple[str, Model]:
        """(arm, model) for one request: the client's named adapter, else candidate_share of requests to the
        candidate (when there is one other than the served adapter), else the served one."""
        served, cand = self.models[SERVED], self.models[CANDIDATE]
        if cand is not None and served is not None and cand.adapter_id == served.adapter_id:
            cand = None
        if model and model not in ("selfinstruct", SERVED):
            for arm, m in ((SERVED, served), (CANDIDATE, cand)):
                if m is not None and model == m.adapter_id:
                    return arm, m
            known = ", ".join(repr(m.adapter_id) for m in (served, cand) if m is not None)
            raise RequestError(
                f"unknown model {model!r}: this server answers with 'selfinstruct' (the served adapter, A/B "
                f"included) or {known}; GET /v1/models lists them",
                404,
            )
        if cand is not None and self._rng.random() < self.settings.candidate_share:
            return CANDIDATE, cand
        if served is None:  # start() refuses to serve without one
            raise RequestError("no model is loaded yet", 503)
        return SERVED, served

    def check(self, question: object, contract_id: object) -> tuple[str, str]:
        if not isinstance(question, str) or not question.strip():
            raise RequestError("question must be a non-empty string", 422)
        utf8_text(question, "question")
        if len(question) > self.settings.max_question_chars:
            raise RequestError(
                f"question is {len(question)} characters; at most {self.settings.max_question_chars} are accepted", 413
            )
        if not isinstance(contract_id, str) or not contract_id:
            raise RequestError("contract_id must be a non-empty string (a contract_id of cuad_contracts)", 422)
        utf8_text(contract_id, "contract_id")
        if contract_id not in self.contracts:
            raise RequestError(
                f"unknown contract_id {contract_id[:100]!r}: it must be a contract_id of cuad_contracts or "
                'added_contracts (`selfinstruct query "select contract_id from cuad_contracts"` lists them)',
                404,
            )
        return question, contract_id

    def ask(self, question: object, contract_id: object, model: str | None = None) -> dict:
        """Answer one request and log it; the record returned is what the routes send back."""
        question, contract_id = self.check(question, contract_id)
        arm, chosen = self.pick(model)  # bound once: a promotion during this request changes the next one
        t0 = time.perf_counter()
        with self._retrieve_lock:  # the index client and the retriever's per-contract cache are not thread-safe
            passages = self.retrieve(question, contract_id, self.settings.k)
        with chosen.lock:
            answer, _ = answer_question(
                chosen.scorer, lambda *_: passages, question, contract_id, self.settings, chosen.margin
            )
        start, end = locate(self.contracts[contract_id], passages, answer.text) if answer.has_clause else (None, None)
        record = {
            "request_id": uuid.uuid4().hex[:16],
            "question": question,
            "contract_id": contract_id,
            "answer": answer.text if answer.has_clause else NO_CLAUSE,
            "has_clause": answer.has_clause,
            "start": start,
            "end": end,
            "answer_score": answer.score,
            "adapter_id": chosen.adapter_id,
            "method": chosen.method,
            "arm": arm,
            "latency_s": round(time.perf_counter() - t0, 4),
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        self.log.add(query_line(record))
        with self._records_lock:
            self.records[str(record["request_id"])] = record
            while len(self.records) > self.keep_records:
                self.records.popitem(last=False)
        return record

    def passages(self, question: str, contract_id: str) -> list[str]:
        with self._retrieve_lock:
            return self.retrieve(question, contract_id, self.settings.k)

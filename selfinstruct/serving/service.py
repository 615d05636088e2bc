"""What `selfinstruct serve` does, without HTTP: answer with the served adapter (or the A/B candidate), follow
promotions, and log every answered request to the query inbox.

    service = Service(retrieve, contracts, load_scorer, served=ServedPointer(home / "serving"),
                      queries=inbox_for("queries"), settings=ServeSettings(candidate_share=0.1))
    service.start()                                    # loads the served model, starts the poller and the log
    record = service.ask("Which law governs?", "c-1")  # quote + contract offsets, or "No such clause."
    service.stop()                                     # flushes the query log

Dagster-free; serving/app.py puts HTTP in front of it. The answer is the benchmark's: `make_retriever`'s k chunks,
the candidate windows BM25 ranks best (answering.windows.top_windows, shown as the prompt's excerpts, as
benchmark.methods.scorer_answers does) and `SpanScorer.answer` with `margin` (`answer_question` is the one call). A poller re-reads the served pointer every
`poll_s`; a new adapter is loaded beside the old one and swapped in by one assignment, so a request keeps the model
it started with and a promotion is served within seconds without a restart.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from selfinstruct.answering import NO_CLAUSE, Answer, SpanScorer
from selfinstruct.answering.windows import N_WINDOWS, top_windows, window_excerpts
from selfinstruct.core.artifact_store import ArtifactStore
from selfinstruct.serving.registry import adapter_dir, current

log = logging.getLogger(__name__)

NO_TEXT = "no retrievable text"
BASE = "base"  # the adapter id answered with while nothing is promoted: the base model alone
SERVED, CANDIDATE = "served", "candidate"  # the A/B arms recorded with each request


@dataclass
class ServeSettings:
    k: int = 3  # chunks retrieved per question (benchmark_scores' k)
    n_windows: int = N_WINDOWS  # candidate windows BM25 keeps (benchmark_scores' n_windows; 0 keeps all)
    prompt: str = "windows"  # what the model reads: the candidate windows or the whole chunks (benchmark's prompt)
    # "No such clause." wins unless the best window beats it by this: the fallback for a model whose own abstain
    # margin (chosen by benchmark_scores on train-split questions) is not recorded; see Service's `margin_for`
    margin: float = 0.0
    candidate_share: float = 0.0  # share of requests the candidate arm answers (0: A/B off)
    poll_s: float = 1.0  # how often the served pointer (and the candidate) is re-read
    max_question_chars: int = 4000  # the query inbox's limit
    max_body_bytes: int = 64_000  # request bodies above it get 413
    flush_s: float = 0.5  # the query log is published as one inbox file per this many seconds of traffic

    def __post_init__(self):
        if self.k < 1 or self.n_windows < 0:
            raise ValueError(f"k must be >= 1 and n_windows >= 0, got k={self.k}, n_windows={self.n_windows}")
        if self.prompt not in ("windows", "chunks"):
            raise ValueError(f"prompt must be 'windows' or 'chunks' (as benchmark_scores), got {self.prompt!r}")
        if not isinstance(self.margin, (int, float)) or math.isnan(self.margin):
            raise ValueError(f"margin must be a number (-inf: always quote), got {self.margin!r}")
        if not 0.0 <= self.candidate_share <= 1.0:
            raise ValueError(f"candidate_share must lie in [0, 1] (0: A/B off), got {self.candidate_share!r}")
        if self.poll_s <= 0 or self.flush_s <= 0:
            raise ValueError(f"poll_s and flush_s must be > 0 seconds, got {self.poll_s}, {self.flush_s}")
        if self.max_question_chars < 1 or self.max_body_bytes < 1024:
            raise ValueError("max_question_chars must be >= 1 and max_body_bytes >= 1024")


class RequestError(ValueError):
    """A request the service cannot answer: `status` is the HTTP status, the message names the problem."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def utf8_text(text: str, name: str) -> str:
    """`text`, refused (422) when it holds a lone surrogate (JSON's "\\ud800"): such a string is no text, and
    an answer, an inbox line or a feedback row holding it cannot be written as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise RequestError(
            f"{name} holds {bad!r} at character {exc.start}, a lone surrogate that is no text; send UTF-8 text", 422
        ) from None
    return text


# ------------------------------------------------------------------------------------------------ the answer


def answer_question(
    scorer: SpanScorer,
    retrieve: Callable[[str, str, int], list[str]],
    question: str,
    contract_id: str,
    settings: ServeSettings,
    margin: float | None = None,
) -> tuple[Answer, list[str]]:
    """The one answering call, a local model's path in benchmark.methods.scorer_answers: (answer, passages).
    `margin` (the model's recorded abstain margin) replaces `settings.margin` when given."""
    passages = retrieve(question, contract_id, settings.k)
    if not passages:
        return Answer.none(0.0, method="lm", reason=NO_TEXT), []
    windows = top_windows(question, passages, settings.n_windows)
    shown = window_excerpts(windows, passages) if settings.prompt == "windows" else passages
    return scorer.answer(question, shown, settings.margin if margin is None else margin, windows), passages


def locate(contract_text: str, passages: Sequence[str], quote: str) -> tuple[int | None, int | None]:
    """Contract offsets of `quote`: inside the retrieved passage that holds it (chunks are slices of the contract),
    else its first occurrence in the contract; (None, None) when it is not in the contract."""
    for passage in passages:
        at, base = passage.find(quote), contract_text.find(passage)
        if at >= 0 and base >= 0:
            return base + at, base + at + len(quote)
    at = contract_text.find(quote)
    return (at, at + len(quote)) if at >= 0 else (None, None)


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


# ------------------------------------------------------------------------------------------------ the query log


class QueryLog:
    """Answered requests as query inbox lines, published as one new file per `flush_s` with traffic.

    `add` only appends to a buffer under a lock, so concurrent requests neither wait for the inbox nor lose or
    double a line: each line is taken out of the buffer exactly once, by the flush that publishes it. A write that
    fails puts its lines back (they go out with the next flush). `close` publishes what is left."""

    def __init__(self, inbox, flush_s: float = 0.5, prefix: str = "serve"):
        self.inbox, self.flush_s, self.prefix = inbox, flush_s, prefix
        self._lines: list[str] = []
        self._lock, self._write_lock = threading.Lock(), threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0  # lines published so far

    def add(self, line: dict) -> None:
        text = json.dumps(line, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")  # a line that cannot be written fails here, never in the buffer that later lines share
        with self._lock:
            self._lines.append(text)

    def flush(self) -> int:
        """Publish the buffered lines as one inbox file; how many."""
        with self._write_lock:  # one file at a time, so lines keep their order across files
            with self._lock:
                lines, self._lines = self._lines, []
            if not lines:
                return 0
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            try:
                self.inbox.write(
                    f"{self.prefix}-{stamp}-{uuid.uuid4().hex[:8]}.jsonl", ("\n".join(lines) + "\n").encode()
                )
            except Exception:
                with self._lock:
                    self._lines[:0] = lines
                raise
            self.written += len(lines)
            return len(lines)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.flush_s):
                try:
                    self.flush()
                except Exception as exc:  # kept in the buffer; the next tick tries again
                    log.error("query log: could not write to %s: %s", getattr(self.inbox, "location", "inbox"), exc)

        self._thread = threading.Thread(target=loop, name="query-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()


def query_line(record: dict) -> dict:
    """A request record in the query inbox's format (selfinstruct.intake.queries)."""
    return {
        "query_id": record["request_id"],
        "question": record["question"],
        "contract_id": record["contract_id"],
        "timestamp": record["timestamp"],
        "answer": record["answer"],
        "latency_s": record["latency_s"],
        "adapter": record["adapter_id"],
        "arm": record["arm"],
    }


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

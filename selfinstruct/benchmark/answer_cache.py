"""Answers computed once: a model's answer to a question is kept under what determines it, and reused.

    cache = AnswerCache(stored_rows)                        # rows of the benchmark_answer_cache table
    key = model_key("local:smollm2", adapter_id, n_windows=6, prompt="windows", pmi=False)
    answers = cache.answers(key, questions, contexts, lambda qs, cs: scorer_answers(scorer, qs, cs, 6, NEVER))
    append(cache.new_rows())                                # in the same transaction as the run's answers

Dagster-free. A refresh after new feedback retrains DPO and ORPO; the base model, SFT, the served adapter and
the oracle row did not change, so their answers to the same questions are read back instead of scored again
(the loop's refresh costs what changed). Keys are content hashes, never names:
- the model key holds the model's identity (the base model's name and the adapter's weights hash), the scoring
  settings, and a hash of the answering code's source, so a code change re-scores everything;
- the answer key holds the question and the exact passages the model was given (a retrained retriever or
  another `k` gives other passages, hence other keys).
Cached answers are the always-quote answers (margin -inf, their gap kept), so each run still chooses and applies
its own abstain margin. Values are JSON; a row that does not parse is not used (and scored again).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from selfinstruct.answering import Answer

TABLE = "benchmark_answer_cache"
COLUMNS = ("model_key", "answer_key", "value_json", "created_at")


def _sha(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def code_hash(*modules) -> str:
    """A hash of these modules' source files (a package: every .py file in its folder): the answering code a
    cached answer came from."""
    h = hashlib.sha256()
    for m in modules:
        f = Path(m.__file__)
        for src in sorted(f.parent.glob("*.py")) if f.name == "__init__.py" else [f]:
            h.update(src.name.encode() + b"\0" + src.read_bytes())
    return h.hexdigest()[:16]


def file_hash(path: str | Path) -> str:
    """A saved program's content (a RAG program is one JSON file)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:24]


def model_key(model: str, adapter_id: str, **settings: object) -> str:
    """The key of one model under one scoring setting (n_windows, prompt, pmi, code hash, ...)."""
    return _sha("model", model, adapter_id, settings)


def answer_key(question: Mapping, passages: Sequence[str]) -> str:
    return _sha("answer", question["question"], question.get("contract_id"), list(passages))


def answer_value(a: Answer) -> dict:
    return {
        "has_clause": a.has_clause,
        "text": a.text,
        "start": a.start,
        "end": a.end,
        "score": a.score,
        "detail": a.method_detail,
    }


def answer_of(v: Mapping) -> Answer:
    return Answer(bool(v["has_clause"]), str(v["text"]), v["start"], v["end"], float(v["score"]), dict(v["detail"]))


class AnswerCache:
    """Stored values by (model key, answer key), and the ones this run added."""

    def __init__(self, rows: Iterable[Sequence] = ()):
        self._values: dict[tuple[str, str], dict] = {}
        self._new: list[tuple[str, str, str]] = []
        self.unreadable = 0  # stored rows that did not parse (scored again, counted)
        for mk, ak, value in rows:
            try:
                self._values[(mk, ak)] = json.loads(value)
            except (TypeError, ValueError):
                self.unreadable += 1
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._values)

    def values(self, key: str, items: Sequence, compute: Callable[[list], list], item_key: Callable) -> list:
        """The value for each item under model `key`: stored ones read back, the rest from one `compute` call
        on the missing items (in their order), which are then stored."""
        keys = [item_key(x) for x in items]
        todo = [i for i, k in enumerate(keys) if (key, k) not in self._values]
        self.hits += len(items) - len(todo)
        self.misses += len(todo)
        if todo:
            fresh = compute([items[i] for i in todo])
            if len(fresh) != len(todo):
                raise ValueError(f"compute returned {len(fresh)} values for {len(todo)} items")
            for i, v in zip(todo, fresh):
                text = json.dumps(v, default=str)  # stored as read back: a first run gives what a later one reads
                if (key, keys[i]) not in self._values:
                    self._new.append((key, keys[i], text))
                self._values[(key, keys[i])] = json.loads(text)
        return [self._values[(key, k)] for k in keys]

    def answers(
        self,
        key: str,
        questions: Sequence[dict],
        contexts: Sequence[Sequence[str]],
        compute: Callable[[list[dict], list[Sequence[str]]], list[Answer]],
    ) -> list[Answer]:
        """`compute(questions, contexts)`'s answers, computed only for the pairs this cache does not hold."""
        pairs = list(zip(questions, contexts))
        got = self.values(
            key,
            pairs,
            lambda todo: [answer_value(a) for a in compute([q for q, _ in todo], [c for _, c in todo])],
            lambda p: answer_key(p[0], p[1]),
        )
        return [answer_of(v) for v in got]

    def new_rows(self) -> list[dict]:
        """Rows to append to the cache table: what this run computed."""
        now = datetime.now(UTC).replace(tzinfo=None)
        return [{"model_key": m, "answer_key": a, "value_json": v, "created_at": now} for m, a, v in self._new]

    def report(self) -> dict:
        return {"cache_hits": self.hits, "cache_misses": self.misses, "cache_unreadable_rows": self.unreadable}

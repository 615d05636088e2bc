"""Self-instruct: a teacher LM writes (question, answer) pairs for contract chunks, seeded by human examples.

Dagster-free. `generate_candidates` asks the teacher; `filter_candidates` keeps a triplet only when
its answer is grounded in its context, its lengths are sane and its question is not a near-duplicate
of one already kept for the same contract. Every rejected triplet is returned with its reason.

Grounding: an answer found verbatim (whitespace- and case-normalised) in its context is `exact`. A small
teacher often quotes a clause with a word changed or a phrase dropped; when nearly all of the answer's
words occur in one sentence of the context, that sentence, copied from the context, becomes the answer
(`aligned`, the teacher's text kept as `raw_answer`). Anything else is rejected as not grounded.
CUAD questions are category templates, so the same question on another contract is new data: questions
are de-duplicated within a contract, against the kept ones and the seed set.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import dspy
import numpy as np
from dspy.utils.exceptions import AdapterParseError

from selfinstruct.core.parallel import thread_map
from selfinstruct.corpus.spans import normalize_ws


class WriteContractQA(dspy.Signature):
    """Read the contract excerpt and write one question a lawyer would ask about it,
    with its short answer copied word for word from the excerpt."""

    context: str = dspy.InputField(desc="an excerpt of a contract")
    question: str = dspy.OutputField(desc="one question about the excerpt, ending with '?'")
    answer: str = dspy.OutputField(desc="a short phrase copied exactly from the excerpt")


_FIELD = re.compile(r"\[\[ ## (\w+) ## \]\]\s*(.*?)(?=\[\[ ## |\Z)", re.S)
_QLINE = re.compile(r"question\s*:\s*(.+)", re.I)
_ALINE = re.compile(r"answer\s*:\s*(.+)", re.I)


def parse_raw_qa(raw: str) -> tuple[str, str]:
    """Question and answer from a reply that ignored DSPy's format ('Question: ... Answer: ...')."""
    fields = {k: v.strip() for k, v in _FIELD.findall(raw or "")}
    if fields.get("question") and fields.get("answer"):
        return fields["question"], fields["answer"]
    q = _QLINE.search(raw or "")
    a = _ALINE.search(raw or "")
    return (q.group(1).strip() if q else ""), (a.group(1).strip() if a else "")


def generate_candidates(
    chunks: Sequence[dict], seeds: Sequence[dict], n_demos: int = 3, threads: int = 8
) -> list[dict]:
    """One candidate triplet per chunk, using the LM bound with `dspy.context`; seeds rotate as demos."""

    def write(item: tuple[int, dict]) -> dict:
        i, chunk = item
        demos = [seeds[(i + j) % len(seeds)] for j in range(min(n_demos, len(seeds)))] if seeds else []
        writer = dspy.Predict(WriteContractQA)
        writer.demos = [dspy.Example(context=d["context"], question=d["question"], answer=d["answer"]) for d in demos]
        try:
            pred = writer(context=chunk["text"])
            question, answer = str(pred.question), str(pred.answer)
        except AdapterParseError as exc:  # only a reply DSPy cannot read; a model that fails to load propagates
            question, answer = parse_raw_qa(exc.lm_response or "")
        return {
            "chunk_id": chunk["chunk_id"],
            "contract_id": chunk["contract_id"],
            "context": chunk["text"],
            "question": question.strip(),
            "answer": answer.strip(),
            "seed_ids": [d["seed_id"] for d in demos],
        }

    return thread_map(write, list(enumerate(chunks)), threads)


_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"[^.;\n]+(?:[.;]|$)")
MAX_ANSWER_CHARS = 300  # after grounding: a clause, not a page
ALIGN_MIN_WORDS = 4  # shorter answers must match exactly: "No." or "10 years" cannot be aligned
ALIGN_MIN_CONTAINMENT = 0.8  # share of the answer's words that must occur in the sentence


def align_answer(answer: str, context: str) -> tuple[str, str | None]:
    """(answer as stored, 'exact' | 'aligned' | None): the answer grounded in `context`, if it can be."""
    if answer and normalize_ws(answer).lower() in normalize_ws(context).lower():
        return answer, "exact"
    words = _WORD.findall(answer.lower())
    if len(words) < ALIGN_MIN_WORDS:
        return answer, None
    best, best_score = None, 0.0
    for m in _SENTENCE.finditer(context):
        sentence = m.group(0).strip()
        have = set(_WORD.findall(sentence.lower()))
        score = sum(w in have for w in words) / len(words)
        # Prefer the shortest sentence among equal scores: the tightest span that holds the answer.
        if score > best_score or (score == best_score and best is not None and len(sentence) < len(best)):
            best, best_score = sentence, score
    if best is not None and best_score >= ALIGN_MIN_CONTAINMENT:
        return best, "aligned"
    return answer, None


def _length_problem(question: str, answer: str, context: str) -> str | None:
    if not 10 <= len(question) <= 300:
        return f"question length {len(question)} outside 10-300"
    if not question.rstrip().endswith("?"):
        return "question does not end with '?'"
    if not answer.strip():
        return "empty answer"
    if normalize_ws(answer).lower() == normalize_ws(question).lower():
        return "answer repeats the question"
    if len(answer) > 0.8 * len(context):
        return "answer copies most of the context"
    return None


def filter_candidates(
    cands: Sequence[dict],
    embed: Callable[[list[str]], np.ndarray],
    dup_threshold: float = 0.92,
    exclude: Sequence[tuple[str, str]] = (),
    min_relevance: float = 0.0,
) -> tuple[list[dict], list[dict]]:
    """(kept, rejected); rejects carry `reason`. `exclude` holds (contract_id, question) pairs (the seeds):
    a question too similar to a kept or excluded one of the same contract is rejected. With
    `min_relevance` > 0 a question whose embedding is less similar than that to its answer's is rejected
    (the seed set's own pairs score 0.36 on average with MiniLM, unrelated pairs 0.21)."""
    kept: list[dict] = []
    rejected, survivors = [], []
    for c in cands:
        problem = _length_problem(c["question"], c["answer"], c["context"])
        answer, how = align_answer(c["answer"], c["context"]) if problem is None else (c["answer"], None)
        if problem is None and how is None:
            problem = "answer not grounded in context"
        if problem is None and len(answer) > MAX_ANSWER_CHARS:
            problem = f"answer length {len(answer)} over {MAX_ANSWER_CHARS}"
        if problem:
            rejected.append({**c, "reason": problem})
        else:
            survivors.append({**c, "answer": answer, "raw_answer": c["answer"], "grounding": how})
    if not survivors:
        return kept, rejected
    vecs = embed([c["question"] for c in survivors])
    if min_relevance > 0:
        relevance = (vecs * embed([c["answer"] for c in survivors])).sum(axis=1)
        related = [float(r) >= min_relevance for r in relevance]
        rejected += [
            {**c, "reason": f"question and answer unrelated (cosine {r:.2f} < {min_relevance:.2f})"}
            for c, r, ok in zip(survivors, relevance, related)
            if not ok
        ]
        survivors, vecs = [c for c, ok in zip(survivors, related) if ok], vecs[np.array(related, dtype=bool)]
    known: dict[str, list] = {}
    if exclude:
        for (cid, _), v in zip(exclude, embed([q for _, q in exclude])):
            known.setdefault(cid, []).append(v)
    for c, v in zip(survivors, vecs):
        sims = [float(v @ k) for k in known.get(c["contract_id"], [])]
        if sims and max(sims) >= dup_threshold:
            rejected.append({**c, "reason": f"near-duplicate question (cosine {max(sims):.2f})"})
            continue
        known.setdefault(c["contract_id"], []).append(v)
        qa_id = hashlib.sha256(f"{c['chunk_id']}\x00{c['question']}\x00{c['answer']}".encode()).hexdigest()[:16]
        kept.append({**c, "qa_id": qa_id})
    return kept, rejected

"""Self-instruct: a teacher LM writes (question, answer) pairs for contract chunks, seeded by human examples.

Dagster-free. `generate_candidates` asks the teacher; `filter_candidates` keeps a triplet only when
its answer is grounded in its context, its lengths are sane and its question is not a near-duplicate
of one already kept. Every rejected triplet is returned with its reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import dspy
import numpy as np
from dspy.utils.exceptions import AdapterParseError

from ..corpus.spans import normalize_ws


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


def generate_candidates(chunks: Sequence[dict], seeds: Sequence[dict], n_demos: int = 3) -> list[dict]:
    """One candidate triplet per chunk, using the LM bound with `dspy.context`; seeds rotate as demos."""
    writer = dspy.Predict(WriteContractQA)
    out = []
    for i, chunk in enumerate(chunks):
        demos = [seeds[(i + j) % len(seeds)] for j in range(min(n_demos, len(seeds)))] if seeds else []
        writer.demos = [dspy.Example(context=d["context"], question=d["question"], answer=d["answer"]) for d in demos]
        try:
            pred = writer(context=chunk["text"])
            question, answer = str(pred.question), str(pred.answer)
        except (AdapterParseError, ValueError) as exc:
            question, answer = parse_raw_qa(getattr(exc, "lm_response", "") or "")
        out.append({"chunk_id": chunk["chunk_id"], "contract_id": chunk["contract_id"], "context": chunk["text"],
                    "question": question.strip(), "answer": answer.strip(),
                    "seed_ids": [d["seed_id"] for d in demos]})
    return out


def _length_problem(question: str, answer: str, context: str) -> str | None:
    if not 10 <= len(question) <= 300:
        return f"question length {len(question)} outside 10-300"
    if not question.rstrip().endswith("?"):
        return "question does not end with '?'"
    if not 1 <= len(answer) <= 300:
        return f"answer length {len(answer)} outside 1-300"
    if normalize_ws(answer).lower() == normalize_ws(question).lower():
        return "answer repeats the question"
    if len(answer) > 0.8 * len(context):
        return "answer copies most of the context"
    return None


def filter_candidates(cands: Sequence[dict], embed: Callable[[list[str]], np.ndarray],
                      dup_threshold: float = 0.92, exclude_questions: Sequence[str] = ()) -> tuple[list[dict], list[dict]]:
    """(kept, rejected); rejects carry `reason`. Questions too similar to a kept or excluded one are rejected."""
    kept, rejected, survivors = [], [], []
    for c in cands:
        problem = _length_problem(c["question"], c["answer"], c["context"])
        if problem is None and normalize_ws(c["answer"]).lower() not in normalize_ws(c["context"]).lower():
            problem = "answer not grounded in context"
        (rejected.append({**c, "reason": problem}) if problem else survivors.append(c))
    if not survivors:
        return kept, rejected
    vecs = embed([c["question"] for c in survivors])
    known = list(embed(list(exclude_questions))) if exclude_questions else []
    for c, v in zip(survivors, vecs):
        sims = [float(v @ k) for k in known]
        if sims and max(sims) >= dup_threshold:
            rejected.append({**c, "reason": f"near-duplicate question (cosine {max(sims):.2f})"})
            continue
        known.append(v)
        qa_id = hashlib.sha256(f"{c['chunk_id']}\x00{c['question']}\x00{c['answer']}".encode()).hexdigest()[:16]
        kept.append({**c, "qa_id": qa_id})
    return kept, rejected

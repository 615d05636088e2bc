"""Self-instruct by instruction back-translation: the answer is a clause of the chunk, the teacher writes its question.

    with dspy.context(lm=teacher):
        cands = backtranslate_candidates(chunks, seeds, embedder.embed, n_demos=3)
    kept, rejected = filter_candidates(cands, embedder.embed)   # same filters as generate.py

Dagster-free. A small teacher asked for a (question, answer) pair mostly copies its demos' answers, which
the grounding filter must then reject; asked only for the question of a clause it already has, it writes
one in the seed set's style, and the answer is grounded by construction. Per chunk, the clause chosen is
the sentence most like a seed answer (so synthetic data covers what the human seed set asks about), and
the demos are the seeds whose answers are nearest to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import dspy
import numpy as np
from dspy.utils.exceptions import AdapterParseError

from selfinstruct.core.parallel import thread_map
from selfinstruct.synthetic.generate import parse_raw_qa

_SENTENCE = re.compile(r"[^.;\n]+(?:[.;]|$)")
_WORD = re.compile(r"[A-Za-z]{2,}")
_ASKING = {
    "what",
    "which",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
    "is",
    "are",
    "does",
    "do",
    "can",
    "may",
    "must",
    "shall",
    "will",
    "has",
    "have",
}


class WriteQuestion(dspy.Signature):
    """Write the one question about a contract that a lawyer would ask and that this clause answers."""

    clause: str = dspy.InputField(desc="a clause copied from a contract")
    question: str = dspy.OutputField(desc="one short question ending with '?'")


def _prose(span: str) -> bool:
    """Mostly words, not a table row, a page number or OCR debris."""
    chars = span.replace(" ", "")
    return len(_WORD.findall(span)) >= 4 and sum(ch.isalpha() for ch in chars) >= 0.6 * len(chars)


def answer_spans(text: str, min_chars: int = 20, max_chars: int = 300) -> list[str]:
    """The chunk's prose sentences of a sane answer length, whitespace-normalised, in order."""
    spans = (" ".join(m.group(0).split()) for m in _SENTENCE.finditer(text))
    return [s for s in spans if min_chars <= len(s) <= max_chars and _prose(s)]


def as_question(text: str) -> str:
    """The reply's first line; a question word that lost its '?' gets it back (small teachers often drop it)."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if line and not line.endswith("?") and line.split()[0].lower() in _ASKING:
        line = line.rstrip(" .:") + "?"
    return line


def pick_clauses(
    chunks: Sequence[dict], seeds: Sequence[dict], embed: Callable[[list[str]], np.ndarray], n_demos: int
) -> list[tuple[str, list[int]]]:
    """Per chunk: (the sentence most like a seed answer, indexes of the n_demos seeds nearest to it)."""
    seed_vecs = embed([s["answer"] for s in seeds]) if seeds else np.zeros((0, 1))
    out = []
    for chunk in chunks:
        spans = answer_spans(chunk["text"])
        if not spans or not len(seed_vecs):
            out.append((spans[0] if spans else "", list(range(min(n_demos, len(seeds))))))
            continue
        sims = embed(spans) @ seed_vecs.T  # cosine: embedders return unit vectors
        best = int(sims.max(axis=1).argmax())
        out.append((spans[best], [int(i) for i in np.argsort(-sims[best])[:n_demos]]))
    return out


def backtranslate_candidates(
    chunks: Sequence[dict],
    seeds: Sequence[dict],
    embed: Callable[[list[str]], np.ndarray],
    n_demos: int = 3,
    threads: int = 8,
) -> list[dict]:
    """One candidate per chunk (its chosen clause and the teacher's question), using the LM in `dspy.context`."""
    picks = pick_clauses(chunks, seeds, embed, n_demos)

    def write(item: tuple[dict, tuple[str, list[int]]]) -> dict:
        chunk, (clause, demo_ids) = item
        demos = [seeds[i] for i in demo_ids]
        question = ""
        if clause:
            writer = dspy.Predict(WriteQuestion)
            writer.demos = [dspy.Example(clause=d["answer"], question=d["question"]) for d in demos]
            try:
                question = str(writer(clause=clause).question)
            except AdapterParseError as exc:  # only a reply DSPy cannot read; a load failure fails the step
                question = parse_raw_qa(exc.lm_response or "")[0]
        return {
            "chunk_id": chunk["chunk_id"],
            "contract_id": chunk["contract_id"],
            "context": chunk["text"],
            "question": as_question(question),
            "answer": clause,
            "seed_ids": [d["seed_id"] for d in demos],
        }

    return thread_map(write, list(zip(chunks, picks)), threads)

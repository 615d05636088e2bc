"""Training examples in the one answer format: a verbatim clause of the contract, or "No such clause."

    text = verbatim_span("governed by the laws of  Delaware", contract_text)   # the contract's own slice, or None
    none = unanswerable_questions(annotations, contracts, "train", n=8)        # (contract, category) with no clause
    window = wrong_window(question, golds, passages)                            # best BM25 window that is not gold

Dagster-free. SFT targets, preference pairs and graded candidates are built from these, so every training
row teaches what `answering.quote_messages` asks for: copy the clause, or say there is none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from selfinstruct.answering import NO_CLAUSE, bm25_scores, candidate_spans
from selfinstruct.answering.right import is_right
from selfinstruct.corpus.spans import verbatim_span


def unanswerable_questions(
    annotations: Sequence[dict], contracts: dict[str, dict], split: str, n: int, seed: int = 0
) -> list[dict]:
    """Up to `n` (contract, category) questions of `split` contracts that CUAD marks as having no clause.

    Rows are shaped like `rag.evaluate.sample_questions` ones, with `gold_answers` empty; stable order.
    """
    rows = []
    for a in annotations:
        c = contracts.get(a["contract_id"])
        if c is None or c["split"] != split or not (a["is_impossible"] or not len(a["answer_starts"])):
            continue
        key = hashlib.sha256(f"none:{seed}:{a['contract_id']}:{a['category']}".encode()).hexdigest()
        rows.append(
            {
                "question_id": key[:16],
                "contract_id": a["contract_id"],
                "category": a["category"],
                "question": a["question"],
                "gold_answers": [],
                "_k": key,
            }
        )
    rows.sort(key=lambda r: r["_k"])
    return [{k: v for k, v in r.items() if k != "_k"} for r in rows[:n]]


def cuad_train_rows(annotations: Sequence[dict], contracts: dict[str, dict], n: int, seed: int = 7) -> list[dict]:
    """Up to `n` QA rows (source "cuad_train") from answerable train-split questions, labelled by CUAD itself:
    categories in turn, each by a hash of (seed, contract, category), so a larger `n` extends a smaller one."""
    from selfinstruct.corpus.questions import benchmark_questions

    if n <= 0:
        return []
    pool = benchmark_questions(annotations, contracts, 4 * n, split="train", seed=seed)
    answerable = [q for q in pool if q["gold_answers"]][:n]
    return [
        {"source": "cuad_train", "id": q["question_id"], "answer": q["gold_answers"][0], "context": "", **q}
        for q in answerable
    ]


def no_clause_count(n_answerable: int, share: float) -> int:
    """How many "No such clause." rows make them `share` of all rows (share 0.25: one in four)."""
    if not 0 <= share < 1:
        raise ValueError(f"no-clause share must be in [0, 1), got {share}")
    return round(n_answerable * share / (1 - share))


def wrong_window(question: str, golds: Sequence[str], passages: Sequence[str]) -> str | None:
    """The candidate window of `passages` that BM25 ranks highest for `question` and that is not a right answer.

    A plausible wrong quotation from the very excerpts the model reads: the rejected side of a preference
    pair that teaches which clause, not whether to quote. None when every window matches a gold clause.
    """
    spans = candidate_spans(list(passages))
    scores = bm25_scores(question, spans)  # all 0.0 for a question of stop words only: then passage order decides
    for i in sorted(range(len(spans)), key=lambda i: (-scores[i], i)):
        if not is_right(spans[i].text, golds) and spans[i].text.strip() != NO_CLAUSE:
            return spans[i].text
    return None


def sft_rows(
    qa_rows: Sequence[dict],
    unanswerable: Sequence[dict],
    contracts: dict[str, dict],
    retrieve,
    k: int,
    max_chars: int,
    no_clause_share: float,
) -> tuple[list[dict], dict]:
    """(rows, stats): one SFT row per QA row whose answer quotes its train-split contract, plus "No such clause."
    rows from `unanswerable` questions making up `no_clause_share` of the set.

    `qa_rows` carry source, id, contract_id, question, answer, context; `retrieve(question, contract_id, k)`
    gives passages. A QA answer that is no verbatim span of the contract is dropped (counted): the model must
    learn to copy, never to paraphrase.
    """
    from selfinstruct.finetune.prompts import quote_prompt

    rows, stats = [], {"dropped_not_train": 0, "dropped_not_verbatim": 0}
    for r in qa_rows:
        c = contracts.get(r["contract_id"])
        if c is None or c["split"] != "train":
            stats["dropped_not_train"] += 1  # cannot happen upstream (checked there); counted rather than trusted
            continue
        target = verbatim_span(r["answer"], c["text"])
        if target is None:
            stats["dropped_not_verbatim"] += 1
            continue
        prompt = quote_prompt(
            r["question"], retrieve(r["question"], r["contract_id"], k), max_chars, must_include=r["context"]
        )
        rows.append(
            {
                "example_id": f"{r['source']}:{r['id']}",
                "source": r["source"],
                "contract_id": r["contract_id"],
                "question": r["question"],
                "answer": target,
                "prompt": prompt,
            }
        )
    wanted = no_clause_count(len(rows), no_clause_share)
    for q in [q for q in unanswerable if contracts[q["contract_id"]]["split"] == "train"][:wanted]:
        prompt = quote_prompt(q["question"], retrieve(q["question"], q["contract_id"], k), max_chars)
        rows.append(
            {
                "example_id": f"no_clause:{q['question_id']}",
                "source": "no_clause",
                "contract_id": q["contract_id"],
                "question": q["question"],
                "answer": NO_CLAUSE,
                "prompt": prompt,
            }
        )
    stats["no_clause_rows"] = sum(r["source"] == "no_clause" for r in rows)
    stats["no_clause_wanted"] = wanted
    return rows, stats


def categories_without_gold(annotations: Sequence[dict], contracts: dict[str, dict], split: str = "train") -> list[str]:
    """Categories that no `split` contract has a located clause for: nothing can teach their clause, so their
    rows can only be "No such clause." (and the retriever and judge see no pair for them)."""
    seen, answered = set(), set()
    for a in annotations:
        c = contracts.get(a["contract_id"])
        if c is None or c["split"] != split:
            continue
        seen.add(a["category"])
        if not a["is_impossible"] and len(a["answer_starts"]):
            answered.add(a["category"])
    return sorted(seen - answered)

"""Answer held-out questions in CUAD's one format (has such a clause? quote it) with every method, and score them.

    contexts = [retrieve(q["question"], q["contract_id"], k) for q in questions]
    answers = scorer_answers(SpanScorer(model, tok), questions, contexts, n_windows=10, margin=0.0)
    rows = answer_rows("sft", questions, answers, latency_s=1.2)    # CUAD match, detection, token F1, EM

Dagster-free. Local models (base, adapters, the served one, the oracle row) choose among candidate windows of
the retrieved chunks with `SpanScorer`; the windows are first cut to the `n_windows` BM25 ranks best (the base
model alone picks at chance among hundreds, and scoring all costs 20-97 s a question). The DSPy programs'
free text is snapped to a window (`snap`), and `bm25_sentence` is BM25's best sentence with no LM at all.
A question with no retrievable text is answered "no clause" with reason "no retrievable text", never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from selfinstruct.answering import NO_CLAUSE, Answer, SpanScorer, bm25_answer, candidate_spans, snap
from selfinstruct.answering.pmi import pmi_answer
from selfinstruct.answering.right import is_right
from selfinstruct.answering.windows import top_windows, window_excerpts
from selfinstruct.core.metrics import cuad_match, exact_match, token_f1

NO_TEXT = "no retrievable text"
PROMPTS = ("windows", "chunks")  # what a local model reads: the candidate windows, or the whole chunks


def oracle_context(question: Mapping, contract_text: str, retrieved: Sequence[str], chars: int = 1000) -> list[str]:
    """Perfect retrieval: a chunk-sized window of the contract around the first gold clause (the retrieved chunks
    when there is no gold clause, since no chunk is "right" then)."""
    golds = question["gold_answers"]
    at = contract_text.find(golds[0]) if golds else -1
    if at < 0:
        return list(retrieved)
    pad = max(0, chars - len(golds[0])) // 2
    return [contract_text[max(0, at - pad) : at + len(golds[0]) + pad]]


def scorer_answers(
    scorer: SpanScorer,
    questions: Sequence[dict],
    contexts: Sequence[Sequence[str]],
    n_windows: int,
    margin: float,
    on_progress=None,
    pmi: bool = False,
    prompt: str = "windows",
) -> list[Answer]:
    """The local model's choice per question, in question order (one question at a time: deterministic batches).

    `prompt`: "windows" shows the model the candidate windows it chooses among (what training rows teach),
    "chunks" the whole retrieved chunks. `pmi`: choose by how much the question raises a window's likelihood
    (answering/pmi.py; twice the cost). `margin` float("-inf") always quotes and keeps the gap in `score`,
    so an abstain margin can be chosen afterwards (`benchmark.abstain`)."""
    if prompt not in PROMPTS:
        raise ValueError(f"prompt must be one of {PROMPTS}, got {prompt!r}")
    choose = (
        (lambda q, p, w: pmi_answer(scorer, q, p, margin, w))
        if pmi
        else (lambda q, p, w: scorer.answer(q, p, margin, w))
    )
    out = []
    for i, (q, passages) in enumerate(zip(questions, contexts)):
        if not passages:
            out.append(Answer.none(0.0, method="lm", reason=NO_TEXT))
        else:
            windows = top_windows(q["question"], passages, n_windows)
            shown = window_excerpts(windows, passages) if prompt == "windows" else passages
            out.append(choose(q["question"], shown, windows))
        if on_progress:
            on_progress(i + 1, len(questions))
    return out


def bm25_answers(questions: Sequence[dict], contexts: Sequence[Sequence[str]]) -> list[Answer]:
    return [
        bm25_answer(q["question"], p) if p else Answer.none(0.0, method="bm25", reason=NO_TEXT)
        for q, p in zip(questions, contexts)
    ]


def snapped_answers(replies: Sequence[str | None], contexts: Sequence[Sequence[str]]) -> list[Answer]:
    """Free-text replies (the DSPy programs') snapped to a candidate window of the same retrieved chunks."""
    return [
        snap(r, candidate_spans(p)) if p else Answer.none(0.0, method="snap", reason=NO_TEXT)
        for r, p in zip(replies, contexts)
    ]


def score(question: Mapping, answer: Answer) -> dict:
    """CUAD match and token F1 on answerable questions (None otherwise), detection labels, EM of the short answer.

    `quote_cuad_match`: the CUAD match the best window would have scored had the method quoted it (an abstain
    margin turns some quotations into "no clause": this is what that cost on answerable questions)."""
    golds, has = question["gold_answers"], bool(question["has_clause"])
    short = question.get("short_answer")
    quote = answer.text if answer.has_clause else str(answer.method_detail.get("best_span", ""))
    return {
        "has_clause": has,
        "predicted_clause": answer.has_clause,
        "right": is_right(answer.text if answer.has_clause else NO_CLAUSE, golds),
        "cuad_match": cuad_match(answer.prediction, golds) if has else None,
        "quote_cuad_match": cuad_match(quote, golds) if has else None,
        "token_f1": token_f1(answer.prediction, golds) if has else None,
        "exact_match": exact_match(answer.prediction, [short]) if short else None,
    }


def answer_rows(method: str, questions: Sequence[dict], answers: Sequence[Answer], latency_s: float) -> list[dict]:
    """One benchmark_answers row per question (without judge score: `judge_rows` adds it)."""
    return [
        {
            "method": method,
            "question_id": q["question_id"],
            "contract_id": q["contract_id"],
            "category": q["category"],
            "question": q["question"],
            "gold_answer": q["gold_answers"][0] if q["gold_answers"] else "",
            "answer": a.prediction,
            "answer_score": a.score,
            "reason": str(a.method_detail.get("reason", "")),
            "latency_s": latency_s,
            **score(q, a),
        }
        for q, a in zip(questions, answers)
    ]

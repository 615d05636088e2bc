"""PMI span choice: how much the question raises a span's likelihood, not how likely the span is anyway.

    answer = pmi_answer(SpanScorer(model, tok), question, top_chunks, spans=windows)

Dagster-free. score(span) = mean log P(span | question, excerpts) - mean log P(span | excerpts, no question):
a fluent boilerplate sentence that the model likes whatever is asked scores ~0, a span the question points at
scores high. It costs a second scoring pass per question. "No such clause." is scored the same way, and wins
unless the best span beats it by `margin`.
"""

from __future__ import annotations

from collections.abc import Sequence

from selfinstruct.answering.answer import Answer, Span
from selfinstruct.answering.candidates import Passage, candidate_spans
from selfinstruct.answering.prompt import NO_CLAUSE, quote_messages
from selfinstruct.answering.scoring import SpanScorer, normalised, pick_answer

NO_QUESTION = "(no question)"


def pmi_values(scorer: SpanScorer, question: str, texts: Sequence[str], replies: Sequence[str]) -> list[float]:
    asked = scorer.logprobs(quote_messages(question, texts), replies)
    prior = scorer.logprobs(quote_messages(NO_QUESTION, texts), replies)
    return [normalised(a, n, scorer.alpha) - normalised(b, m, scorer.alpha) for (a, n), (b, m) in zip(asked, prior)]


def pmi_answer(
    scorer: SpanScorer,
    question: str,
    passages: Sequence[Passage],
    margin: float = 0.0,
    spans: Sequence[Span] | None = None,
) -> Answer:
    spans = list(spans) if spans is not None else candidate_spans(passages)
    texts = [p if isinstance(p, str) else p["text"] for p in passages]
    values = pmi_values(scorer, question, texts, [s.text for s in spans] + [NO_CLAUSE])
    return pick_answer(spans, values, margin, method="lm_pmi", alpha=scorer.alpha)

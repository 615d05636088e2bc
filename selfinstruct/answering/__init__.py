"""Answer CUAD's task as CUAD defines it: say whether the contract has the clause and, if so, quote it verbatim.

    from selfinstruct.answering import SpanScorer, bm25_answer, candidate_spans, snap
    spans = candidate_spans(top_chunks)                     # chunk rows {"text", "start"} or plain strings
    bm25_answer(question, top_chunks)                       # no-LLM reference row
    SpanScorer(model, tok).answer(question, top_chunks)     # local HF model (+ peft adapter): log-prob choice
    snap(remote_reply_text, spans)                          # remote backends: free text -> nearest span

Dagster-free. Every method returns an `Answer` whose text is a slice of the contract, so one metric
(CUAD's word-Jaccard match) scores them all; `Answer.none()` is the first-class "no such clause".
"""

from selfinstruct.answering.answer import Answer, Span
from selfinstruct.answering.baseline import bm25_answer, bm25_scores
from selfinstruct.answering.candidates import candidate_spans, split_sentences
from selfinstruct.answering.prompt import NO_CLAUSE, QUOTE_INSTRUCTION, quote_messages
from selfinstruct.answering.scoring import SpanScorer, normalised
from selfinstruct.answering.snapping import is_no_clause, snap

__all__ = [
    "Answer",
    "Span",
    "NO_CLAUSE",
    "QUOTE_INSTRUCTION",
    "SpanScorer",
    "bm25_answer",
    "bm25_scores",
    "candidate_spans",
    "is_no_clause",
    "normalised",
    "quote_messages",
    "snap",
    "split_sentences",
]

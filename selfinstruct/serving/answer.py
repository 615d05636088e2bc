"""The answer `selfinstruct serve` gives: the benchmark's for a local model, and where its quote lies in the contract.

    answer, passages = answer_question(scorer, retrieve, question, contract_id, ServeSettings(), margin)
    start, end = locate(contract_text, passages, answer.text)   # (None, None) when the quote is not in the contract

Dagster-free. `make_retriever`'s k chunks, the candidate windows BM25 ranks best (answering.windows.top_windows,
shown as the prompt's excerpts, as benchmark.methods.scorer_answers does) and `SpanScorer.answer` with `margin`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from selfinstruct.answering import Answer, SpanScorer
from selfinstruct.answering.windows import top_windows, window_excerpts
from selfinstruct.serving.serve_settings import ServeSettings

NO_TEXT = "no retrievable text"


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

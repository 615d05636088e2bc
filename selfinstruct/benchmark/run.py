"""Every benchmark method on the same questions and retrieved chunks, as benchmark_answers rows.

    rows = benchmark_rows(questions, contexts, texts, {"base": lambda: SpanScorer(model, tok)},
                          {"standard_rag": replies}, n_windows=6, margin=None, calibration=(train_qs, train_ctx))

Dagster-free: the asset builds the scorers (one per local model, loaded when its turn comes) and the RAG
programs' replies, this runs them in a fixed order. Reference rows: `bm25_sentence` (no LM, BM25's best
sentence of the same chunks) and `oracle_retrieval` (the base model's scorer given the gold clause's chunk, under the
base model's margin). Local models say "No such clause." by a margin chosen on train-split questions only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from selfinstruct.answering import Answer, SpanScorer
from selfinstruct.benchmark.abstain import NEVER, choose_margin, with_margin
from selfinstruct.benchmark.answer_cache import AnswerCache
from selfinstruct.benchmark.methods import answer_rows, bm25_answers, oracle_context, scorer_answers, snapped_answers
from selfinstruct.core.memory import release_memory
from selfinstruct.core.parallel import thread_map
from selfinstruct.judging.rerank import rerank_answers


def rag_replies(program, questions: Sequence[dict], known: Mapping[str, str], threads: int = 8) -> list[str]:
    """The DSPy program's free-text answer per question: rag_eval's when it answered the question, else asked now,
    on `threads` threads (as rag_eval: the local backend batches concurrent calls into one generate)."""
    todo = [q for q in questions if q["question_id"] not in known]
    asked = thread_map(lambda q: program(question=q["question"], contract_id=q["contract_id"]).answer, todo, threads)
    said = {**known, **{q["question_id"]: a for q, a in zip(todo, asked)}}
    return [said[q["question_id"]] for q in questions]


def progress(log: Callable[[str], None], method: str, every: int = 10) -> Callable[[int, int], None]:
    t0 = time.perf_counter()

    def report(done: int, total: int) -> None:
        if done % every == 0 or done == total:
            spent = time.perf_counter() - t0
            eta = spent / done * (total - done)
            log(f"benchmark {method}: {done}/{total} questions, {spent:.0f} s, ETA {eta:.0f} s")

    return report


class LazyScorer:
    """A scorer loaded on first use: a model whose answers all come from the cache is never loaded."""

    def __init__(self, make: Callable[[], SpanScorer]):
        self._make: Callable[[], SpanScorer] = make
        self._scorer: SpanScorer | None = None

    @property
    def loaded(self) -> bool:
        return self._scorer is not None

    def __getattr__(self, name: str):
        if self.__dict__.get("_scorer") is None:
            self._scorer = self._make()
        return getattr(self._scorer, name)


def scored_answers(
    scorer: SpanScorer | LazyScorer,
    questions: Sequence[dict],
    contexts: Sequence[Sequence[str]],
    n_windows: int,
    margin: float | None,
    calibration: tuple[Sequence[dict], Sequence[Sequence[str]]] | None,
    on_progress=None,
    pmi: bool = False,
    prompt: str = "windows",
    cache: AnswerCache | None = None,
    key: str = "",
) -> tuple[list[Answer], dict]:
    """(answers, abstain rule) of one local model. `margin` None: the margin is chosen on the `calibration`
    (train-split) questions by `abstain.choose_margin`; a number: that margin, fixed. With a `cache`, answers it
    holds under model `key` are read back and only the others are scored (and added to it)."""

    def quotes(qs: Sequence[dict], cs: Sequence[Sequence[str]], report=None) -> list[Answer]:
        model = cast(SpanScorer, scorer)  # a LazyScorer is one, once loaded
        score = lambda q, c: scorer_answers(model, q, c, n_windows, NEVER, report, pmi, prompt)  # noqa: E731
        return score(qs, cs) if cache is None else cache.answers(key, list(qs), list(cs), score)

    if margin is None:
        if calibration is None:
            raise ValueError("margin None (choose it on train-split questions) needs calibration questions")
        cal_q, cal_c = calibration
        rule = choose_margin(cal_q, quotes(cal_q, cal_c))
    else:
        rule = {"margin": margin, "chosen_on": "fixed"}
    answers = quotes(questions, contexts, on_progress)
    return [with_margin(a, rule["margin"]) for a in answers], rule


def benchmark_rows(
    questions: Sequence[dict],
    contexts: Sequence[Sequence[str]],
    texts: Mapping[str, str],
    scorers: Mapping[str, Callable[[], SpanScorer]],
    replies: Mapping[str, Sequence[str]],
    n_windows: int,
    margin: float | None,
    log: Callable[[str], None] = print,
    oracle: bool = True,
    pmi: bool = False,
    prompt: str = "windows",
    calibration: tuple[Sequence[dict], Sequence[Sequence[str]]] | None = None,
    aliases: Mapping[str, str] | None = None,
    rules: dict | None = None,
    cache: AnswerCache | None = None,
    keys: Mapping[str, str] | None = None,
) -> list[dict]:
    """Rows of every method, in order: snapped RAG replies, bm25_sentence, each local model, oracle_retrieval.

    `aliases` {method: scored method}: a model with the same weights as one already scored (the served adapter
    is one of the candidates) gets that method's answers under its own name instead of being scored again.
    `rules`, when given, receives each local model's abstain rule (see `scored_answers`). `cache` with `keys`
    {method: model key}: answers of earlier runs are read back (`answer_cache`); a model whose answers are all
    there is never loaded.
    """
    keys = keys or {}
    rows: list[dict] = []
    rules = {} if rules is None else rules
    n = max(1, len(questions))
    for method, said in replies.items():
        t0 = time.perf_counter()
        rows += answer_rows(method, questions, snapped_answers(said, contexts), (time.perf_counter() - t0) / n)
    t0 = time.perf_counter()
    rows += answer_rows("bm25_sentence", questions, bm25_answers(questions, contexts), (time.perf_counter() - t0) / n)
    for method, make in scorers.items():
        t0, scorer = time.perf_counter(), LazyScorer(make)
        answers, rules[method] = scored_answers(
            scorer,
            questions,
            contexts,
            n_windows,
            margin,
            calibration,
            progress(log, method),
            pmi,
            prompt,
            cache if method in keys else None,
            keys.get(method, ""),
        )
        rows += answer_rows(method, questions, answers, (time.perf_counter() - t0) / n)
        del scorer
        release_memory()  # one local model at a time: the next one loads into the pages this one gave back
    for method, same in (aliases or {}).items():
        rows += [
            {**r, "method": method, "reason": r["reason"] or f"same weights as {same}", "latency_s": 0.0}
            for r in rows
            if r["method"] == same
        ]
        rules[method] = rules.get(same, {})
    if oracle and "base" in scorers:
        gold_ctx = [oracle_context(q, texts.get(q["contract_id"], ""), c) for q, c in zip(questions, contexts)]
        t0, scorer = time.perf_counter(), LazyScorer(scorers["base"])
        fixed = rules.get("base", {}).get("margin", 0.0 if margin is None else margin)
        answers, rules["oracle_retrieval"] = scored_answers(
            scorer,
            questions,
            gold_ctx,
            n_windows,
            fixed,
            None,
            progress(log, "oracle_retrieval"),
            pmi,
            prompt,
            cache if "base" in keys else None,
            keys.get("base", ""),
        )
        rows += answer_rows("oracle_retrieval", questions, answers, (time.perf_counter() - t0) / n)
    return rows


def rerank_rows(
    judge,
    questions: Sequence[dict],
    contexts: Sequence[Sequence[str]],
    n_windows: int,
    margin: float | None,
    calibration: tuple[Sequence[dict], Sequence[Sequence[str]]] | None,
    log: Callable[[str], None] = print,
) -> tuple[list[dict], dict]:
    """(judge_rerank rows, abstain rule): the reference-free judge picks among the same windows. With `margin`
    None its cut on the judge's score is chosen on the calibration questions like the local models' margins;
    with a fixed margin (a log-prob scale that means nothing here) the judge's own calibrated threshold is used."""
    t0 = time.perf_counter()
    if margin is None and calibration is not None:
        cal_q, cal_c = calibration
        rule = choose_margin(cal_q, rerank_answers(judge, cal_q, cal_c, n_windows, threshold=NEVER))
    else:
        rule = {"margin": float(judge.threshold) - 1e-9, "chosen_on": "the judge's calibrated threshold"}
    answers = rerank_answers(judge, questions, contexts, n_windows, progress(log, "judge_rerank"), threshold=NEVER)
    answers = [with_margin(a, rule["margin"]) for a in answers]
    return answer_rows("judge_rerank", questions, answers, (time.perf_counter() - t0) / max(1, len(questions))), rule

"""Training rows that cost what they teach: the question and the candidate windows the scorer will compare.

    rows, stats = window_sft_rows(qa_rows, unanswerable, contracts, retrieve, k=3, n_windows=6, no_clause_share=0.25)
    row["prompt"]    # quote_messages over the shown windows (gold window + the hardest wrong ones, contract order)
    row["answer"]    # the gold window, or "No such clause."
    row["rejected"]  # the hardest wrong window: the rejected side of a preference pair

Dagster-free. A row of whole chunks spent ~1,500 tokens to teach a ~60-token quote; a row of six windows
spends a fraction, and it is the very choice `SpanScorer` makes at answer time (`answering.windows`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

from selfinstruct.answering import NO_CLAUSE, quote_messages
from selfinstruct.answering.windows import hardest_wrong, training_windows, window_excerpts
from selfinstruct.corpus.spans import verbatim_span
from selfinstruct.finetune.examples import no_clause_count

Retrieve = Callable[[str, str, int], list[str]]


def window_row(
    question: str, golds: Sequence[str], passages: Sequence[str], n_windows: int, max_chars: int | None = None
) -> dict:
    """prompt (messages), answer (the target window or NO_CLAUSE), rejected (hardest wrong window or None),
    windows (the Spans shown) and their count n_windows, retrieved (a retrieved window held the gold; else the
    gold clause was added).

    `max_chars` bounds the excerpts (the trainers truncate at max_length tokens, and a truncated target teaches
    nothing): the fewest hardest distractors are dropped first; the target is always shown."""
    for n in range(n_windows, 0, -1):
        shown, target, retrieved = training_windows(question, golds, passages, n)
        excerpts = window_excerpts(shown, passages)
        if max_chars is None or sum(len(e) for e in excerpts) <= max_chars or n == 1:
            break
    wrong = hardest_wrong(question, golds, shown)
    return {
        "prompt": quote_messages(question, excerpts),
        "answer": target.text if target is not None else NO_CLAUSE,
        "rejected": wrong.text if wrong is not None else None,
        "n_windows": len(shown),
        "retrieved": retrieved,
        "windows": shown,
    }


def window_sft_rows(
    qa_rows: Sequence[dict],
    unanswerable: Sequence[dict],
    contracts: dict[str, dict],
    retrieve: Retrieve,
    k: int,
    n_windows: int,
    no_clause_share: float,
    max_chars: int | None = None,
) -> tuple[list[dict], dict]:
    """(rows, stats) as `examples.sft_rows`, with window prompts: one row per QA row whose answer quotes its
    train-split contract, plus "No such clause." rows from `unanswerable` making up `no_clause_share`.

    `qa_rows` carry source, id, contract_id, question, answer. A QA answer that is no verbatim span of its
    contract is dropped and counted: the model must learn to copy, never to paraphrase.
    """
    rows: list[dict] = []
    stats = {"dropped_not_train": 0, "dropped_not_verbatim": 0, "gold_window_retrieved": 0}
    for r in qa_rows:
        c = contracts.get(r["contract_id"])
        if c is None or c["split"] != "train":
            stats["dropped_not_train"] += 1  # cannot happen upstream (checked there); counted rather than trusted
            continue
        gold = verbatim_span(r["answer"], c["text"])
        if gold is None:
            stats["dropped_not_verbatim"] += 1
            continue
        row = window_row(r["question"], [gold], retrieve(r["question"], r["contract_id"], k), n_windows, max_chars)
        stats["gold_window_retrieved"] += row["retrieved"]
        rows.append(_row(f"{r['source']}:{r['id']}", r["source"], r, row))
    wanted = no_clause_count(len(rows), no_clause_share)
    for q in [q for q in unanswerable if contracts[q["contract_id"]]["split"] == "train"][:wanted]:
        row = window_row(q["question"], [], retrieve(q["question"], q["contract_id"], k), n_windows, max_chars)
        rows.append(_row(f"no_clause:{q['question_id']}", "no_clause", q, row))
    stats["no_clause_rows"] = sum(r["source"] == "no_clause" for r in rows)
    stats["no_clause_wanted"] = wanted
    return rows, stats


def _row(example_id: str, source: str, q: dict, row: dict) -> dict:
    return {
        "example_id": example_id,
        "source": source,
        "contract_id": q["contract_id"],
        "question": q["question"],
        "answer": row["answer"],
        "rejected": row["rejected"],
        "prompt": row["prompt"],
    }


def window_pairs(rows: Sequence[dict]) -> list[dict]:
    """Preference candidates from window rows: chosen = the row's target, rejected = its hardest wrong window.

    Shaped like `preferences.build_preference_pairs` output (grades 1 and 0), so they join AI and human pairs.
    """
    out = []
    for r in rows:
        if not r.get("rejected"):
            continue
        prompt = r["prompt_json"] if "prompt_json" in r else json.dumps(r["prompt"])
        pid = hashlib.sha256(json.dumps([r["example_id"], r["answer"], r["rejected"]]).encode()).hexdigest()[:16]
        out.append(
            {
                "pair_id": pid,
                "question_id": r["example_id"],
                "contract_id": r["contract_id"],
                "question": r["question"],
                "prompt_json": prompt,
                "chosen": r["answer"],
                "rejected": r["rejected"],
                "chosen_grade": 1.0,
                "rejected_grade": 0.0,
                "margin": 1.0,
                "chosen_source": "gold",
                "rejected_source": "bm25_window",
            }
        )
    return out


def prompt_tokens(rows: Sequence[dict], count: Callable[[str], int]) -> dict:
    """Tokens per row (prompt text + answer) under `count`, for the cost table: mean, max and total."""
    sizes = [count(" ".join(m["content"] for m in r["prompt"]) + " " + r["answer"]) for r in rows]
    return {
        "rows": len(sizes),
        "mean_tokens": (sum(sizes) / len(sizes)) if sizes else 0.0,
        "max_tokens": max(sizes, default=0),
        "total_tokens": sum(sizes),
    }

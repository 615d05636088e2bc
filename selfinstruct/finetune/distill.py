"""Distillation rows (rejection-sampling fine-tuning): the system's own verified answers become training rows.

    rows, stats = judge_picked_rows(questions, contexts, judge, n_windows=6, max_chars=2000)

Dagster-free. For each train-split question the reference-free judge picks among the candidate windows
(`judging.rerank`); a pick it accepts becomes the row's target, one it rejects makes the row "No such clause.".
No gold label is read, so these rows scale to every question the project can ask, not just the labelled ones:
the self-instruct loop proper. Rows have the shape of `window_rows.window_sft_rows` rows (source "judge").
"""

from __future__ import annotations

from collections.abc import Sequence

from selfinstruct.answering.windows import top_windows
from selfinstruct.finetune.window_rows import window_row
from selfinstruct.judging.rerank import rerank_answer


def judge_picked_rows(
    questions: Sequence[dict], contexts: Sequence[Sequence[str]], judge, n_windows: int, max_chars: int | None = None
) -> tuple[list[dict], dict]:
    """(rows, stats): one row per question with retrieved text; `questions` need question_id, contract_id and
    question (their gold answers, if any, are not read)."""
    rows, stats = [], {"accepted": 0, "abstained": 0, "no_text": 0}
    for q, passages in zip(questions, contexts):
        if not passages:
            stats["no_text"] += 1
            continue
        pick = rerank_answer(judge, q["question"], top_windows(q["question"], passages, n_windows))
        stats["accepted" if pick.has_clause else "abstained"] += 1
        row = window_row(q["question"], [pick.text] if pick.has_clause else [], passages, n_windows, max_chars)
        rows.append(
            {
                "example_id": f"judge:{q['question_id']}",
                "source": "judge",
                "contract_id": q["contract_id"],
                "question": q["question"],
                "answer": row["answer"],
                "rejected": row["rejected"],
                "prompt": row["prompt"],
            }
        )
    return rows, stats

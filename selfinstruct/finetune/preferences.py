"""Preference pairs from graded candidate answers, AI feedback and human feedback.

    pairs, stats = build_preference_pairs(candidates, human_rows, margin=0.3)

Dagster-free. Each candidate carries a `grade` in 0–1 (the judge blended with correctness, see `grade`).
Per question the chosen answer is the gold answer (`chosen="gold"`, grade 1) or the
best-graded candidate (`chosen="best"`); a rejected answer is any other answer graded at least
`margin` below it: a model's own wrong answer (source "ai") or a wrong window of the same excerpts
(`window_candidates`, source "bm25_window"). In the one answer format the gold answer is the verbatim
clause, or "No such clause." when the contract has none. Human feedback joins by (contract_id, question):
a human score replaces the AI grade of the same answer (human rows outrank AI rows on conflict), and a
human-rated answer that no candidate gave becomes a candidate itself. `gold_questions` are questions no candidate
asked (a reviewer's correction of live traffic, `human_gold.pair_inputs`): their gold answer is the human one. Human
rows that match no question are counted, not used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from selfinstruct.corpus.spans import normalize_ws


def text_key(text: str) -> str:
    """What two answers (or questions) that say the same thing share: whitespace, case and end punctuation aside."""
    return normalize_ws(text).lower().strip(" .;,")


def grade(judge_score: float | None, correctness: float, judge_weight: float = 0.5) -> float:
    """0–1 quality of an answer: the judge's score blended with a 0–1 correctness (ai_feedback passes
    `answering.right.is_right`); correctness alone when the judge is missing."""
    if judge_score is None:
        return float(correctness)
    return judge_weight * float(judge_score) + (1 - judge_weight) * float(correctness)


def grade_rows(rows: Sequence[dict], verdicts: Sequence, judge_weight: float = 0.5) -> list[dict]:
    """ai_feedback's rows: each candidate's judge verdict (None: no judge), correctness, CUAD match, token F1, grade."""
    from selfinstruct.answering.right import is_right
    from selfinstruct.core.metrics import cuad_match, token_f1

    out = []
    for r, v in zip(rows, verdicts):
        ok = is_right(r["answer"], r["gold_answers"])
        score = None if v is None else v.score
        out.append(
            {
                "candidate_id": r["candidate_id"],
                "judge_score": score,
                "judge_critique": "" if v is None else v.critique,
                "judge_missing_reason": "no judge" if v is None else v.missing_reason,
                "token_f1": token_f1(r["answer"], r["gold_answers"]),
                "cuad_match": cuad_match(r["answer"], r["gold_answers"]),
                "correct": ok,
                "grade": grade(score, ok, judge_weight),
            }
        )
    return out


def build_preference_pairs(
    candidates: Sequence[dict],
    human: Sequence[dict] = (),
    margin: float = 0.3,
    chosen: str = "gold",
    max_pairs_per_question: int = 2,
    gold_questions: Sequence[dict] = (),
) -> tuple[list[dict], dict]:
    """(pairs, stats). Candidates need question_id, contract_id, question, prompt_json, gold_answer, answer, grade;
    `gold_questions` the same keys but answer and grade, plus gold_source (the chosen side's source)."""
    if chosen not in ("gold", "best"):
        raise ValueError(f"chosen must be 'gold' or 'best', got {chosen!r}")
    if not 0 < margin <= 1:
        raise ValueError(f"margin must be in (0, 1], got {margin}")
    questions: dict[str, dict] = {}
    graded: dict[str, dict[str, dict]] = {}
    for c in candidates:
        questions.setdefault(c["question_id"], c)
        entry = {"answer": c["answer"], "grade": float(c["grade"]), "source": c.get("source") or "ai"}
        slot = graded.setdefault(c["question_id"], {})
        key = text_key(c["answer"])
        if key and (key not in slot or entry["grade"] > slot[key]["grade"]):
            slot[key] = entry
    by_text = {(q["contract_id"], text_key(q["question"])): qid for qid, q in questions.items()}
    added = 0
    for q in gold_questions:  # a question some candidate asked keeps its candidates' prompt and gold
        if (q["contract_id"], text_key(q["question"])) not in by_text:
            questions[q["question_id"]], graded[q["question_id"]] = q, {}
            by_text[(q["contract_id"], text_key(q["question"]))] = q["question_id"]
            added += 1
    stats: dict[str, Any] = {
        "questions": len(questions),
        "human_rows": len(human),
        "human_used": 0,
        "human_unmatched": 0,
        "human_overrides": 0,
        "gold_questions": added,
        "pairs": 0,
        "questions_without_pair": 0,
    }
    for h in human:
        qid = by_text.get((h["contract_id"], text_key(h["question"])))
        if qid is None:
            stats["human_unmatched"] += 1
            continue
        stats["human_used"] += 1
        slot, key = graded[qid], text_key(h["answer"])
        if key in slot and slot[key]["source"] != "human" and abs(slot[key]["grade"] - h["score"]) >= margin:
            stats["human_overrides"] += 1
        slot[key] = {"answer": h["answer"], "grade": float(h["score"]), "source": "human"}
    pairs = []
    for qid, q in questions.items():
        slot = graded.get(qid, {})
        if chosen == "gold":
            top: dict[str, Any] | None = {
                "answer": q["gold_answer"],
                "grade": 1.0,
                "source": q.get("gold_source", "gold"),
            }
        else:
            top = max(slot.values(), key=lambda e: (e["grade"], e["source"] == "human"), default=None)
        if top is None:
            stats["questions_without_pair"] += 1
            continue
        losers = [e for k, e in slot.items() if k != text_key(top["answer"]) and e["grade"] <= top["grade"] - margin]
        losers.sort(key=lambda e: (e["source"] != "human", e["grade"]))  # human-rated first, then the worst
        if not losers:
            stats["questions_without_pair"] += 1
        for lose in losers[:max_pairs_per_question]:
            pid = hashlib.sha256(json.dumps([qid, top["answer"], lose["answer"]]).encode()).hexdigest()[:16]
            pairs.append(
                {
                    "pair_id": pid,
                    "question_id": qid,
                    "contract_id": q["contract_id"],
                    "question": q["question"],
                    "prompt_json": q["prompt_json"],
                    "chosen": top["answer"],
                    "rejected": lose["answer"],
                    "chosen_grade": top["grade"],
                    "rejected_grade": lose["grade"],
                    "margin": top["grade"] - lose["grade"],
                    "chosen_source": top["source"],
                    "rejected_source": lose["source"],
                }
            )
    stats["pairs"] = len(pairs)
    stats["mean_margin"] = sum(p["margin"] for p in pairs) / len(pairs) if pairs else None
    return pairs, stats


def window_candidates(responses: Sequence[dict]) -> list[dict]:
    """Per question, the highest-BM25 window of its excerpts that is not a right answer, graded 0.

    `responses` are candidate rows with question_id, question, gold_answers and passages_json; the result
    has their shape (answer, grade, source="bm25_window"), ready for `build_preference_pairs`.
    """
    from selfinstruct.finetune.examples import wrong_window

    out, seen = [], set()
    for r in responses:
        if r["question_id"] in seen:
            continue
        seen.add(r["question_id"])
        window = wrong_window(r["question"], list(r["gold_answers"] or []), json.loads(r["passages_json"]))
        if window:
            out.append(
                {
                    **r,
                    "candidate_id": f"{r['question_id']}:bm25_window",
                    "origin": "bm25_window",
                    "answer": window,
                    "grade": 0.0,
                    "source": "bm25_window",
                }
            )
    return out

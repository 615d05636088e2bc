"""Human feedback as gold rows: a reviewer's correction (or an answer rated right) is an answer to learn.

    questions, stats = human_questions(human_feedback_rows, contracts)   # contracts: contract_id -> {text, split}
    rows, stats = with_human_rows(sft_rows, questions, retrieve, k=3, n_windows=6)   # sft_dataset: human first
    rows, gold_qs = pair_inputs(questions, candidates, lambda: retrieve, 3, 6)   # preference_pairs' human side
    examples, stats = judge_examples(questions, use_gold=True)          # answer_judge / rerank_judge rows

Dagster-free. Rows are the `human_feedback` table's (source, split, score 0-1, comment). Only train-split rows of
contracts whose text is known are used; the rest are counted with the reason. Per (contract, question) the human
rows grade answers (the mean score of an answer's rows); the gold is the best-graded answer at `gold_min` or above
(a correction, as `serving.ratings` writes it, is the reviewer's quote or "No such clause." scored 1). A gold
must be the contract's own characters (`corpus.spans.verbatim_span`) or "No such clause.": a full-score answer that
is neither is rejected and counted. A correction also says the served answer was wrong: when the comment holds it
whole and no row rates it, it joins as a human row scored 0 (`implied`). Rows whose source is not "human" never
make a gold; `preference_pairs` passes them on as before.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence

from selfinstruct.answering import NO_CLAUSE, is_no_clause
from selfinstruct.corpus.spans import verbatim_span
from selfinstruct.finetune.preferences import text_key
from selfinstruct.finetune.window_rows import window_row

Retrieve = Callable[[str, str, int], list[str]]
# serving.ratings writes a correction's comment as "<about>; correction[ at S..E] of the served answer: <answer[:300]>",
# the whole comment cut at 2,000 characters: an answer of 300 characters or more may have been cut.
_SERVED = re.compile(r"; correction(?: at \d+\.\.\d+)? of the served answer: (.*)\Z", re.S)
SERVED_CUT, COMMENT_CUT = 300, 2000


def question_key(row: dict) -> tuple[str, str]:
    return row["contract_id"], text_key(row["question"])


def _served(row: dict) -> tuple[str | None, bool]:
    """(served answer, cut) named by a correction row's comment; (None, False) when it is no correction."""
    m = _SERVED.search(row.get("comment") or "")
    if m is None:
        return None, False
    cut = len(m.group(1)) >= SERVED_CUT or len(row["comment"]) >= COMMENT_CUT
    return (None if cut else m.group(1)), cut


def _counts() -> dict[str, int]:
    return dict.fromkeys(
        (
            "rows",
            "used",
            "not_human",
            "ignored_eval_split",
            "ignored_unknown_contract",
            "rejected_not_verbatim",
            "corrections",
            "served_implied",
            "served_cut",
        ),
        0,
    )


def human_questions(
    rows: Sequence[dict], contracts: dict[str, dict], gold_min: float = 0.75
) -> tuple[list[dict], dict]:
    """(questions, stats). A question: question_id ("human:<16 hex>"), contract_id, question, rows (the human rows
    used, implied ones included: contract_id, question, answer, score), answers ({answer, grade, votes}, best
    first, then most voted) and gold (contract text or NO_CLAUSE; None when no answer reaches `gold_min`)."""
    stats = _counts()
    groups: dict[tuple[str, str], dict] = {}
    implied: list[dict] = []
    for r in rows:
        stats["rows"] += 1
        contract = contracts.get(r["contract_id"])
        if r.get("source", "human") != "human":
            stats["not_human"] += 1
            continue
        if contract is None:
            stats["ignored_unknown_contract"] += 1  # e.g. an added contract: its text is not in cuad_contracts
            continue
        if contract["split"] != "train":
            stats["ignored_eval_split"] += 1
            continue
        answer = r["answer"]
        if float(r["score"]) >= gold_min:
            answer = NO_CLAUSE if is_no_clause(answer) else verbatim_span(answer, contract["text"])
            if answer is None:
                stats["rejected_not_verbatim"] += 1
                continue
        stats["used"] += 1
        q = groups.setdefault(question_key(r), {**_question(r), "rows": []})
        q["rows"].append(
            {k: r[k] for k in ("contract_id", "question")} | {"answer": answer, "score": float(r["score"])}
        )
        served, cut = _served(r)
        stats["corrections"] += served is not None or cut
        stats["served_cut"] += cut
        if served is not None and text_key(served) != text_key(answer):
            implied.append({**q["rows"][-1], "answer": served, "score": 0.0})
    for row in implied:  # a row that rates the served answer outranks what the correction implies
        q = groups[question_key(row)]
        if text_key(row["answer"]) not in {text_key(x["answer"]) for x in q["rows"]}:
            q["rows"].append(row)
            stats["served_implied"] += 1
    questions = [_graded(q, gold_min) for q in groups.values()]
    stats["questions"] = len(questions)
    stats["golds"] = sum(q["gold"] is not None for q in questions)
    stats["no_clause_golds"] = sum(q["gold"] == NO_CLAUSE for q in questions)
    stats["questions_without_gold"] = stats["questions"] - stats["golds"]
    return questions, stats


def _question(r: dict) -> dict:
    qid = hashlib.sha256(json.dumps(list(question_key(r))).encode()).hexdigest()[:16]
    return {"question_id": f"human:{qid}", "contract_id": r["contract_id"], "question": r["question"]}


def _graded(q: dict, gold_min: float) -> dict:
    answers: dict[str, dict] = {}
    for r in q["rows"]:
        a = answers.setdefault(text_key(r["answer"]), {"answer": r["answer"], "scores": []})
        a["scores"].append(r["score"])
        if r["score"] >= gold_min:  # checked to be the contract's own text: the spelling a gold takes
            a["answer"] = r["answer"]
    graded = [
        {"answer": a["answer"], "grade": sum(a["scores"]) / len(a["scores"]), "votes": len(a["scores"])}
        for a in answers.values()
    ]
    graded.sort(key=lambda a: (-a["grade"], -a["votes"]))
    gold = graded[0]["answer"] if graded and graded[0]["grade"] >= gold_min else None
    return {**q, "answers": graded, "gold": gold}


def golden(questions: Sequence[dict]) -> list[dict]:
    return [q for q in questions if q["gold"] is not None]


def human_sft_rows(
    questions: Sequence[dict], retrieve: Retrieve, k: int, n_windows: int, max_chars: int | None = None
) -> tuple[list[dict], dict]:
    """sft_dataset rows (window prompts, as `window_rows.window_sft_rows`) whose target is each question's gold;
    source "human", example_id its question_id."""
    rows = []
    retrieved = 0
    for q in golden(questions):
        golds = [] if q["gold"] == NO_CLAUSE else [q["gold"]]
        made = window_row(q["question"], golds, retrieve(q["question"], q["contract_id"], k), n_windows, max_chars)
        retrieved += made["retrieved"]
        rows.append(
            {
                "example_id": q["question_id"],
                "source": "human",
                "contract_id": q["contract_id"],
                "question": q["question"],
                "answer": made["answer"],
                "rejected": made["rejected"],
                "prompt": made["prompt"],
            }
        )
    return rows, {"human_gold_window_retrieved": retrieved}


def outrank(preferred: Sequence[dict], rows: Sequence[dict], key: Callable[[dict], object]) -> tuple[list, int]:
    """(preferred + the rows whose `key` no preferred row has, how many were left out): human over AI or CUAD."""
    taken = {key(r) for r in preferred}
    kept = [r for r in rows if key(r) not in taken]
    return [*preferred, *kept], len(rows) - len(kept)


def with_human_rows(
    rows: Sequence[dict],
    questions: Sequence[dict],
    retrieve: Retrieve,
    k: int,
    n_windows: int,
    max_chars: int | None = None,
    skip: str | None = None,
) -> tuple[list[dict], dict]:
    """sft_dataset's rows with a human gold row first for each gold question, replacing the rows of the same
    (contract, question); `skip` says why no human row is added."""
    if skip:
        return list(rows), {"human_sft_rows": 0, "human_sft_skipped": skip}
    mine, stats = human_sft_rows(questions, retrieve, k, n_windows, max_chars)
    out, replaced = outrank(mine, rows, question_key)
    return out, {"human_sft_rows": len(mine), "rows_replaced_by_human": replaced, **stats, "human_sft_skipped": "no"}


def pair_inputs(
    questions: Sequence[dict],
    candidates: Sequence[dict],
    make_retrieve: Callable[[], Retrieve],
    k: int,
    n_windows: int,
    max_chars: int | None = None,
) -> tuple[list[dict], list[dict]]:
    """(human rows, gold questions) for `preferences.build_preference_pairs`: every human-graded answer (implied
    ones too), and a window prompt with its gold for each gold question no candidate asked (`make_retrieve` is
    called only when there is one)."""
    asked = {question_key(c) for c in candidates}
    fresh = [q for q in golden(questions) if question_key(q) not in asked]
    made, _ = human_sft_rows(fresh, make_retrieve(), k, n_windows, max_chars) if fresh else ([], {})
    gold_questions = [
        {
            "question_id": m["example_id"],
            "contract_id": m["contract_id"],
            "question": m["question"],
            "prompt_json": json.dumps(m["prompt"]),
            "gold_answer": m["answer"],
            "gold_source": "human",
        }
        for m in made
    ]
    return [r for q in questions for r in q["rows"]], gold_questions


def judge_examples(questions: Sequence[dict], use_gold: bool, gold_min: float = 0.75) -> tuple[list[dict], dict]:
    """Judge training rows {contract_id, question, golds, candidate, label, source "human"} from human grades: 1 at
    `gold_min` or above, 0 at 1 - gold_min or below. With `use_gold` the reference is the question's gold, so only
    questions with a quoted gold give rows, and the gold itself is no row; "No such clause." is never a candidate
    (`trained_judge.judge_rows` grades it by rule)."""
    out: list[dict] = []
    stats = dict.fromkeys(("examples", "no_reference", "settled_by_rule", "same_as_gold", "between_labels"), 0)
    for q in questions:
        quoted = q["gold"] is not None and q["gold"] != NO_CLAUSE
        for a in q["answers"]:
            if use_gold and not quoted:
                stats["settled_by_rule" if q["gold"] == NO_CLAUSE else "no_reference"] += 1
            elif is_no_clause(a["answer"]):
                stats["settled_by_rule"] += 1
            elif use_gold and text_key(a["answer"]) == text_key(q["gold"]):
                stats["same_as_gold"] += 1
            elif gold_min > a["grade"] > 1 - gold_min:
                stats["between_labels"] += 1
            else:
                out.append(
                    {
                        "contract_id": q["contract_id"],
                        "question": q["question"],
                        "golds": [q["gold"]] if quoted else [],
                        "candidate": a["answer"],
                        "label": int(a["grade"] >= gold_min),
                        "source": "human",
                    }
                )
    stats["examples"] = len(out)
    stats["positives"] = sum(e["label"] for e in out)
    return out, stats


def example_key(row: dict) -> tuple[str, str, str]:
    """Judge rows that say the same thing: a human row outranks a CUAD-labelled one (`outrank`)."""
    return row["contract_id"], text_key(row["question"]), text_key(row["candidate"])

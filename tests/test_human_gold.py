"""Reviewers' corrections as gold rows: SFT rows, preference pairs and judge rows, train split only, every row counted."""

import json

from selfinstruct.answering import NO_CLAUSE
from selfinstruct.finetune.human_gold import (
    example_key,
    human_questions,
    judge_examples,
    outrank,
    pair_inputs,
    question_key,
    with_human_rows,
)
from selfinstruct.finetune.preferences import build_preference_pairs
from selfinstruct.serving.ratings import rating_rows
from training.judge import _balanced

SENTENCES = [
    "This Agreement shall be governed by the laws of the State of New York.",
    "Payment is due in thirty days after the invoice date.",
    "Either party may terminate this Agreement upon ninety days written notice.",
    "Each party shall keep the other party's information confidential.",
]
TEXT = "  ".join(SENTENCES) + "\nNotices shall be sent by registered\n  mail to the addresses above."
CONTRACTS = {c: {"contract_id": c, "split": s, "text": TEXT} for c, s in (("t1", "train"), ("e1", "eval"))}
LAW = "Which law governs the contract?"


def record(question=LAW, answer=SENTENCES[1], contract="t1", rid="0123456789abcdef"):
    return {"request_id": rid, "question": question, "answer": answer, "contract_id": contract, "adapter_id": "a1"}


def feedback(rows, split="train"):
    """As the human_feedback table holds them: the inbox row plus its contract's split."""
    return [{**r, "split": split} for r in rows]


def corrected(rec=None, quote=SENTENCES[0]):
    at = TEXT.index(quote) if quote != NO_CLAUSE else None
    span = (quote, at, None if at is None else at + len(quote))
    return feedback(rating_rows(rec or record(), "correct", "ana", corrected=span))


def retrieve(question, contract_id, k):
    assert contract_id in CONTRACTS
    return [TEXT]


def test_a_correction_is_the_gold_and_says_the_served_answer_was_wrong():
    questions, stats = human_questions(corrected(), CONTRACTS)
    [q] = questions
    assert q["gold"] == SENTENCES[0] and q["question_id"].startswith("human:")
    assert [(a["answer"], a["grade"]) for a in q["answers"]] == [(SENTENCES[0], 1.0), (SENTENCES[1], 0.0)]
    assert (stats["corrections"], stats["served_implied"], stats["golds"]) == (1, 1, 1)


def test_a_rating_of_the_served_answer_outranks_what_the_correction_implies():
    rows = feedback(rating_rows(record(), "rate", "ana", score=0.25, corrected=(SENTENCES[0], None, None)))
    [q], stats = human_questions(rows, CONTRACTS)
    assert {a["answer"]: a["grade"] for a in q["answers"]} == {SENTENCES[0]: 1.0, SENTENCES[1]: 0.25}
    assert stats["served_implied"] == 0 and stats["used"] == 2


def test_every_row_is_used_or_counted_with_its_reason():
    loose = " ".join("Notices shall be sent by registered mail".split())  # whitespace differs from the contract
    rows = [
        *corrected(),
        *corrected(record(contract="e1")),  # eval split: never trained on
        *feedback([{**corrected()[0], "contract_id": "added-1"}]),  # no text in cuad_contracts
        *feedback([{**corrected()[0], "answer": "New York law governs", "comment": ""}]),  # a paraphrase
        *feedback([{**corrected()[0], "source": "ai", "comment": ""}]),
        *feedback(rating_rows(record(question="Where do notices go?", answer=loose), "right", "bo")),
    ]
    questions, stats = human_questions(rows, CONTRACTS)
    assert stats["rows"] == len(rows) == 6
    assert (stats["ignored_eval_split"], stats["ignored_unknown_contract"]) == (1, 1)
    assert (stats["rejected_not_verbatim"], stats["not_human"], stats["used"]) == (1, 1, 2)
    counted = ("used", "not_human", "ignored_eval_split", "ignored_unknown_contract", "rejected_not_verbatim")
    assert sum(stats[k] for k in counted) == stats["rows"]
    notices = next(q for q in questions if q["question"] == "Where do notices go?")
    assert notices["gold"] == "Notices shall be sent by registered\n  mail"  # the contract's own characters
    assert {q["contract_id"] for q in questions} == {"t1"}


def test_disagreeing_reviewers_make_no_gold_and_no_clause_is_one():
    rows = feedback(rating_rows(record(), "right", "ana") + rating_rows(record(), "wrong", "bo"))
    rows += feedback(rating_rows(record(question="Is there an audit right?"), "no_clause", "ana"))
    questions, stats = human_questions(rows, CONTRACTS)
    golds = {q["question"]: q["gold"] for q in questions}
    assert golds == {LAW: None, "Is there an audit right?": NO_CLAUSE}
    assert (stats["golds"], stats["no_clause_golds"], stats["questions_without_gold"]) == (1, 1, 1)


def test_a_gold_is_spelt_as_the_contract_even_when_a_loose_rating_came_first():
    loose = feedback(rating_rows(record(answer=SENTENCES[0].lower()), "rate", "bo", score=0.5))
    [q], stats = human_questions(loose + corrected(), CONTRACTS)
    assert q["gold"] == SENTENCES[0] and q["answers"][0]["grade"] == 0.75 and stats["used"] == 2


def test_a_served_answer_the_comment_may_have_cut_is_not_implied():
    long = SENTENCES[1] + " " + "x" * 300
    questions, stats = human_questions(corrected(record(answer=long)), CONTRACTS)
    assert stats["served_cut"] == 1 and stats["served_implied"] == 0
    assert [a["answer"] for a in questions[0]["answers"]] == [SENTENCES[0]]


def test_sft_rows_put_the_human_gold_first_and_replace_rows_of_its_question():
    questions, _ = human_questions(corrected(), CONTRACTS)
    seed = [{"example_id": "seed:1", "source": "seed", "contract_id": "t1", "question": LAW.upper(), "answer": "x"}]
    other = [{**seed[0], "example_id": "seed:2", "question": "Other?"}]
    rows, stats = with_human_rows(seed + other, questions, retrieve, 3, 4)
    assert [r["source"] for r in rows] == ["human", "seed"] and stats["rows_replaced_by_human"] == 1
    human = rows[0]
    assert SENTENCES[0] in human["answer"] and human["rejected"] not in (None, human["answer"])
    assert SENTENCES[0] in json.dumps(human["prompt"])  # the target is always among the excerpts shown
    kept, stats = with_human_rows(seed, questions, retrieve, 3, 4, skip="prompt 'chunks'")
    assert kept == seed and stats == {"human_sft_rows": 0, "human_sft_skipped": "prompt 'chunks'"}


def _cand(question, answer, grade):
    return {"question_id": "q1", "contract_id": "t1", "question": question, "prompt_json": "[]"} | {
        "gold_answer": SENTENCES[2],
        "answer": answer,
        "grade": grade,
    }


def test_a_correction_of_a_question_no_candidate_asked_becomes_a_pair():
    questions, _ = human_questions(corrected(), CONTRACTS)
    cands = [_cand("When may a party terminate?", SENTENCES[3], 0.0)]
    rows, golds = pair_inputs(questions, cands, lambda: retrieve, 3, 4)
    pairs, stats = build_preference_pairs(cands, rows, gold_questions=golds)
    human = [p for p in pairs if p["chosen_source"] == "human"]
    assert len(human) == 1 and SENTENCES[0] in human[0]["chosen"]
    assert (human[0]["rejected"], human[0]["rejected_source"]) == (SENTENCES[1], "human")
    assert SENTENCES[0] in human[0]["prompt_json"] and human[0]["contract_id"] == "t1"
    assert (stats["gold_questions"], stats["human_unmatched"]) == (1, 0)


def test_a_question_a_candidate_asked_keeps_its_prompt_and_builds_no_retriever():
    questions, _ = human_questions(corrected(), CONTRACTS)
    cands = [_cand(LAW, SENTENCES[3], 0.9)]

    def no_retriever():
        raise AssertionError("no question needs a prompt")

    rows, golds = pair_inputs(questions, cands, no_retriever, 3, 4)
    pairs, stats = build_preference_pairs(cands, rows, chosen="best")
    assert golds == [] and stats["human_used"] == 2
    assert [(p["chosen"], p["chosen_source"], p["rejected"]) for p in pairs] == [(SENTENCES[0], "human", SENTENCES[1])]


def test_judge_rows_with_and_without_the_reference():
    rows = corrected()
    rows += feedback(rating_rows(record(answer=SENTENCES[2]), "rate", "bo", score=0.5))  # between the labels
    rows += feedback(rating_rows(record(question="Audit?", answer=SENTENCES[3]), "wrong", "ana"))  # no gold
    rows += corrected(record(question="Non-compete?", answer=SENTENCES[3]), NO_CLAUSE)
    questions, _ = human_questions(rows, CONTRACTS)
    with_ref, stats = judge_examples(questions, use_gold=True)
    assert [(e["golds"], e["candidate"], e["label"]) for e in with_ref] == [([SENTENCES[0]], SENTENCES[1], 0)]
    assert (stats["same_as_gold"], stats["between_labels"], stats["no_reference"]) == (1, 1, 1)
    assert stats["settled_by_rule"] == 2  # the no-clause gold and the served quote beside it
    without, _ = judge_examples(questions, use_gold=False)
    got = {(e["question"], e["candidate"], e["label"]) for e in without}
    assert got == {
        (LAW, SENTENCES[0], 1),
        (LAW, SENTENCES[1], 0),
        ("Audit?", SENTENCES[3], 0),
        ("Non-compete?", SENTENCES[3], 0),
    }
    assert all(e["source"] == "human" for e in without)


def test_human_judge_rows_outrank_cuad_rows_and_go_first_under_the_cap():
    questions, _ = human_questions(corrected(), CONTRACTS)
    human, _ = judge_examples(questions, use_gold=True)
    cuad = [
        {"contract_id": "t1", "question": LAW, "golds": [SENTENCES[0]], "candidate": SENTENCES[1] + " ", "label": 1},
        *(
            {"contract_id": "t1", "question": f"Q{i}?", "golds": ["g"], "candidate": f"c{i}", "label": i % 2}
            for i in range(40)
        ),
    ]
    merged, outranked = outrank(human, cuad, example_key)
    assert outranked == 1 and len(merged) == 41 and merged[0]["source"] == "human"
    for seed in range(5):
        assert any(e.get("source") == "human" for e in _balanced(merged, 4, seed))


def test_question_keys_ignore_case_and_spacing_not_the_contract():
    same = question_key({"contract_id": "t1", "question": "which law governs?"})
    assert question_key({"contract_id": "t1", "question": "Which  law\ngoverns?"}) == same
    assert question_key({"contract_id": "t2", "question": "which law governs?"}) != same

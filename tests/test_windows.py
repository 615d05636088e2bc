"""Window prompts and window training rows: the gold window and the hardest wrong ones, each character once.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_windows.py
"""

import json

from selfinstruct.answering import NO_CLAUSE, Span, candidate_spans
from selfinstruct.answering.windows import (
    best_gold_window,
    hardest_wrong,
    top_windows,
    training_windows,
    window_excerpts,
    window_messages,
)
from selfinstruct.finetune.window_rows import prompt_tokens, window_pairs, window_row, window_sft_rows

LAW = "This Agreement shall be governed by the laws of the State of New York."
CHUNK_A = (
    "1. Term. This Agreement begins on the Effective Date and lasts five years. "
    + LAW
    + " Either party may terminate this Agreement upon thirty days written notice."
)
CHUNK_B = (
    "The Licensee shall not assign this Agreement without prior written consent of the Licensor. "
    "Notices shall be sent by registered mail to the addresses of the parties. The laws of each state apply."
)
CONTRACT = CHUNK_A + " " + CHUNK_B
QUESTION = "Which state's laws govern the agreement?"


def test_training_windows_hold_the_gold_window_and_the_hardest_wrong_ones_in_contract_order():
    shown, target, retrieved = training_windows(QUESTION, [LAW], [CHUNK_A, CHUNK_B], 3)
    assert retrieved and target is not None and target.text == LAW  # the one-sentence window is the best match
    assert target in shown and len(shown) == 3
    excerpts = window_excerpts(shown, [CHUNK_A, CHUNK_B])
    order = [CONTRACT.index(e) for e in excerpts]
    assert order == sorted(order)  # the prompt shows them in contract order, so the gold's place says nothing
    wrong = [w for w in shown if w is not target]
    assert all(w.text != LAW and LAW not in w.text or len(w.text) > 2 * len(LAW) for w in wrong)


def test_a_gold_that_retrieval_missed_is_added_so_the_model_never_learns_from_nothing():
    shown, target, retrieved = training_windows(QUESTION, [LAW], [CHUNK_B], 3)
    assert not retrieved and target == Span(LAW) and shown[-1] == target and len(shown) == 3


def test_without_gold_the_row_shows_what_the_benchmark_would_show():
    shown, target, retrieved = training_windows(QUESTION, [], [CHUNK_A, CHUNK_B], 4)
    assert target is None and not retrieved
    assert shown == top_windows(QUESTION, [CHUNK_A, CHUNK_B], 4)


def test_excerpts_show_each_character_once_and_windows_found_nowhere_last():
    spans = candidate_spans([CHUNK_A])  # 1-3 sentence windows overlap
    excerpts = window_excerpts(spans, [CHUNK_A])
    assert excerpts == [CHUNK_A.strip()]  # every window merged into the one stretch they cover
    lone = Span("A sentence from somewhere else in the contract.")
    assert window_excerpts([spans[0], lone], [CHUNK_A]) == [spans[0].text, lone.text]
    msgs = window_messages(QUESTION, [spans[0]], [CHUNK_A])
    assert spans[0].text in msgs[1]["content"] and CHUNK_B not in msgs[1]["content"]


def test_best_gold_window_and_hardest_wrong():
    spans = candidate_spans([CHUNK_A, CHUNK_B])
    best = best_gold_window(spans, [LAW])
    assert best is not None and spans[best].text == LAW
    assert best_gold_window(spans, ["Nothing like any sentence here at all."]) is None
    wrong = hardest_wrong(QUESTION, [LAW], spans)
    assert wrong is not None and wrong.text != LAW and "laws" in wrong.text.lower()  # BM25's top wrong pick
    assert hardest_wrong(QUESTION, [], spans) is not None  # with no gold every window is wrong


def test_window_rows_teach_a_window_or_no_clause_and_give_a_rejected_window():
    contracts = {
        "k1": {"contract_id": "k1", "split": "train", "text": CONTRACT},
        "e1": {"contract_id": "e1", "split": "eval", "text": CONTRACT},
    }
    qa = [
        {"source": "seed", "id": 1, "contract_id": "k1", "question": QUESTION, "answer": LAW},
        {"source": "seed", "id": 2, "contract_id": "k1", "question": "Q?", "answer": "paraphrase not in the text"},
        {"source": "seed", "id": 3, "contract_id": "e1", "question": QUESTION, "answer": LAW},
    ]
    none = [{"question_id": "n1", "contract_id": "k1", "question": "Is there an audit clause?", "gold_answers": []}]
    rows, stats = window_sft_rows(qa, none, contracts, lambda q, c, k: [CHUNK_A, CHUNK_B][:k], 2, 4, 0.5)
    assert stats["dropped_not_verbatim"] == 1 and stats["dropped_not_train"] == 1
    assert [r["answer"] for r in rows] == [LAW, NO_CLAUSE] and stats["gold_window_retrieved"] == 1
    assert all(r["rejected"] and r["rejected"] != r["answer"] for r in rows)
    assert LAW in rows[0]["prompt"][1]["content"] and rows[0]["prompt"][1]["content"].endswith(QUESTION)
    pairs = window_pairs([{**r, "prompt_json": json.dumps(r["prompt"])} for r in rows])
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [(r["answer"], r["rejected"]) for r in rows]
    assert len({p["pair_id"] for p in pairs}) == 2 and all(p["chosen_source"] == "gold" for p in pairs)
    cost = prompt_tokens(rows, lambda text: len(text.split()))
    assert cost["rows"] == 2 and cost["total_tokens"] > cost["max_tokens"] >= cost["mean_tokens"] > 0


def test_window_row_is_cheaper_than_the_chunks_it_comes_from():
    long_chunks = [CHUNK_A + " " + ("Filler sentence about nothing in particular. " * 40), CHUNK_B]
    row = window_row(QUESTION, [LAW], long_chunks, 3)
    assert len(row["prompt"][1]["content"]) < sum(len(c) for c in long_chunks) / 2
    assert row["answer"] == LAW and row["retrieved"]

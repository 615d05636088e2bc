"""Recall@k scoring, BM25 and dense ranking on hand-made contracts."""

import pytest

from resources.embedders import HashingEmbedder
from selfinstruct.retrieval.evaluate import (
    Question,
    compare_recall,
    eval_questions,
    is_hit,
    rank_bm25,
    rank_dense,
    recall_rows,
)


@pytest.mark.parametrize(
    "chunk,spans,hit",
    [
        ((0, 100), [(40, 60)], True),  # gold inside chunk
        ((0, 100), [(90, 130)], False),  # 10 of the 40-char gold: under half of the shorter
        ((0, 100), [(70, 130)], True),  # 30 of 60: at least half
        ((0, 1000), [(990, 1010)], True),  # exactly half of the 20-char gold
        ((0, 100), [(100, 200)], False),  # touching is no overlap
    ],
)
def test_is_hit_uses_half_of_the_shorter(chunk, spans, hit):
    s, e = chunk
    assert is_hit(s, e, spans) is hit


def test_recall_rows_counts_questions_with_a_hit_in_top_k():
    qs = [Question("c", "A", "q1", ((0, 10),)), Question("c", "B", "q2", ((50, 60),))]
    ranked = [[(0, 20), (40, 70)], [(0, 20), (40, 70)]]
    rows = {r["k"]: r for r in recall_rows("m", qs, ranked, ks=(1, 2))}
    assert rows[1]["recall"] == 0.5 and rows[2]["recall"] == 1.0 and rows[2]["n"] == 2
    assert rows[1]["mean_context_chars"] == 20 and rows[2]["mean_context_chars"] == 50
    assert rows[1]["recall_low"] is None and "recall_high" in rows[1]  # one contract: no interval claimed


def _questions(n_contracts: int, per: int) -> list[Question]:
    return [Question(f"c{c}", f"cat{i}", f"q{c}-{i}", ((0, 10),)) for c in range(n_contracts) for i in range(per)]


HIT, MISS = [(0, 20)], [(500, 600)]


def test_recall_interval_resamples_contracts():
    qs = _questions(6, 4)  # contracts c0-c2 all hit, c3-c5 all miss
    ranked = [HIT if int(q.contract_id[1]) < 3 else MISS for q in qs]
    [row] = recall_rows("m", qs, ranked, ks=(1,))
    assert row["recall"] == 0.5
    assert row["recall_low"] < 0.35 and row["recall_high"] > 0.65  # 6 contracts, not 24 independent questions


def test_compare_recall_pairs_questions_and_tests_the_difference():
    qs = _questions(10, 3)
    always = [HIT] * len(qs)
    half = [HIT if int(q.contract_id[1:]) % 2 else MISS for q in qs]
    same = list(half)
    out = {
        c["versus"]: c
        for c in compare_recall(
            qs, {"a": always, "b": half, "c": same, "a2": always}, "b", ["a", "c", "b", "missing"], k=1
        )
    }
    assert set(out) == {"a", "c"}  # itself and unknown methods are left out
    assert out["a"]["diff"] == -0.5 and out["a"]["high"] < 0 and out["a"]["p_value"] < 0.01
    assert out["c"]["diff"] == 0 and out["c"]["p_value"] == 1.0
    assert out["a"]["n"] == 30 and out["a"]["contracts"] == 10


def _chunks():
    texts = [
        "The governing law of this agreement is the law of the State of Delaware.",
        "The Distributor shall purchase a minimum of 500 units per quarter.",
        "Either party may terminate this agreement for convenience on notice.",
    ]
    rows, pos = [], 0
    for i, t in enumerate(texts):
        rows.append({"chunk_id": f"c{i}", "contract_id": "k1", "start": pos, "end": pos + len(t), "text": t})
        pos += len(t) + 1
    rows.append(
        {
            "chunk_id": "other",
            "contract_id": "k2",
            "start": 0,
            "end": 70,
            "text": "governing law governing law governing law Delaware Delaware law",
        }
    )
    return rows


def test_bm25_and_dense_rank_within_the_question_contract():
    chunks = _chunks()
    gold = (chunks[0]["start"], chunks[0]["end"])
    q = Question("k1", "Governing Law", "Which state's governing law applies to this agreement?", (gold,))
    for ranked in (rank_bm25([q], chunks, 2), rank_dense([q], chunks, HashingEmbedder().embed, 2)):
        assert ranked[0][0] == gold
        assert (0, 70) not in ranked[0]  # the other contract's chunk is never a candidate


def test_eval_questions_keep_only_answerable_located_eval_rows():
    base = {"category": "X", "question": "q", "answer_texts": ["t"], "answer_starts": [1], "answer_ends": [5]}
    anns = [
        {**base, "contract_id": "e", "is_impossible": False},
        {**base, "contract_id": "t", "is_impossible": False},
        {**base, "contract_id": "e", "is_impossible": True},
        {**base, "contract_id": "e", "is_impossible": False, "answer_starts": [], "answer_ends": []},
    ]
    qs = eval_questions(anns, {"e"})
    assert len(qs) == 1 and qs[0].spans == ((1, 5),)

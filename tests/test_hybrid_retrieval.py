"""Reciprocal-rank fusion and hybrid retrieval restricted to the question's contract."""

import pytest

from resources.embedders import HashingEmbedder
from selfinstruct.retrieval.evaluate import Question
from selfinstruct.retrieval.hybrid import HybridRetriever, bm25_ranking, rank_hybrid, rrf_fuse


def test_doc_first_in_both_lists_wins_with_the_rrf_score():
    fused = rrf_fuse([["a", "b", "c"], ["a", "c", "b"]], k=60)
    assert fused[0] == ("a", pytest.approx(2 / 61))
    assert dict(fused)["b"] == pytest.approx(1 / 62 + 1 / 63)
    assert [d for d, _ in fused] == ["a", "b", "c"]  # b and c tie on score and best rank: b was seen first


def test_ties_break_by_best_rank_then_first_appearance():
    assert [d for d, _ in rrf_fuse([["a", "b"], ["b", "a"]])] == ["a", "b"]
    # y: ranks 1 and 3 -> 1/61 + 1/63 > x: ranks 2 and 2 -> 2/62 > z: rank 1 once
    assert [d for d, _ in rrf_fuse([["y", "x"], ["z", "x", "y"]])] == ["y", "x", "z"]
    # equal score and equal best rank: the first list's document first, whatever the input order
    assert [d for d, _ in rrf_fuse([["p"], ["q"]])] == ["p", "q"]


def test_weights_missing_docs_duplicates_and_top_k():
    assert rrf_fuse([["a", "b"], ["b", "a"]], weights=[1.0, 2.0])[0][0] == "b"
    fused = dict(rrf_fuse([["a", "a", "b"], ["c"]], k=0))
    assert fused == {"a": 1.0, "b": 0.5, "c": 1.0}  # a repeated id counts once: b is second
    assert len(rrf_fuse([["a", "b", "c"]], top_k=2)) == 2
    assert rrf_fuse([[], []]) == []
    with pytest.raises(ValueError, match="weights"):
        rrf_fuse([["a"]], weights=[1.0, 1.0])


def _chunks():
    texts = {
        "c1": [
            "the licensee shall pay royalties quarterly",
            "governing law is the state of new york",
            "this agreement terminates after five years",
        ],
        "c2": ["governing law governing law state of delaware", "royalties are due"],
    }
    return [
        {"chunk_id": f"{cid}-{i}", "contract_id": cid, "start": i * 100, "end": i * 100 + 90, "text": t}
        for cid, ts in texts.items()
        for i, t in enumerate(ts)
    ]


def test_search_stays_inside_the_question_contract():
    r = HybridRetriever(_chunks(), HashingEmbedder().embed)
    hits = r.search("which governing law applies", "c1", top_k=5)
    assert [h for h, _ in hits][0] == "c1-1"
    assert {h for h, _ in hits} == {"c1-0", "c1-1", "c1-2"}
    assert r.search("governing law", "unknown", top_k=3) == []
    assert r.spans(hits[:1], "c1") == [(100, 190)]


def test_weights_zero_reduce_to_one_ranking_and_batch_search_matches_single():
    chunks = _chunks()
    bm25_only = HybridRetriever(chunks, HashingEmbedder().embed, weights=(1.0, 0.0))
    ids = [c["chunk_id"] for c in chunks if c["contract_id"] == "c1"]
    texts = [c["text"] for c in chunks if c["contract_id"] == "c1"]
    assert [h for h, _ in bm25_only.search("royalties quarterly", "c1")] == bm25_ranking(
        "royalties quarterly", ids, texts
    )
    both = HybridRetriever(chunks, HashingEmbedder().embed)
    many = both.search_many(["royalties", "governing law"], ["c1", "c2"], top_k=2)
    assert many == [both.search("royalties", "c1", 2), both.search("governing law", "c2", 2)]


def test_rank_hybrid_returns_spans_per_question():
    qs = [
        Question("c1", "Governing Law", "which governing law applies", ((100, 150),)),
        Question("c2", "Royalty", "royalties", ((100, 150),)),
    ]
    ranked = rank_hybrid(qs, _chunks(), HashingEmbedder().embed, k=2)
    assert len(ranked) == 2 and all(len(r) == 2 for r in ranked)
    assert ranked[0][0] == (100, 190)

"""The demo summary's last three lines: best method vs base (paired, clustered), served retriever vs BM25, next.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_headline.py
"""

from selfinstruct.benchmark.headline import best_versus_base, headline_lines


def _rows(method: str, matches: list[int]) -> list[dict]:
    return [
        {"method": method, "question_id": f"q{i}", "contract_id": f"c{i % 5}", "cuad_match": m}
        for i, m in enumerate(matches)
    ]


def test_the_best_method_is_paired_with_base_and_the_oracle_is_no_method():
    rows = _rows("base", [0] * 20) + _rows("sft", [1] * 15 + [0] * 5) + _rows("dpo", [1] * 5 + [0] * 15)
    rows += _rows("oracle_retrieval", [1] * 20) + [{"method": "sft", "question_id": "none", "cuad_match": None}]
    best = best_versus_base(rows, n_boot=500)
    assert best["method"] == "sft" and best["n"] == 20 and best["diff"] == 0.75
    assert 0 < best["low"] <= 0.75 <= best["high"] and best["p_value"] < 0.05
    lines = headline_lines(best, {"hybrid": 0.55, "bm25": 0.49, "fine_tuned": 0.7}, "fine_tuned")
    assert len(lines) == 3 and "sft +0.750" in lines[0] and lines[0].endswith("better.")
    assert "(fine_tuned) recall@3 0.700 vs BM25 0.490" in lines[1] and "make ui" in lines[2]


def test_an_interval_holding_zero_is_no_difference_and_missing_data_is_said():
    rows = _rows("base", [1, 0] * 10) + _rows("sft", [0, 1] * 10)
    best = best_versus_base(rows, n_boot=500)
    assert best["low"] <= 0 <= best["high"]
    assert headline_lines(best, {}, "hybrid")[0].endswith("no difference.")
    assert best_versus_base(_rows("sft", [1])) is None and best_versus_base(_rows("base", [1])) is None
    empty = headline_lines(None, {"hybrid": 0.5}, "hybrid")
    assert "no benchmark_scores run" in empty[0] and "has not measured both" in empty[1]

"""Answers computed once (benchmark/answer_cache.py): a second benchmark run on the same models and questions
reads every local model's answers back and loads no model; what changed is scored again.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_answer_cache.py
"""

import types

import pytest
from test_benchmark import TEXT, _corpus, tiny_scorer  # noqa: F401, F811 (a fixture)

from selfinstruct.answering import Answer
from selfinstruct.benchmark.answer_cache import AnswerCache, answer_key, answer_of, answer_value, code_hash, model_key
from selfinstruct.benchmark.run import benchmark_rows
from selfinstruct.corpus.questions import benchmark_questions


def _stored(cache: AnswerCache) -> list[tuple]:
    return [(r["model_key"], r["answer_key"], r["value_json"]) for r in cache.new_rows()]


def test_values_computes_only_what_is_missing_and_new_rows_hold_only_that():
    calls = []

    def compute(items):
        calls.append(list(items))
        return [x * 10 for x in items]

    cache = AnswerCache()
    assert cache.values("m", [1, 2, 3], compute, str) == [10, 20, 30]
    assert cache.values("m", [3, 4], compute, str) == [30, 40]
    assert calls == [[1, 2, 3], [4]] and cache.report()["cache_hits"] == 1
    assert [r["answer_key"] for r in cache.new_rows()] == ["1", "2", "3", "4"]
    again = AnswerCache(_stored(cache) + [("m", "5", "{not json")])
    assert again.unreadable == 1 and len(again) == 4
    assert again.values("m", [4, 1], compute, str) == [40, 10] and again.new_rows() == []
    assert again.values("other model", [1], compute, str) == [10] and calls[-1] == [1]  # another key: computed
    with pytest.raises(ValueError, match="2 values for 1 items"):
        AnswerCache().values("m", [1], lambda items: [1, 2], str)


def test_an_answer_survives_the_table_exactly():
    a = Answer(True, "the laws of New York", 10, 30, -0.123456789012345, {"n_candidates": 6, "method": "lm"})
    assert answer_of(answer_value(a)) == a
    cache = AnswerCache()
    cache.answers("k", [{"question": "q", "contract_id": "c"}], [["p"]], lambda qs, cs: [a])
    back = AnswerCache(_stored(cache)).answers("k", [{"question": "q", "contract_id": "c"}], [["p"]], None)
    assert back == [a]


def test_keys_change_with_what_determines_an_answer(tmp_path):
    q = {"question": "Governing law?", "contract_id": "c1"}
    assert answer_key(q, ["a", "b"]) == answer_key(dict(q), ["a", "b"])
    assert answer_key(q, ["a", "b"]) != answer_key(q, ["b", "a"])  # other passages, other answer
    assert answer_key(q, ["a"]) != answer_key({**q, "contract_id": "c2"}, ["a"])
    base = model_key("w", "", n_windows=6, prompt="windows")
    assert base == model_key("w", "", prompt="windows", n_windows=6)
    assert base != model_key("w", "abc", n_windows=6, prompt="windows")
    assert base != model_key("w", "", n_windows=5, prompt="windows")
    src = tmp_path / "scoring.py"
    src.write_text("X = 1\n")
    mod = types.SimpleNamespace(__file__=str(src))
    before = code_hash(mod)
    src.write_text("X = 2\n")
    assert code_hash(mod) != before


def test_a_second_benchmark_run_loads_no_model_and_gives_the_same_rows(tiny_scorer):  # noqa: F811
    anns, contracts = _corpus(n_contracts=4)
    contracts["c0"]["split"] = "train"
    qs = benchmark_questions(anns, contracts, n=4)
    cal = benchmark_questions(anns, contracts, n=3, split="train")
    contexts, texts = [[TEXT[:200], TEXT[150:]] for _ in qs], {c: r["text"] for c, r in contracts.items()}
    made = []

    def scorer():
        made.append(1)
        return tiny_scorer()

    def run(cache, ctx):
        rules: dict = {}
        rows = benchmark_rows(
            qs, ctx, texts, {"base": scorer}, {}, n_windows=3, margin=None, log=lambda _: None,
            calibration=(cal, [[TEXT]] * len(cal)), rules=rules, cache=cache, keys={"base": "k-base"},
        )  # fmt: skip
        return [{k: v for k, v in r.items() if k != "latency_s"} for r in rows], rules

    first_cache = AnswerCache()
    first, rules = run(first_cache, contexts)
    assert len(made) == 2  # base, then the oracle row (the base model on gold chunks)
    # the oracle's gold chunk is new text for answerable questions; for the others it is the retrieved chunks
    answerable = sum(bool(q["gold_answers"]) for q in qs)
    assert first_cache.report()["cache_misses"] == len(cal) + len(qs) + answerable
    made.clear()
    second_cache = AnswerCache(_stored(first_cache))
    second, rules_again = run(second_cache, contexts)
    assert made == [] and second == first and rules_again == rules
    assert second_cache.new_rows() == [] and second_cache.report()["cache_misses"] == 0
    changed = [list(c) for c in contexts]
    changed[0] = [TEXT[100:]]  # a retrained retriever gives this question other passages
    third_cache = AnswerCache(_stored(first_cache))
    run(third_cache, changed)
    assert made == [1] and third_cache.report()["cache_misses"] == 1  # loaded once, for that one question

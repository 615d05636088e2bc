"""The benchmark's questions, answers, scores and summary (Dagster-free parts), local models on a tiny Llama.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_benchmark.py
"""

import pytest

from selfinstruct.answering import Answer, Span, SpanScorer, bm25_scores, candidate_spans
from selfinstruct.answering.windows import top_windows
from selfinstruct.benchmark.methods import oracle_context, score
from selfinstruct.benchmark.run import benchmark_rows
from selfinstruct.benchmark.summary import detection, summarize_methods
from selfinstruct.corpus.questions import benchmark_questions, counts
from selfinstruct_assets.benchmark.table import report

LAW = "This Agreement shall be governed by the laws of the State of New York."
TEXT = (
    "1. Term. This Agreement begins on the Effective Date and lasts five years. "
    + LAW
    + " Either party may terminate this Agreement upon thirty days written notice. The Licensee shall not assign "
    "this Agreement without prior written consent of the Licensor. Notices shall be sent by registered mail."
)


def _corpus(n_contracts=6, cats=("Governing Law", "Anti-Assignment", "Audit Rights")):
    contracts = {
        f"c{i}": {"contract_id": f"c{i}", "split": "eval" if i else "train", "text": TEXT} for i in range(n_contracts)
    }
    at = TEXT.index(LAW)
    anns = [
        {
            "contract_id": c,
            "category": cat,
            "question": f"Does the contract have a {cat} clause?",
            "answer_starts": [] if cat == "Audit Rights" else [at],
            "answer_ends": [] if cat == "Audit Rights" else [at + len(LAW)],
            "normalized_answer": "New York" if cat == "Governing Law" else None,
            "is_impossible": cat == "Audit Rights",
        }
        for c in contracts
        for cat in cats
    ]
    return anns, contracts


def test_questions_take_categories_in_turn_from_eval_contracts_only():
    anns, contracts = _corpus()
    qs = benchmark_questions(anns, contracts, n=7)
    assert [q["category"] for q in qs[:6]] == ["Anti-Assignment", "Audit Rights", "Governing Law"] * 2
    assert all(q["contract_id"] != "c0" for q in qs) and len({q["question_id"] for q in qs}) == 7
    assert counts(qs) == {"n": 7, "n_answerable": 5, "n_unanswerable": 2, "categories": 3}
    assert benchmark_questions(anns, contracts, n=15)[:7] == qs  # a larger n extends a smaller one
    reordered = benchmark_questions(list(reversed(anns)), contracts, n=7)
    assert reordered == qs  # the order comes from hashes, not from the input's order
    gov = next(q for q in qs if q["category"] == "Governing Law")
    assert gov["gold_answers"] == [LAW] and gov["short_answer"] == "New York" and gov["has_clause"]


def test_top_windows_keeps_bm25s_best_in_their_original_order():
    spans = candidate_spans([TEXT])
    kept = top_windows("Which state's laws govern the agreement?", [TEXT], 4)
    scores = bm25_scores("Which state's laws govern the agreement?", spans)
    best = max(range(len(spans)), key=lambda i: scores[i])
    assert len(kept) == 4 < len(spans) and spans[best] in kept
    assert [spans.index(s) for s in kept] == sorted(spans.index(s) for s in kept)
    assert top_windows("law", [TEXT], 0) == spans


def test_score_counts_cuad_match_on_answerable_questions_only():
    q = {"gold_answers": [LAW], "has_clause": True, "short_answer": "New York"}
    hit = score(q, Answer.of(Span(LAW), 1.0))
    assert (hit["cuad_match"], hit["token_f1"], hit["predicted_clause"], hit["exact_match"]) == (1.0, 1.0, True, 0.0)
    assert score(q, Answer.none())["cuad_match"] == 0.0
    none_q = {"gold_answers": [], "has_clause": False, "short_answer": None}
    assert score(none_q, Answer.none()) == {
        "has_clause": False,
        "predicted_clause": False,
        "right": 1.0,
        "cuad_match": None,
        "quote_cuad_match": None,
        "token_f1": None,
        "exact_match": None,
    }


def test_oracle_context_is_a_chunk_around_the_gold_clause():
    [chunk] = oracle_context({"gold_answers": [LAW]}, TEXT, ["retrieved"], chars=120)
    assert LAW in chunk and len(chunk) <= 120
    assert oracle_context({"gold_answers": []}, TEXT, ["retrieved"]) == ["retrieved"]


def test_detection_scores_from_codes():
    # codes 2*gold + predicted: tp=2 (3), fp=1 (1), fn=1 (2), tn=1 (0) -> p=2/3, r=2/3
    p, r, f1 = detection([3, 3, 1, 2, 0])
    assert (p, r, f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert detection([0, 0]) == (0.0, 0.0, 0.0)


def test_summary_pairs_methods_with_standard_rag():
    rows = [
        {
            "method": m,
            "question_id": f"q{i}",
            "contract_id": f"c{i // 2}",
            "has_clause": True,
            "predicted_clause": True,
            "cuad_match": float(i % 4 != 0 if m == "standard_rag" else 1),
            "latency_s": 1.0,
        }
        for m in ("standard_rag", "sft")
        for i in range(40)
    ]
    by = {s["method"]: s for s in summarize_methods(rows, n_boot=500)}
    assert by["standard_rag"]["cuad_match"] == 0.75 and by["standard_rag"]["p_vs_standard"] is None
    assert by["sft"]["cuad_match_low"] == by["sft"]["cuad_match_high"] == 1.0
    assert by["standard_rag"]["cuad_match_low"] < 0.75 < by["standard_rag"]["cuad_match_high"]
    assert by["sft"]["mcnemar_p"] == pytest.approx(2 / 2**10) and by["sft"]["p_vs_standard"] < 0.05
    shown = report(list(by.values()))
    assert shown["cuad_match/sft"] == 1.0 and shown["cuad_match/standard_rag"] == 0.75


@pytest.fixture(scope="module")
def tiny_scorer(tiny):
    pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(tiny), AutoModelForCausalLM.from_pretrained(tiny).eval()
    return lambda: SpanScorer(model, tok)


def test_benchmark_rows_are_the_same_twice_and_keep_questions_without_text(tiny_scorer):
    anns, contracts = _corpus(n_contracts=3)
    qs = benchmark_questions(anns, contracts, n=6)
    contexts = [[TEXT[:180], TEXT[150:]] for _ in qs]
    contexts[1] = []  # a contract whose text the index lost
    texts = {c: r["text"] for c, r in contracts.items()}
    replies = {"standard_rag": [LAW, "No such clause.", "the laws of New York", "", LAW, "nonsense words"]}

    def run():
        return benchmark_rows(
            qs, contexts, texts, {"base": tiny_scorer}, replies, n_windows=3, margin=0.0, log=lambda _: None
        )

    first, second = run(), run()
    strip = [{k: v for k, v in r.items() if k != "latency_s"} for r in first]
    assert strip == [{k: v for k, v in r.items() if k != "latency_s"} for r in second]
    methods = [r["method"] for r in first]
    assert {m: methods.count(m) for m in methods} == {
        "standard_rag": 6,
        "bm25_sentence": 6,
        "base": 6,
        "oracle_retrieval": 6,
    }
    lost = [r for r in first if r["question_id"] == qs[1]["question_id"] and r["method"] != "oracle_retrieval"]
    assert all(r["reason"] == "no retrievable text" and not r["predicted_clause"] for r in lost)
    rag = [r for r in first if r["method"] == "standard_rag"]
    assert rag[0]["answer"] == LAW and all(r["answer"] in TEXT for r in first)  # every answer is a quotation


class FakeJudge:
    """TrainedJudge's face: a score per (question, candidate, golds); here 0.9 when the quote is a gold."""

    def score(self, questions, candidates, golds):
        return [0.9 if c in g else 0.2 for c, g in zip(candidates, golds)]


def test_judge_column_from_the_trained_judge_and_its_agreement_with_cuad_match():
    from selfinstruct.finetune.judging import judge_agreement, trained_scores, with_judge

    rows = [
        {
            "question_id": "a",
            "question": "Q?",
            "answer": LAW,
            "predicted_clause": True,
            "has_clause": True,
            "cuad_match": 1.0,
        },
        {
            "question_id": "b",
            "question": "Q?",
            "answer": "Notices shall be sent.",
            "predicted_clause": True,
            "has_clause": True,
            "cuad_match": 0.0,
        },
        {
            "question_id": "c",
            "question": "Q?",
            "answer": "",
            "predicted_clause": False,
            "has_clause": False,
            "cuad_match": None,
        },
        {
            "question_id": "d",
            "question": "Q?",
            "answer": LAW,
            "predicted_clause": True,
            "has_clause": False,
            "cuad_match": None,
        },
    ]
    golds = {"a": [LAW], "b": [LAW], "c": [], "d": []}
    scores = trained_scores(FakeJudge(), rows, golds)
    assert scores == [0.9, 0.2, 1.0, 0.0]  # no gold: right exactly when it says "no clause"
    agree = judge_agreement(with_judge(rows, scores))
    assert agree == {"judge_agreement": 1.0, "judge_kappa": 1.0, "judge_auroc": 1.0, "judge_threshold": 0.5}
    flipped = judge_agreement(with_judge(rows, [1 - s for s in scores]))
    assert flipped["judge_agreement"] == 0.0 and flipped["judge_auroc"] == 0.0
    # The judge's own calibrated cut decides: 0.6 is "wrong" for a judge whose threshold is 0.7.
    shifted = with_judge(rows, [0.9, 0.6, 1.0, 0.0])
    assert judge_agreement(shifted)["judge_kappa"] == 0.5  # at 0.5 the wrong quote reads as right
    assert judge_agreement(shifted, threshold=0.7) == {
        "judge_agreement": 1.0,
        "judge_kappa": 1.0,
        "judge_auroc": 1.0,
        "judge_threshold": 0.7,
    }


def test_pmi_is_the_question_lift_of_each_window(tiny_scorer):
    from selfinstruct.answering import NO_CLAUSE, normalised, quote_messages
    from selfinstruct.answering.pmi import NO_QUESTION, pmi_answer, pmi_values

    scorer, spans = tiny_scorer(), candidate_spans([TEXT])[:4]
    replies = [s.text for s in spans] + [NO_CLAUSE]
    naive = [
        normalised(a, n, 1.0) - normalised(b, m, 1.0)
        for (a, n), (b, m) in zip(
            scorer.logprobs_naive(quote_messages("Which law governs?", [TEXT]), replies),
            scorer.logprobs_naive(quote_messages(NO_QUESTION, [TEXT]), replies),
        )
    ]
    assert pmi_values(scorer, "Which law governs?", [TEXT], replies) == pytest.approx(naive, abs=1e-3)
    answer = pmi_answer(scorer, "Which law governs?", [TEXT], margin=-1e9, spans=spans)
    best = max(range(4), key=lambda i: naive[i])
    assert answer.text == spans[best].text and answer.method_detail["method"] == "lm_pmi"


def test_each_category_alternates_answerable_and_unanswerable_questions():
    anns, contracts = _corpus(n_contracts=7, cats=("Governing Law",))
    for a in anns[1::2]:  # every other contract lacks the clause
        a.update(answer_starts=[], answer_ends=[], is_impossible=True)
    for a in anns:
        a["normalized_answer"] = "Yes" if a["contract_id"] != "c2" else "New York"
    qs = benchmark_questions(anns, contracts, n=6)
    assert [q["has_clause"] for q in qs] == [True, False] * 3
    # EM only where there is a clause, and not on a yes/no answer (that is detection, scored as such).
    assert {q["contract_id"]: q["short_answer"] for q in qs if q["short_answer"]} == {"c2": "New York"}


def test_rag_replies_reuse_known_answers_ask_the_rest_concurrently_and_keep_order():
    import threading
    import time as _time

    from selfinstruct.benchmark.run import rag_replies

    seen, lock = [], threading.Lock()

    class Program:
        def __call__(self, question, contract_id):
            with lock:
                seen.append(threading.get_ident())
            _time.sleep(0.05)
            return type("Pred", (), {"answer": f"asked {question}"})()

    qs = [{"question_id": f"q{i}", "question": str(i), "contract_id": "c"} for i in range(6)]
    got = rag_replies(Program(), qs, {"q0": "known 0", "q3": "known 3"}, threads=4)
    assert got == ["known 0", "asked 1", "asked 2", "known 3", "asked 4", "asked 5"]
    assert len(seen) == 4 and len(set(seen)) > 1  # only the unknown ones, on more than one thread


def test_margin_chosen_on_calibration_questions_and_a_repeated_model_scored_once(tiny_scorer):
    anns, contracts = _corpus(n_contracts=4)
    contracts["c0"]["split"] = "train"
    qs = benchmark_questions(anns, contracts, n=4)
    cal = benchmark_questions(anns, contracts, n=3, split="train")
    contexts, texts = [[TEXT]] * len(qs), {c: r["text"] for c, r in contracts.items()}
    made = []

    def scorer():
        made.append(1)
        return tiny_scorer()

    with pytest.raises(ValueError, match="calibration"):
        benchmark_rows(qs, contexts, texts, {"base": scorer}, {}, n_windows=3, margin=None, log=lambda _: None)
    made.clear()
    rules: dict = {}
    rows = benchmark_rows(
        qs,
        contexts,
        texts,
        {"base": scorer},
        {},
        n_windows=3,
        margin=None,
        log=lambda _: None,
        calibration=(cal, [[TEXT]] * len(cal)),
        aliases={"serving": "base"},
        rules=rules,
    )
    assert len(made) == 2  # base, then the oracle row: "serving" was not loaded again
    assert set(rules) == {"base", "serving", "oracle_retrieval"} and rules["serving"] == rules["base"]
    assert rules["base"]["n_questions"] == 3 and rules["oracle_retrieval"]["margin"] == rules["base"]["margin"]
    base = [r for r in rows if r["method"] == "base"]
    served = [r for r in rows if r["method"] == "serving"]
    assert [r["answer"] for r in served] == [r["answer"] for r in base] and len(served) == len(qs)
    assert [r["reason"] for r in served] == [b["reason"] or "same weights as base" for b in base]

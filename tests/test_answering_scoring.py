"""The LM span scorer on a tiny random Llama: exactness of the shared-cache batching, learning, "no clause".

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_answering_scoring.py
"""

import pytest

torch = pytest.importorskip("torch")

from selfinstruct.answering import NO_CLAUSE, SpanScorer, candidate_spans, quote_messages  # noqa: E402

PASSAGES = [
    {
        "text": "This Agreement shall be governed by the laws of the State of New York. Either party may "
        "terminate this Agreement upon thirty (30) days prior written notice to the other party.",
        "start": 40,
    },
    {
        "text": "The Licensee shall not assign or transfer any rights under this Agreement without prior "
        "written consent; any dispute arising out of this Agreement shall be resolved by arbitration.",
        "start": 400,
    },
]
QUESTION = "Can the agreement be assigned?"


def _load(folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder).eval()


def _lora(model):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        lora_dropout=0.0,
    )
    return get_peft_model(model, cfg)


def _train(scorer: SpanScorer, target: str, steps: int = 40) -> None:
    """A few steps of SFT on one (quoting prompt, target) pair: loss on the reply tokens only."""
    model = scorer.model
    prompt = scorer.prompt_ids(quote_messages(QUESTION, [p["text"] for p in PASSAGES]))
    reply = scorer.reply_ids(target)
    ids = torch.tensor([prompt + reply])
    labels = torch.tensor([[-100] * len(prompt) + reply])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
    model.eval()


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_shared_cache_batches_equal_naive_scoring(tiny, batch_size):
    tok, model = _load(tiny)
    scorer = SpanScorer(model, tok, batch_size=batch_size)
    spans = candidate_spans(PASSAGES)
    replies = [s.text for s in spans] + [NO_CLAUSE, "", spans[0].text[:7]]
    messages = quote_messages(QUESTION, [p["text"] for p in PASSAGES])
    fast, naive = scorer.logprobs(messages, replies), scorer.logprobs_naive(messages, replies)
    assert [n for _, n in fast] == [n for _, n in naive]
    assert all(abs(a - b) < 1e-4 for (a, _), (b, _) in zip(fast, naive)), list(zip(fast, naive))


def test_training_on_a_span_makes_the_scorer_quote_it_with_a_peft_adapter(tiny):
    tok, model = _load(tiny)
    scorer = SpanScorer(_lora(model), tok, batch_size=4)
    spans = candidate_spans(PASSAGES)
    target = next(s for s in spans if s.text.startswith("The Licensee shall not assign"))
    messages = quote_messages(QUESTION, [p["text"] for p in PASSAGES])

    def rank_of_target() -> int:
        scores = [lp / n for lp, n in scorer.logprobs(messages, [s.text for s in spans])]
        return sorted(scores, reverse=True).index(scores[spans.index(target)])

    before = rank_of_target()
    _train(scorer, target.text)
    assert rank_of_target() == 0 and before > 0
    ans = scorer.answer(QUESTION, PASSAGES, margin=float("-inf"))
    assert ans.has_clause and (ans.text, ans.start, ans.end) == (target.text, target.start, target.end)
    assert ans.text == (PASSAGES[1]["text"])[target.start - 400 : target.end - 400]  # verbatim, with contract offsets
    # The adapter's pass and the naive pass agree too (peft forwards the shared cache).
    fast, naive = (
        scorer.logprobs(messages, [target.text, NO_CLAUSE]),
        scorer.logprobs_naive(messages, [target.text, NO_CLAUSE]),
    )
    assert all(abs(a - b) < 1e-4 for (a, _), (b, _) in zip(fast, naive))


def test_no_clause_wins_when_the_model_learned_it_and_margin_gates_it(tiny):
    tok, model = _load(tiny)
    scorer = SpanScorer(_lora(model), tok, batch_size=8)
    _train(scorer, NO_CLAUSE)
    ans = scorer.answer(QUESTION, PASSAGES)
    assert not ans.has_clause and ans.prediction == "" and ans.start is None
    assert ans.score < 0 and ans.method_detail["best_span"] in PASSAGES[0]["text"] + PASSAGES[1]["text"]
    # With the margin below the measured gap, the same scores yield the best span instead.
    forced = scorer.answer(QUESTION, PASSAGES, margin=ans.score - 1.0)
    assert forced.has_clause and forced.text == ans.method_detail["best_span"]
    assert not scorer.answer(QUESTION, []).has_clause  # nothing retrieved: nothing to quote


def test_reply_prefixes_are_the_naive_first_tokens_and_lead_scores_them(tiny):
    tok, model = _load(tiny)
    scorer = SpanScorer(model, tok, batch_size=3)
    spans = candidate_spans(PASSAGES)
    replies = [s.text for s in spans] + [NO_CLAUSE]
    messages = quote_messages(QUESTION, [p["text"] for p in PASSAGES])
    scored = scorer.reply_logprobs(messages, replies)
    prompt = scorer.prompt_ids(messages)
    with torch.inference_mode():
        for text, r in zip(replies[:3] + replies[-1:], scored[:3] + scored[-1:]):
            ids = scorer.reply_ids(text)
            lp = model(input_ids=torch.tensor([prompt + ids])).logits[0].float().log_softmax(-1)
            naive = [float(lp[len(prompt) - 1 + i, ids[i]]) for i in range(len(ids))]
            assert len(r.prefix) == r.n == len(ids)  # prefix[0] = 0, ..., prefix[n-1] = all but the end token
            assert all(abs(r.prefix[i] - sum(naive[:i])) < 1e-4 for i in range(r.n))
            assert abs(r.total - sum(naive)) < 1e-4
            assert r.lead(10_000) == r.prefix[-1]
    whole = SpanScorer(model, tok).values(scored)
    first = SpanScorer(model, tok, lead=1).values(scored)
    assert whole == [r.total / r.n for r in scored]
    # lead 1: the first token decides; replies that start alike differ only by the tie-break (their means).
    for a, b in zip(scored, first):
        assert abs(b - a.prefix[1]) <= 1e-3 * abs(a.total / a.n) + 1e-9
    same_start = [i for i in range(len(spans)) if scored[i].prefix[1] == scored[0].prefix[1]]
    assert len(same_start) >= 2  # windows of one passage share their first sentence
    by_first = sorted(same_start, key=lambda i: first[i])
    assert by_first == sorted(same_start, key=lambda i: whole[i])


def test_lead_scoring_picks_the_window_a_model_learned_to_start(tiny):
    tok, model = _load(tiny)
    scorer = SpanScorer(_lora(model), tok, batch_size=4, lead=2)
    spans = candidate_spans(PASSAGES)
    target = next(s for s in spans if s.text.startswith("The Licensee shall not assign"))
    _train(scorer, target.text)
    ans = scorer.answer(QUESTION, PASSAGES, margin=float("-inf"))
    assert ans.has_clause and ans.text.startswith("The Licensee shall not assign")
    assert ans.method_detail["lead"] == 2

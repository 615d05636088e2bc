"""LocalLM on the tiny random model: greedy batches, the content-keyed disk cache, and the DSPy contract.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_local_lm.py
"""

import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dspy  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from resources.local_lm import LocalLM  # noqa: E402
from resources.model_folders import adapter_hash, model_hash  # noqa: E402
from selfinstruct.core.base_model import make_tiny_model  # noqa: E402

QUESTIONS = ["Who pays the fee?", "What is the governing law of this agreement, in one word?", "Term?"]


def chat(question: str) -> list[dict]:
    return [{"role": "system", "content": "Answer from the contract."}, {"role": "user", "content": question}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


def make_adapter(tiny, out, seed):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    # init_lora_weights=False: B is random too, so the adapter really changes the outputs.
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny),
        LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def adapters(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return make_adapter(tiny, root / "a", seed=1), make_adapter(tiny, root / "b", seed=2)


@pytest.fixture
def counted(monkeypatch):
    """Rows LocalLM._generate was asked for, one list per call."""
    calls = []
    real = LocalLM._generate

    def spy(self, batch, max_tokens):
        calls.append(len(batch))
        return real(self, batch, max_tokens)

    monkeypatch.setattr(LocalLM, "_generate", spy)
    return calls


def test_adapter_hash_follows_content_not_location(adapters, tmp_path):
    a, b = adapters
    copy = shutil.copytree(a, tmp_path / "copy")
    assert adapter_hash(a) == adapter_hash(copy) != adapter_hash(b)
    (copy / "README.md").write_text("notes do not change the weights")
    assert adapter_hash(copy) == adapter_hash(a)
    with open(copy / "adapter_model.safetensors", "r+b") as fh:
        fh.seek(-1, os.SEEK_END)
        last = fh.read(1)
        fh.seek(-1, os.SEEK_END)
        fh.write(bytes([last[0] ^ 1]))
    assert adapter_hash(copy) != adapter_hash(a)
    with pytest.raises(FileNotFoundError):
        adapter_hash(tmp_path)


def test_model_hash_differs_by_seed(tiny, tmp_path):
    assert model_hash(tiny) == model_hash(make_tiny_model(tmp_path / "same", seed=0))
    assert model_hash(tiny) != model_hash(make_tiny_model(tmp_path / "other", seed=1))


def test_greedy_batch_matches_single_calls_and_is_loaded_once(tiny, counted):
    lm = LocalLM(tiny, max_tokens=10, batch_size=2)
    batched = lm.generate_batch([chat(q) for q in QUESTIONS])
    assert counted == [2, 1]  # three rows in batches of two
    singles = [lm.generate_batch([chat(q)])[0] for q in QUESTIONS]
    assert batched == singles  # left padding does not change a row's answer
    assert all(isinstance(t, str) and t for t in batched) and len(set(batched)) > 1
    assert lm.load()[0].padding_side == "left"
    assert lm.load()[1] is lm.copy(max_tokens=4).load()[1]
    with pytest.raises(ValueError, match="new LocalLM"):
        lm.copy(adapter_path="elsewhere")


def test_max_tokens_bounds_the_answer(tiny):
    lm = LocalLM(tiny, max_tokens=3)
    [short] = lm.complete([chat(QUESTIONS[0])])
    [longer] = lm.complete([chat(QUESTIONS[0])], max_tokens=8)
    assert short["completion_tokens"] <= 3 < longer["completion_tokens"] <= 8
    assert short["finish_reason"] == "length" and not short["cached"]


def test_cache_hit_costs_no_generation_and_survives_the_instance(tiny, tmp_path, counted):
    lm = LocalLM(tiny, cache_dir=tmp_path / "cache", max_tokens=8)
    first = lm.generate_batch([chat(q) for q in QUESTIONS[:2]])
    assert counted == [2]
    assert lm.generate_batch([chat(q) for q in QUESTIONS[:2]]) == first
    assert counted == [2]
    again = LocalLM(tiny, cache_dir=tmp_path / "cache", max_tokens=8)
    assert again(messages=chat(QUESTIONS[0])) == [first[0]]
    assert counted == [2]
    assert again.history[-1]["usage"]["total_tokens"] == 0  # a hit spends nothing
    # One new conversation among cached ones: only it reaches the model.
    mixed = lm.generate_batch([chat(QUESTIONS[1]), chat(QUESTIONS[2]), chat(QUESTIONS[0])])
    assert counted == [2, 1] and mixed[0] == first[1] and mixed[2] == first[0]
    lm.generate_batch([chat(QUESTIONS[0])], max_tokens=4)  # other generation params: a miss
    assert counted == [2, 1, 1]


def test_a_different_adapter_misses_the_cache(tiny, adapters, tmp_path, counted):
    a, b = adapters
    cache = tmp_path / "cache"
    plain = LocalLM(tiny, cache_dir=cache, max_tokens=8)
    with_a = LocalLM(tiny, adapter_path=a, cache_dir=cache, max_tokens=8)
    with_b = LocalLM(tiny, adapter_path=b, cache_dir=cache, max_tokens=8)
    keys = {lm.cache_key(chat(QUESTIONS[0]), 8) for lm in (plain, with_a, with_b)}
    assert len(keys) == 3
    answers = [lm.generate_batch([chat(QUESTIONS[0])])[0] for lm in (plain, with_a, with_b, with_a)]
    assert counted == [1, 1, 1]  # the repeat of adapter a was a hit
    assert answers[1] == answers[3] and len(set(answers[:3])) > 1  # the adapters are really applied


def test_bfloat16_runs_in_bf16_and_is_keyed_apart(tiny, tmp_path, counted):
    full = LocalLM(tiny, cache_dir=tmp_path / "cache", max_tokens=8)
    half = LocalLM(tiny, cache_dir=tmp_path / "cache", max_tokens=8, precision="bfloat16")
    assert full.cache_key(chat(QUESTIONS[0]), 8) != half.cache_key(chat(QUESTIONS[0]), 8)
    assert isinstance(half.generate_batch([chat(QUESTIONS[0])])[0], str) and counted == [1]
    assert str(half.load()[1].dtype) == "torch.bfloat16"
    with pytest.raises(ValueError, match="precision must be one of"):
        LocalLM(tiny, precision="half")


def test_raw_call_returns_strings_and_records_history(tiny):
    lm = LocalLM(tiny, max_tokens=6)
    outputs = lm(messages=chat(QUESTIONS[0]))
    assert isinstance(outputs, list) and len(outputs) == 1 and isinstance(outputs[0], str)
    assert lm("Who pays the fee?", n=2) == [lm("Who pays the fee?")[0]] * 2
    entry = lm.history[0]
    assert entry["model"] == "local/model" and entry["outputs"] == outputs
    assert 0 < entry["usage"]["completion_tokens"] <= 6 and entry["usage"]["prompt_tokens"] > 10


def test_predict_inside_dspy_context_goes_through_the_lm(tiny, tmp_path):
    lm = LocalLM(tiny, cache_dir=tmp_path / "cache", max_tokens=12)
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
        try:
            answer = dspy.Predict("question -> answer")(question="What law governs the contract?").answer
        except dspy.utils.exceptions.AdapterParseError:
            answer = None  # a random 2-layer model does not write [[ ## answer ## ]] markers
    entry = lm.history[-1]
    assert any("What law governs the contract?" in m["content"] for m in entry["messages"])
    assert entry["outputs"] == lm.generate_batch([entry["messages"]])
    assert answer is None or isinstance(answer, str)


def test_state_round_trips_and_rejects_bad_settings(tiny, adapters, tmp_path):
    lm = LocalLM(tiny, adapter_path=adapters[0], cache_dir=tmp_path / "c", max_tokens=7, seed=3, max_batch_tokens=999)
    back = dspy.BaseLM.load_state(lm.dump_state(), allow_custom_lm_class=True)
    assert back.max_batch_tokens == 999
    assert isinstance(back, LocalLM) and back.model == lm.model == "local/model+a"
    assert (back.model_dir, back.adapter_path, back.cache_dir, back.seed) == (tiny, adapters[0], tmp_path / "c", 3)
    assert back.kwargs["max_tokens"] == 7
    with pytest.raises(ValueError):
        LocalLM(tiny, max_tokens=0)


def test_concurrent_calls_are_gathered_into_one_batch(tiny, counted):
    import threading

    lm = LocalLM(tiny, max_tokens=10, batch_size=8)
    lm.gather_s = 0.3  # generous, so that all threads join even on a loaded CI machine
    expected = [lm.generate_batch([chat(q)])[0] for q in QUESTIONS]
    counted.clear()
    barrier, out = threading.Barrier(len(QUESTIONS)), {}

    def ask(i, q):
        barrier.wait()
        out[i] = lm(messages=chat(q + " (again)"))[0]

    threads = [threading.Thread(target=ask, args=(i, q)) for i, q in enumerate(QUESTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counted == [len(QUESTIONS)]  # one generate for all concurrent callers
    assert [out[i] for i in range(len(QUESTIONS))] == [lm.generate_batch([chat(q + " (again)")])[0] for q in QUESTIONS]
    assert expected  # the warm-up answered too


def test_a_failed_batch_reaches_every_waiting_caller(tiny, monkeypatch):
    from selfinstruct.core.parallel import thread_map

    lm = LocalLM(tiny, max_tokens=4)

    def boom(self, batch, max_tokens):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(LocalLM, "_generate", boom)
    with pytest.raises(RuntimeError, match="out of memory"):
        thread_map(lambda q: lm(messages=chat(q)), QUESTIONS, threads=3)
    assert lm._rt.pending == [] and lm._rt.draining is False


def test_sampling_is_seeded_and_keyed_apart_from_greedy(tiny, tmp_path):
    greedy = LocalLM(tiny, max_tokens=8, cache_dir=tmp_path / "c")
    s1 = LocalLM(tiny, max_tokens=8, cache_dir=tmp_path / "c", sample_temperature=1.0, seed=1)
    s1_again = LocalLM(tiny, max_tokens=8, sample_temperature=1.0, seed=1)
    s2 = LocalLM(tiny, max_tokens=8, cache_dir=tmp_path / "c", sample_temperature=1.0, seed=2)
    convs = [chat(q) for q in QUESTIONS]
    keys = {lm.cache_key(convs[0], 8) for lm in (greedy, s1, s2)}
    assert len(keys) == 3  # a sampled answer never stands in for the greedy one, nor for another seed's
    a, b = s1.generate_batch(convs), s1_again.generate_batch(convs)
    assert a == b  # same seed, same batch: same samples, cached or not
    assert a != s2.generate_batch(convs) and a != greedy.generate_batch(convs)


def test_instances_of_the_same_weights_share_one_loaded_model(tiny, adapters):
    a = LocalLM(tiny, max_tokens=4)
    b = LocalLM(tiny, max_tokens=9)  # another role: same folder and precision, other settings
    with_adapter = LocalLM(tiny, adapter_path=adapters[0], max_tokens=4)
    assert a.load()[1] is b.load()[1]
    assert with_adapter.load()[1] is not a.load()[1]


def test_batches_respect_rows_and_the_padded_token_budget():
    from resources.lm_batches import plan_batches

    as_lists = lambda bs: [list(b) for b in bs]  # noqa: E731
    assert as_lists(plan_batches([10] * 5, 2, None)) == [[0, 1], [2, 3], [4]]
    # 3 rows x (longest 30 + 10 new tokens) = 120 > 100: the third row starts a new batch
    assert as_lists(plan_batches([10, 30, 20, 5], 8, 100, new_tokens=10)) == [[0, 1], [2, 3]]
    assert as_lists(plan_batches([500, 10, 10], 8, 100)) == [[0], [1, 2]]  # over the budget alone: a batch of one
    assert plan_batches([], 8, 100) == []
    for lengths in ([7, 90, 3, 40, 40, 1, 64], [100] * 9):
        batches = plan_batches(lengths, 3, 128, new_tokens=4)
        assert [i for b in batches for i in b] == list(range(len(lengths)))  # every row once, in order
        assert all(len(b) <= 3 and (len(b) == 1 or len(b) * (max(lengths[i] for i in b) + 4) <= 128) for b in batches)


def test_a_token_budget_splits_long_prompts_without_changing_answers(tiny, counted):
    long_chat = [chat(q + " Section 1. " * 40) for q in QUESTIONS]
    unlimited = LocalLM(tiny, max_tokens=6, batch_size=8, max_batch_tokens=None).generate_batch(long_chat)
    assert counted == [3]
    counted.clear()
    budgeted = LocalLM(tiny, max_tokens=6, batch_size=8, max_batch_tokens=300).generate_batch(long_chat)
    assert counted == [1, 1, 1]  # each prompt is ~140 tokens: two would pass 300 with their new tokens
    assert budgeted == unlimited
    with pytest.raises(ValueError, match="max_batch_tokens"):
        LocalLM(tiny, max_batch_tokens=0)


def test_the_heap_is_trimmed_after_every_generated_batch(tiny, monkeypatch):
    import resources.local_generation as local_generation

    trims = []
    monkeypatch.setattr(local_generation, "trim_heap", lambda: trims.append(1) or True)
    LocalLM(tiny, max_tokens=4, batch_size=2).generate_batch([chat(q + " trimmed?") for q in QUESTIONS])
    assert len(trims) == 2  # three prompts in batches of two


def test_an_adapter_is_merged_into_the_weights_and_computes_what_peft_computes(tiny, adapters):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tok, merged, _ = LocalLM(tiny, adapter_path=adapters[0], max_tokens=4).load()
    assert not isinstance(merged, PeftModel) and not any("lora" in n for n, _ in merged.named_parameters())
    apart = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny), adapters[0]).eval()
    plain = AutoModelForCausalLM.from_pretrained(tiny).eval()
    ids = tok(QUESTIONS[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        got, want, without = (m(input_ids=ids).logits for m in (merged, apart, plain))
    assert torch.allclose(got, want, atol=1e-4)  # float32: merging changes nothing but rounding
    assert not torch.allclose(got, without, atol=1e-2)  # and the adapter is really in the weights

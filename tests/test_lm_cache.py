"""CachedLM: repeated requests to a remote backend are answered from disk; anything that changes the request misses."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import boto3  # noqa: E402
import dspy  # noqa: E402
import pytest  # noqa: E402
from botocore.stub import Stubber  # noqa: E402

from resources.bedrock_lm import BedrockConverseLM  # noqa: E402
from resources.llm import LLMResource, LMSpec  # noqa: E402
from resources.lm_cache import CachedLM  # noqa: E402

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def reply(text: str) -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 11, "outputTokens": 3, "totalTokens": 14},
        "metrics": {"latencyMs": 5},
    }


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-not-real")
    c = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(c) as stub:
        c.stub = stub
        yield c
        stub.assert_no_pending_responses()


def cached(client, tmp_path, **kw) -> CachedLM:
    return CachedLM(
        BedrockConverseLM(MODEL, region="us-east-1", client=client, max_tokens=kw.pop("max_tokens", 32)),
        backend="bedrock",
        cache_dir=tmp_path / "lm",
        **kw,
    )


def test_second_identical_call_is_served_from_disk(client, tmp_path):
    client.stub.add_response("converse", reply("Delaware"), None)  # exactly one request may reach Bedrock
    lm = cached(client, tmp_path)
    assert lm("Governing law?") == ["Delaware"]
    again = cached(client, tmp_path)  # a new process would build a new instance
    assert again("Governing law?") == ["Delaware"]
    assert (lm.misses, again.misses) == (1, 0)
    assert again.history[-1]["usage"]["total_tokens"] == 0  # nothing spent on a hit


def test_changed_messages_params_or_adapter_miss(client, tmp_path):
    for text in ("a", "b", "c", "d"):
        client.stub.add_response("converse", reply(text), None)
    assert cached(client, tmp_path)("q1") == ["a"]
    assert cached(client, tmp_path)("q2") == ["b"]
    assert cached(client, tmp_path, max_tokens=8)("q1") == ["c"]
    assert cached(client, tmp_path, adapter="sha-of-adapter")("q1") == ["d"]
    assert cached(client, tmp_path)("q1") == ["a"]


def test_predict_through_the_cache(client, tmp_path):
    client.stub.add_response("converse", reply("[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"), None)
    for _ in range(2):
        with dspy.context(lm=cached(client, tmp_path)):
            assert dspy.Predict("question -> answer")(question="Capital of France?").answer == "Paris"


def test_cache_stores_no_credentials(client, tmp_path):
    client.stub.add_response("converse", reply("ok"), None)
    cached(client, tmp_path)("hello")
    blob = b"".join(p.read_bytes() for p in (tmp_path / "lm").rglob("*") if p.is_file())
    assert b"test-secret-not-real" not in blob and b"AKIDTESTTESTTEST" not in blob


def test_resource_wraps_remote_backends_unless_disabled(tmp_path, monkeypatch):
    monkeypatch.setattr("resources.llm.check_http", lambda *a, **kw: None)  # no server: only the wrapping is tested
    on = LLMResource(
        home=str(tmp_path), generator=LMSpec(backend="openai", model="m", base_url="http://127.0.0.1:9/v1")
    )
    off = LLMResource(
        home=str(tmp_path), generator=LMSpec(backend="openai", model="m", base_url="http://127.0.0.1:9/v1", cache=False)
    )
    assert isinstance(on.lm("generator"), CachedLM) and on.lm("generator").cache_dir == tmp_path / "cache" / "lm"
    assert isinstance(off.lm("generator"), dspy.LM)

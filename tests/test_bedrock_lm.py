"""BedrockConverseLM against a real bedrock-runtime client whose wire is replaced by botocore's Stubber."""

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import boto3  # noqa: E402
import dspy  # noqa: E402
import pytest  # noqa: E402
from botocore.exceptions import ReadTimeoutError  # noqa: E402
from botocore.stub import ANY, Stubber  # noqa: E402

from resources.bedrock_lm import BedrockConverseLM  # noqa: E402
from resources.lm_errors import LMCallError  # noqa: E402

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def reply(text: str, stop: str = "end_turn") -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": {"inputTokens": 11, "outputTokens": 3, "totalTokens": 14},
        "metrics": {"latencyMs": 5},
    }


@pytest.fixture
def client(monkeypatch):
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-not-real")
    c = boto3.client("bedrock-runtime", region_name="us-east-1")
    sent = []
    # Stubber checks params on this same event; recording here shows what Converse would receive.
    c.meta.events.register(
        "before-parameter-build.bedrock-runtime.Converse",
        lambda params, **_: sent.append(params),
        unique_id="record-converse",
    )
    c.sent = sent
    with Stubber(c) as stub:
        c.stub = stub
        yield c
        stub.assert_no_pending_responses()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def lm(client, sleeps):
    return BedrockConverseLM(
        MODEL, region="us-east-1", client=client, sleep=sleeps.append, max_attempts=4, temperature=0.2, max_tokens=64
    )


def test_messages_map_to_converse_request_and_text_comes_back(lm, client):
    expected = {
        "modelId": MODEL,
        "system": [{"text": "You are terse."}],
        "messages": [
            {"role": "user", "content": [{"text": "Capital of France?"}]},
            {"role": "assistant", "content": [{"text": "Paris."}]},
            {"role": "user", "content": [{"text": "And of Italy?"}, {"text": "One word."}]},
        ],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.2, "topP": 0.9},
    }
    client.stub.add_response("converse", reply("Rome"), expected)
    out = lm(
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Italy?"},
            {"role": "user", "content": [{"type": "text", "text": "One word."}]},
        ],
        top_p=0.9,
    )
    assert out == ["Rome"]
    assert lm.history[-1]["usage"]["total_tokens"] == 14


def test_predict_through_chat_adapter(lm, client):
    client.stub.add_response(
        "converse",
        reply("[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"),
        {"modelId": MODEL, "system": ANY, "messages": ANY, "inferenceConfig": ANY},
    )
    with dspy.context(lm=lm):
        pred = dspy.Predict("question -> answer")(question="What is the capital of France?")
    assert pred.answer == "Paris"
    (params,) = client.sent
    assert "`answer`" in params["system"][0]["text"]
    assert [m["role"] for m in params["messages"]] == ["user"]
    assert "What is the capital of France?" in params["messages"][0]["content"][0]["text"]


def test_repeated_identical_calls_all_reach_bedrock(lm, client):
    for text in ("first", "second"):
        client.stub.add_response("converse", reply(text), None)
    assert lm("same prompt") == ["first"]
    assert lm("same prompt") == ["second"]


def test_async_call_uses_the_same_path(lm, client):
    client.stub.add_response("converse", reply("async ok"), None)
    assert asyncio.run(lm.acall("hi")) == ["async ok"]


def test_throttling_twice_then_success(lm, client, sleeps):
    for _ in range(2):
        client.stub.add_client_error(
            "converse", service_error_code="ThrottlingException", service_message="Rate exceeded", http_status_code=429
        )
    client.stub.add_response("converse", reply("ok"), None)
    assert lm("hi") == ["ok"]
    assert len(sleeps) == 2
    assert 0 < sleeps[0] < sleeps[1]


def test_read_timeout_is_retried(sleeps):
    class TimesOutOnce:
        calls = 0

        def converse(self, **request):
            self.calls += 1
            if self.calls == 1:
                raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")
            return reply("late but fine")

    fake = TimesOutOnce()
    lm = BedrockConverseLM(MODEL, region="us-east-1", client=fake, sleep=sleeps.append)
    assert lm("hi") == ["late but fine"]
    assert fake.calls == 2 and len(sleeps) == 1


def test_throttling_forever_gives_up_after_max_attempts(lm, client, sleeps):
    for code in ("ThrottlingException", "ServiceUnavailableException", "ModelTimeoutException", "ThrottlingException"):
        client.stub.add_client_error("converse", service_error_code=code, service_message="busy", http_status_code=429)
    with pytest.raises(LMCallError) as info:
        lm("hi")
    err = info.value
    assert err.attempts == 4 and err.retryable and len(sleeps) == 3
    assert MODEL in str(err) and "4 attempts" in str(err) and "ThrottlingException" in str(err)
    assert "test-secret-not-real" not in str(err) and "AKIDTESTTESTTEST" not in str(err)


@pytest.mark.parametrize("code", ["ValidationException", "AccessDeniedException"])
def test_refusals_fail_at_once(lm, client, sleeps, code):
    client.stub.add_client_error("converse", service_error_code=code, service_message="nope", http_status_code=400)
    with pytest.raises(LMCallError, match=code) as info:
        lm("hi")
    assert info.value.attempts == 1 and not info.value.retryable and sleeps == []
    assert "not retryable" in str(info.value) and MODEL in str(info.value)


def test_repr_names_model_not_credentials(lm):
    assert repr(lm) == f"BedrockConverseLM(model={MODEL!r}, region='us-east-1', max_attempts=4)"

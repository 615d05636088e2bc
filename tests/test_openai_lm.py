"""openai_compatible_lm against a tiny OpenAI-compatible HTTP server on 127.0.0.1."""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

import dspy  # noqa: E402
import pytest  # noqa: E402
from dspy.utils.exceptions import LMError  # noqa: E402

from resources.openai_lm import PLACEHOLDER_KEY, openai_compatible_lm  # noqa: E402

KEY = "sk-test-0123456789abcdef-secret"
MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
ANSWER = "[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"


class FakeOpenAI(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        if self.server.status != 200:
            return self._send(
                self.server.status,
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
        self._send(
            200,
            {
                "id": f"chatcmpl-{len(self.server.requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": self.server.reply},
                    }
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
            },
        )

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server(monkeypatch):
    # An ambient gateway or key must not redirect or authenticate these calls.
    for var in ("OPENAI_API_BASE", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    srv.requests, srv.reply, srv.status = [], ANSWER, 200
    srv.base_url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


# "auto" is DSPy's native engine; "litellm" is the fallback some settings select.
@pytest.mark.parametrize("engine", ["auto", "litellm"])
def test_predict_goes_through_the_endpoint_with_model_and_bearer_key(server, engine):
    lm = openai_compatible_lm(MODEL, server.base_url, KEY, num_retries=0, engine=engine)
    with dspy.context(lm=lm):
        pred = dspy.Predict("question -> answer")(question="What is the capital of France?")
    assert pred.answer == "Paris"
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["model"] == MODEL
    assert req["auth"] == f"Bearer {KEY}"
    assert any("What is the capital of France?" in str(m["content"]) for m in req["body"]["messages"])


@pytest.mark.parametrize("engine", ["auto", "litellm"])
def test_key_stays_out_of_repr_state_history_and_logs(server, engine, caplog):
    caplog.set_level(logging.DEBUG)
    lm = openai_compatible_lm(MODEL, server.base_url, KEY, num_retries=0, engine=engine)
    with dspy.context(lm=lm):
        dspy.Predict("question -> answer")(question="What is the capital of France?")
    if engine == "litellm":  # litellm logs the whole request at DEBUG: the check must have seen it
        assert "litellm.completion(" in caplog.text
    assert KEY not in caplog.text
    assert server.requests and server.requests[-1]["auth"] == f"Bearer {KEY}"
    assert KEY not in repr(lm) and KEY not in str(lm)
    assert KEY not in repr(lm.dump_state())
    assert lm.history, "the call should have been recorded"
    assert KEY not in repr(lm.history)
    out = io.StringIO()
    lm.inspect_history(n=5, file=out)
    assert "Paris" in out.getvalue() and KEY not in out.getvalue()


@pytest.mark.parametrize("engine", ["auto", "litellm"])
def test_served_name_starting_with_openai_reaches_the_wire_intact(server, engine):
    lm = openai_compatible_lm("openai/gpt-oss-20b", server.base_url, KEY, num_retries=0, engine=engine)
    lm("hello")
    assert server.requests[-1]["body"]["model"] == "openai/gpt-oss-20b"


def test_repeated_calls_are_not_served_from_cache(server):
    lm = openai_compatible_lm(MODEL, server.base_url, KEY, num_retries=0)
    assert lm("same prompt") == [ANSWER]
    assert lm("same prompt") == [ANSWER]
    assert len(server.requests) == 2


@pytest.mark.parametrize("no_key", [None, ""])
def test_local_server_without_key_gets_placeholder_not_ambient_openai_key(server, monkeypatch, no_key):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ambient-real-openai-key")
    lm = openai_compatible_lm(MODEL, server.base_url, no_key, num_retries=0)
    lm("hello")
    assert server.requests[-1]["auth"] == f"Bearer {PLACEHOLDER_KEY}"


def test_rejected_key_raises_without_echoing_it(server):
    server.status = 401
    lm = openai_compatible_lm(MODEL, server.base_url, KEY, num_retries=0)
    with pytest.raises(LMError) as info:
        lm("hello")
    assert len(server.requests) == 1
    assert KEY not in str(info.value) and KEY not in repr(info.value)


def test_resource_serves_repeated_predictions_from_its_disk_cache(server, tmp_path):
    from resources.llm import LLMResource, LMSpec

    def ask(question: str) -> str:
        llm = LLMResource(home=str(tmp_path), generator=LMSpec(backend="openai", model=MODEL, base_url=server.base_url))
        with dspy.context(**llm.context("generator")):
            return dspy.Predict("question -> answer")(question=question).answer

    assert ask("What is the capital of France?") == ask("What is the capital of France?") == "Paris"
    assert len(server.requests) == 1  # the second resource (a new run) read the answer from disk
    ask("And of Italy?")
    assert len(server.requests) == 2

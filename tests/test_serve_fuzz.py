"""`selfinstruct serve`'s HTTP routes under random request bodies: a JSON 2xx/4xx with a message, never a 500.

OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_serve_fuzz.py

No model is loaded: the app is `create_app` over a real `Service` whose scorer quotes one fixed clause and whose
retriever returns slices of the contract, driven in-process by FastAPI's TestClient. Hypothesis draws bodies near the
valid ones (each field either good or any JSON value, extra keys), any JSON value, and raw bytes. After each request
the query log is flushed: an answered request adds exactly one inbox line, a refused one none; a refused rating
writes no feedback row, an accepted one the rows it reports, with correction offsets inside the contract.
"""

import json
import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from selfinstruct.answering import NO_CLAUSE, Answer
from selfinstruct.core.inbox import Inbox
from selfinstruct.serving.app import create_app
from selfinstruct.serving.serve_settings import ServeSettings
from selfinstruct.serving.service import Service

TEXT = "This Agreement is governed by the laws of New York. Either party may terminate it on 30 days notice."
QUOTE = "governed by the laws of New York"
CONTRACTS = {"c-1": TEXT, "c-2": "Nothing in this contract names a governing law."}
RID = "<request_id>"  # replaced by a request id the server answered
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class QuoteScorer:
    """Quotes QUOTE when the passages hold it, else "No such clause." (SpanScorer's face, no model)."""

    def answer(self, question, passages, margin=0.0, spans=None):
        if any(QUOTE in (p if isinstance(p, str) else p["text"]) for p in passages):
            return Answer(True, QUOTE, None, None, 1.0)
        return Answer.none(0.0)


def retrieve(question: str, contract_id: str, k: int) -> list[str]:
    text = CONTRACTS[contract_id]
    return [text[i : i + 60] for i in range(0, len(text), 50)][:k]


class World:
    def __init__(self, root):
        self.queries, self.feedback = Inbox(str(root / "queries")), Inbox(str(root / "feedback"))
        self.rid = RID
        # flush_s is long: the test flushes the query log itself after each request, to count its lines
        settings_ = ServeSettings(flush_s=3600, poll_s=3600)
        self.service = Service(retrieve, CONTRACTS, lambda _: QuoteScorer(), lambda: None, self.queries, settings_)
        self.client = TestClient(create_app(self.service, self.feedback, self.queries), raise_server_exceptions=False)

    def post(self, path: str, body, headers: dict | None = None):
        if isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body, allow_nan=True).replace(json.dumps(RID), json.dumps(self.rid)).encode()
        return self.client.post(path, content=data, headers={"content-type": "application/json", **(headers or {})})

    def feedback_rows(self) -> list[dict]:
        return [json.loads(line) for f in self.feedback.files() for line in self.feedback.read(f.name).splitlines()]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("serve_fuzz"))
    with w.client:  # the lifespan starts and stops the service
        w.rid = w.post("/v1/answers", {"contract_id": "c-1", "question": "Which law governs?"}).json()["request_id"]
        w.service.log.flush()
        yield w


def check_reply(response, stream_ok: bool = False) -> dict | None:
    """A 2xx/4xx whose body is JSON (an error with a message when 4xx), or an event stream when asked for."""
    assert response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
    if stream_ok and response.headers["content-type"].startswith("text/event-stream"):
        assert response.status_code == 200 and response.text.endswith("data: [DONE]\n\n")
        return None
    body = response.json()
    assert isinstance(body, dict)
    if response.status_code >= 400:
        assert isinstance(body["error"]["message"], str) and body["error"]["message"].strip()
    return body


# ------------------------------------------------------------------------------------------------ strategies

LONE = st.sampled_from(["\ud800", "a\udfffb", "\udc80x"])  # JSON "\ud800": a str no UTF-8 file can hold
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.just(10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    LONE,
)
ANY = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
QUESTION = st.sampled_from(["Which law governs?", "Who may terminate?", " ", "x" * 4001]) | st.text(max_size=30) | LONE


def near(good):
    """A good value most of the time, else any JSON value."""
    return st.one_of(good, good, good, ANY)


def body_of(fields: dict) -> st.SearchStrategy:
    """Dicts with all or some of `fields` (each good or junk), maybe with an unknown key; any JSON value; raw bytes."""
    every = st.fixed_dictionaries({k: near(v) for k, v in fields.items()})
    some = st.fixed_dictionaries({}, optional={k: near(v) for k, v in fields.items()})
    extra = st.tuples(some, st.dictionaries(st.text(min_size=1, max_size=8), ANY, max_size=2))
    return st.one_of(every, every, every, some, extra.map(lambda p: {**p[1], **p[0]}), ANY, st.binary(max_size=80))


ANSWER = body_of(
    {
        "contract_id": st.sampled_from(["c-1", "c-2", "c-9", ""]),
        "question": QUESTION,
        "model": st.sampled_from([None, "selfinstruct", "base", "served", "other"]),
    }
)
PART = st.fixed_dictionaries({"type": near(st.just("text")), "text": near(QUESTION)})
MESSAGE = st.fixed_dictionaries(
    {
        "role": near(st.sampled_from(["user", "system", "assistant"])),
        "content": near(QUESTION | st.lists(PART, max_size=3)),
    }
)
CHAT = body_of(
    {
        "messages": st.lists(MESSAGE, max_size=3),
        "contract_id": st.sampled_from(["c-1", "c-2", "c-9"]),
        "metadata": st.fixed_dictionaries({"contract_id": near(st.sampled_from(["c-1", "c-9"]))}),
        "model": st.sampled_from([None, "selfinstruct", "base", "gpt-4o"]),
        "stream": st.booleans(),
    }
)
AT, TAIL = TEXT.find("New York"), len(TEXT) - len("notice.")
# any offset, and the ones where Python's slice of the contract is a quote though they lie outside it
OFFSET = st.integers(-120, 120) | st.sampled_from([AT, AT + 8, AT - len(TEXT), AT + 8 - len(TEXT), TAIL, 10**30])
FEEDBACK = body_of(
    {
        "request_id": st.sampled_from([RID, "0123456789abcdef"]),
        "score": st.floats(0, 1) | st.sampled_from([0, 1]),
        "corrected_quote": st.sampled_from([NO_CLAUSE, QUOTE, "New York", "notice.", " laws ", "not in it"]) | LONE,
        "start": OFFSET,
        "end": OFFSET,
        "reviewer": st.text(max_size=12) | LONE,
    }
)
RATE = body_of(
    {
        "request_id": st.sampled_from([RID, "0123456789abcdef"]),
        "action": st.sampled_from(["right", "wrong", "no_clause", "correct", "rate", "delete"]),
        "quote": st.sampled_from([NO_CLAUSE, QUOTE, "New York", "notice.", "not in it"]) | LONE,
        "start": OFFSET,
        "end": OFFSET,
    }
)
REVIEWER = st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)  # headers: latin-1


def correction_offsets_are_the_quote(rows: list[dict]) -> None:
    for row in rows:
        m = re.search(r"correction at (-?\d+)\.\.(-?\d+) of", row["comment"])
        if m:
            start, end = int(m.group(1)), int(m.group(2))
            assert 0 <= start < end <= len(TEXT) and TEXT[start:end] == row["answer"], row


# ------------------------------------------------------------------------------------------------ the properties


@FUZZ
@given(body=ANSWER)
@example(body={"contract_id": "c-1", "question": "Which law\ud800 governs?"})  # found: a 500, the log blocked
def test_answers_reply_in_json_and_log_only_what_they_answer(world, body):
    reply = check_reply(world.post("/v1/answers", body))
    logged = world.service.log.flush()
    if "error" in reply:
        assert logged == 0
    else:
        assert logged == 1 and reply["contract_id"] in CONTRACTS and reply["answer"] in (QUOTE, NO_CLAUSE)


@FUZZ
@given(body=CHAT)
@example(body={"contract_id": "c-1", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]})
def test_chat_completions_reply_in_json_and_log_only_what_they_answer(world, body):
    response = world.post("/v1/chat/completions", body)
    reply = check_reply(response, stream_ok=True)
    logged = world.service.log.flush()
    assert logged == (0 if reply is not None and "error" in reply else 1)


@FUZZ
@given(body=FEEDBACK, reviewer=REVIEWER)
@example(body={"request_id": RID, "score": 1, "reviewer": "\udc80"}, reviewer=None)
@example(
    body={"request_id": RID, "score": 1, "corrected_quote": "notice.", "start": TAIL, "end": 10**30}, reviewer=None
)
def test_feedback_replies_in_json_and_writes_only_accepted_rows(world, body, reviewer):
    before = world.feedback_rows()
    headers = {} if reviewer is None else {"x-reviewer": reviewer}
    reply = check_reply(world.post("/v1/feedback", body, headers))
    new = world.feedback_rows()[len(before) :]
    assert len(new) == (0 if "error" in reply else reply["rows"])
    correction_offsets_are_the_quote(new)


@FUZZ
@given(body=RATE, reviewer=REVIEWER)
@example(
    body={
        "request_id": RID,
        "action": "correct",
        "quote": "New York",
        "start": AT - len(TEXT),
        "end": AT + 8 - len(TEXT),
    },
    reviewer="ana",
)
def test_review_ratings_reply_in_json_and_write_only_accepted_rows(world, body, reviewer):
    before = world.feedback_rows()
    headers = {} if reviewer is None else {"x-reviewer": reviewer}
    reply = check_reply(world.post("/review/rate", body, headers))
    new = world.feedback_rows()[len(before) :]
    assert len(new) == (0 if "error" in reply else reply["rows"])
    correction_offsets_are_the_quote(new)


# ------------------------------------------------------------------------------------------------ what it found


def test_a_lone_surrogate_in_a_question_is_refused_and_never_blocks_the_query_log(world):
    """Before: a 500, and the line stayed in the query log's buffer, failing every later flush (no line written)."""
    response = world.post("/v1/answers", {"contract_id": "c-1", "question": "Which law\ud800 governs?"})
    assert response.status_code == 422 and "lone surrogate" in response.json()["error"]["message"]
    assert world.service.log.flush() == 0
    assert check_reply(world.post("/v1/answers", {"contract_id": "c-1", "question": "Which law governs?"}))
    assert world.service.log.flush() == 1


def test_a_text_part_that_is_no_string_is_refused(world):
    """Before: a 500 (TypeError joining the parts)."""
    body = {"contract_id": "c-1", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    response = world.post("/v1/chat/completions", body)
    assert response.status_code == 422 and "text part" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "field, value", [("reviewer", "ana\udc80"), ("corrected_quote", "New\ud800 York")], ids=["reviewer", "quote"]
)
def test_a_lone_surrogate_in_feedback_is_refused(world, field, value):
    """Before: a 500 from writing the feedback row."""
    before = world.feedback_rows()
    response = world.post("/v1/feedback", {"request_id": RID, "score": 1, field: value})
    assert response.status_code == 422 and field in response.json()["error"]["message"]
    assert world.feedback_rows() == before


@pytest.mark.parametrize(
    "quote, start, end",
    [("New York", AT - len(TEXT), AT + 8 - len(TEXT)), ("notice.", TAIL, 10**30)],
    ids=["negative", "past-the-end"],
)
def test_correction_offsets_outside_the_contract_are_refused(world, quote, start, end):
    """Before: Python's slice of the contract at these offsets is the quote, so it was stored at offsets that are
    negative or past the contract's end."""
    assert TEXT[start:end] == quote
    before = world.feedback_rows()
    body = {"request_id": RID, "score": 0, "corrected_quote": quote, "start": start, "end": end}
    response = world.post("/v1/feedback", body)
    assert response.status_code == 422 and "0 <= start < end" in response.json()["error"]["message"]
    assert world.feedback_rows() == before
    good = world.post("/v1/feedback", {**body, "start": TEXT.find(quote), "end": TEXT.find(quote) + len(quote)})
    assert good.status_code == 200 and good.json()["rows"] == 2


def test_a_correction_on_a_contract_no_longer_served_is_a_409(world):
    """A request answered before a restart, on a contract this server no longer loads. Before: a 500 (KeyError)."""
    line = {"query_id": "feedc0de00000001", "question": "q?", "contract_id": "c-gone", "answer": QUOTE, "arm": "served"}
    world.queries.write("serve-old.jsonl", (json.dumps(line) + "\n").encode())
    before = world.feedback_rows()
    body = {"request_id": "feedc0de00000001", "score": 0, "corrected_quote": QUOTE}
    response = world.post("/v1/feedback", body)
    assert response.status_code == 409 and "c-gone" in response.json()["error"]["message"]
    assert world.feedback_rows() == before
    rated = world.post("/v1/feedback", {"request_id": "feedc0de00000001", "score": 0})  # a rating alone still works
    assert rated.status_code == 200 and rated.json()["rows"] == 1

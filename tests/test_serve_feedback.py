"""`selfinstruct serve`'s records: feedback on a request (a correction is a verbatim gold row), the query log under
concurrency and a flaky inbox, and the review queue's order.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_serve_feedback.py

The world and the helpers are tests/serve_world.py's; the query log and the queue need no world.
"""

import json
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_serve import QUESTIONS, call  # noqa: E402
from serve_world import ask, fresh_world, splits, tiny_world  # noqa: E402, F401 (fixtures)

from selfinstruct.intake.feedback import read_feedback_inbox  # noqa: E402
from selfinstruct.serving.app import serve_in_thread  # noqa: E402
from selfinstruct.serving.query_log import QueryLog  # noqa: E402
from selfinstruct.serving.review import queue  # noqa: E402

pytestmark = pytest.mark.slow  # the feedback test loads the tiny model and starts uvicorn


def test_feedback_rates_a_request_and_a_correction_is_a_verbatim_gold_row(fresh):
    contract = sorted(fresh.contracts)[0]
    text = fresh.contracts[contract]
    gold = next(x.strip() for x in text[200:].split("\n")[1:] if len(x.strip()) > 40)  # a line, verbatim
    with serve_in_thread(fresh.app(fresh.service())) as url:
        served = ask(url, QUESTIONS[0], contract)
        rid = served["request_id"]
        status, body = call(
            "POST",
            f"{url}/v1/feedback",
            {"request_id": rid, "score": 0, "corrected_quote": gold},
            {"X-Reviewer": "ana"},
        )
        assert (status, body) == (200, {"request_id": rid, "rows": 2}), body
        status, body = call("POST", f"{url}/v1/feedback", {"request_id": "0123456789abcdef", "score": 1})
        assert status == 404 and "unknown request_id '0123456789abcdef'" in body["error"]["message"]
        status, body = call(
            "POST", f"{url}/v1/feedback", {"request_id": rid, "score": 0.5, "corrected_quote": "Not in it at all."}
        )
        assert status == 422 and "not a verbatim slice" in body["error"]["message"]
        status, body = call("POST", f"{url}/v1/feedback", {"request_id": rid, "score": 3})
        assert status == 422 and "out of range" in body["error"]["message"]
    rows, rejects = read_feedback_inbox(fresh.feedback, splits(fresh))
    assert rejects == []
    assert sorted((r["answer"], r["score"], r["source"]) for r in rows) == sorted(
        [(served["answer"], 0.0, "human"), (gold, 1.0, "human")]
    )
    assert all(r["event_id"].startswith(rid) and "reviewer: ana" in r["comment"] for r in rows)


class FlakyInbox:
    """An inbox whose every other write fails (the first included), as a flaky connection to S3 would."""

    def __init__(self):
        self.files, self.calls = {}, 0

    def write(self, name, data):
        self.calls += 1
        if self.calls % 2 == 1:
            raise OSError("connection reset")
        self.files[name] = data
        return name


def test_query_log_loses_and_doubles_nothing_under_concurrency():
    inbox = FlakyInbox()
    log = QueryLog(inbox, flush_s=0.005)
    log.start()

    def client(n):
        for i in range(300):
            log.add({"query_id": f"{n}-{i}"})
            if i % 30 == 0:
                time.sleep(0.01)  # let the flusher publish in between

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(5):  # close() publishes the rest; a failed last write raises and keeps its lines
        try:
            log.close()
            break
        except OSError:
            continue
    ids = [json.loads(x)["query_id"] for data in inbox.files.values() for x in data.decode().splitlines()]
    assert sorted(ids) == sorted(f"{n}-{i}" for n in range(8) for i in range(300))
    assert inbox.calls > len(inbox.files) >= 2  # some writes failed and were retried


class FakeJudge:
    threshold = 0.4

    def __init__(self, by_answer):
        self.by_answer = by_answer

    def score(self, questions, candidates, golds):
        return [self.by_answer[c] for c in candidates]


def test_queue_puts_the_judges_closest_calls_first_and_spreads_contracts():
    def item(rid, contract, answer, score=None):
        return {"request_id": rid, "question": f"q{rid}", "contract_id": contract, "answer": answer,
                "timestamp": rid, "answer_score": score}  # fmt: skip

    requests = [
        item("01", "c1", "far"),
        item("02", "c1", "close"),
        item("03", "c1", "closer"),
        item("04", "c2", "mid"),
        item("05", "c3", "no gold", score=0.1),
        item("06", "c3", "rated"),
    ]
    judge = FakeJudge({"far": 0.99, "close": 0.45, "closer": 0.41, "mid": 0.6})
    golds = lambda c, q: None if q in ("q05", "q06") else ["the gold clause"]  # noqa: E731
    got = queue(requests, rated={"06"}, judge=judge, golds=golds, n=10)
    # judged first by distance to 0.4, but a second item of c1 waits until c2 and c3 had one
    assert [g["request_id"] for g in got] == ["03", "04", "05", "02", "01"]
    assert got[0]["judge_score"] == pytest.approx(0.41) and "from its threshold 0.40" in got[0]["why"]
    assert got[2]["judge_score"] is None and "margin" in got[2]["why"]

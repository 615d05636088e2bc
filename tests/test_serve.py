"""`selfinstruct serve` on the tiny model: answers in the one format, hot swap, A/B, feedback, safety, OpenAI client.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_serve.py

The world (bench_serve.TinyWorld): the tiny random model with two LoRA adapters (A served first, B), two CUAD
contracts indexed in embedded Chroma with the hashing embedder, the real hybrid retriever, and the app under
uvicorn on loopback. Waits have deadlines; nothing asserts a latency.
"""

import argparse
import json
import math
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_serve import OPENER, QUESTIONS, TinyWorld, call  # noqa: E402

from selfinstruct.answering import NO_CLAUSE  # noqa: E402
from selfinstruct.intake.feedback import read_feedback_inbox  # noqa: E402
from selfinstruct.intake.queries import read_query_inbox  # noqa: E402
from selfinstruct.serving.app import serve_in_thread  # noqa: E402
from selfinstruct.serving.review import queue  # noqa: E402
from selfinstruct.serving.service import QueryLog, ServeSettings, answer_question  # noqa: E402

pytestmark = pytest.mark.slow  # loads the tiny model and starts uvicorn (about a minute for the module)
A, B = "aaaaaa000001", "bbbbbb000002"
TOKEN = "serve-test-token-0123456789"


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny):
    return TinyWorld(tmp_path_factory.mktemp("serve"), n_contracts=2, base=tiny)


@pytest.fixture
def fresh(world, tmp_path):
    """The world with A served and empty inboxes of its own."""
    world.promote(A)
    world.inboxes(tmp_path / "inbox")
    return world


def wait_for(check, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while not (got := check()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:.0f} s"
        time.sleep(0.05)
    return got


def ask(url: str, question: str, contract_id: str, **extra) -> dict:
    status, body = call("POST", f"{url}/v1/answers", {"question": question, "contract_id": contract_id, **extra})
    assert status == 200, body
    return body


def splits(world) -> dict:
    return {c: "eval" for c in world.contracts}


def test_answers_quote_the_contract_with_offsets_and_each_is_logged_once(fresh):
    answers = []
    for margin in (-math.inf, math.inf):  # always quote, never quote: both forms of the one answer format
        with serve_in_thread(fresh.app(fresh.service(margin=margin))) as url:
            answers += [ask(url, q, c) for q in QUESTIONS[:3] for c in sorted(fresh.contracts)]
    quotes = [a for a in answers if a["has_clause"]]
    assert len(quotes) == 6 and len(answers) == 12
    for a in quotes:
        assert a["answer"] and fresh.contracts[a["contract_id"]][a["start"] : a["end"]] == a["answer"]
    for a in answers[6:]:
        assert (a["answer"], a["start"], a["end"]) == (NO_CLAUSE, None, None)
    assert {(a["adapter_id"], a["method"], a["arm"]) for a in answers} == {(A, "sft", "served")}
    assert len({a["request_id"] for a in answers}) == 12
    rows, rejects = read_query_inbox(fresh.queries, splits(fresh))  # the format query_log reads
    assert rejects == []
    assert sorted(r["query_id"] for r in rows) == sorted(a["request_id"] for a in answers)
    by_id = {r["query_id"]: r for r in rows}
    for a in answers:
        row = by_id[a["request_id"]]
        assert (row["question"], row["contract_id"], row["answer"]) == (a["question"], a["contract_id"], a["answer"])
        assert (row["adapter"], row["arm"]) == (A, "served") and row["latency_s"] >= 0


def test_the_answer_is_the_benchmarks_answer(fresh):
    from selfinstruct.benchmark.methods import scorer_answers

    scorer, contract = fresh.load_scorer(Path(fresh.snapshots[A])), sorted(fresh.contracts)[0]
    for question in QUESTIONS[:3]:
        passages = fresh.retrieve(question, contract, 3)
        settings = ServeSettings(margin=-math.inf)
        mine, used = answer_question(scorer, fresh.retrieve, question, contract, settings)
        [theirs] = scorer_answers(scorer, [{"question": question}], [passages], settings.n_windows, settings.margin)
        assert used == passages
        assert (mine.text, mine.has_clause, mine.score) == (theirs.text, theirs.has_clause, theirs.score)


def test_a_promotion_is_served_within_seconds_without_restart(fresh):
    from selfinstruct_assets.cli.promote import add_promote_parser

    service = fresh.service()
    contract = sorted(fresh.contracts)[0]
    with serve_in_thread(fresh.app(service)) as url:
        assert ask(url, QUESTIONS[0], contract)["adapter_id"] == A
        fresh.promote(B)
        wait_for(lambda: call("GET", f"{url}/v1/models")[1]["data"][0]["adapter_id"] == B, "serving B")
        assert ask(url, QUESTIONS[0], contract)["adapter_id"] == B
        # `selfinstruct promote --to` rolls back, and the server follows it too
        sub = argparse.ArgumentParser().add_subparsers()
        add_promote_parser(sub, lambda: fresh.root)
        args = sub.choices["promote"].parse_args(["--to", A])
        assert args.func(args) == 0
        wait_for(lambda: service.model_ids()["served"] == A, "rolling back to A")
        assert ask(url, QUESTIONS[1], contract)["adapter_id"] == A
    assert service.swaps == 2


def test_a_request_keeps_the_model_it_started_with(fresh):
    entered, release = threading.Event(), threading.Event()

    class HeldScorer:  # A's scorer waits inside the request until the test lets it go
        def __init__(self, scorer):
            self.scorer = scorer

        def answer(self, *args, **kwargs):
            entered.set()
            assert release.wait(60)
            return self.scorer.answer(*args, **kwargs)

    def load(folder):
        scorer = fresh.load_scorer(folder)
        return HeldScorer(scorer) if folder is not None and folder.name == A else scorer

    service = fresh.service(load_scorer=load)
    contract = sorted(fresh.contracts)[0]
    with serve_in_thread(fresh.app(service)) as url:
        held = {}
        worker = threading.Thread(target=lambda: held.update(ask(url, QUESTIONS[0], contract)))
        worker.start()
        assert entered.wait(60)
        fresh.promote(B)
        wait_for(lambda: service.model_ids()["served"] == B, "the swap to B")
        release.set()
        worker.join(60)
        after = ask(url, QUESTIONS[0], contract)
    assert held["adapter_id"] == A and after["adapter_id"] == B
    rows, _ = read_query_inbox(fresh.queries, splits(fresh))
    assert {r["query_id"]: r["adapter"] for r in rows} == {held["request_id"]: A, after["request_id"]: B}


def test_ab_share_goes_to_the_candidate_and_the_arm_is_recorded(fresh):
    contract = sorted(fresh.contracts)[0]
    with serve_in_thread(fresh.app(fresh.service(candidate=B, candidate_share=0.5))) as url:
        models = call("GET", f"{url}/v1/models")[1]
        got = [ask(url, QUESTIONS[i % 3], contract) for i in range(12)]
        pinned = ask(url, QUESTIONS[0], contract, model=A)
    assert {m["id"] for m in models["data"]} == {"selfinstruct", A, B}
    assert {(a["arm"], a["adapter_id"]) for a in got} == {("served", A), ("candidate", B)}
    assert (pinned["arm"], pinned["adapter_id"]) == ("served", A)
    rows, _ = read_query_inbox(fresh.queries, splits(fresh))
    arms = {r["query_id"]: (r["arm"], r["adapter"]) for r in rows}
    assert all(arms[a["request_id"]] == (a["arm"], a["adapter_id"]) for a in got)


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


def test_safe_by_default(fresh, caplog):
    contract = sorted(fresh.contracts)[0]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serve_in_thread(fresh.app(fresh.service(), token=TOKEN)) as url:
        for method, path in (("GET", "/v1/models"), ("POST", "/review/rate"), ("POST", "/v1/feedback")):
            status, body = call(method, f"{url}{path}", {} if method == "POST" else None)
            assert status == 401 and "bearer token" in body["error"]["message"]
        with OPENER.open(f"{url}/review", timeout=30) as page:  # a browser is sent to the sign-in form
            assert page.geturl().endswith("/review/login") and b'name="token"' in page.read()
        assert call("GET", f"{url}/v1/models", headers={"Authorization": "Bearer wrong-token-0000000000"})[0] == 401
        assert call("POST", f"{url}/v1/answers", {"question": "Q?", "contract_id": contract})[0] == 401
        assert call("GET", f"{url}/v1/models", headers=auth)[0] == 200
        ok = call("POST", f"{url}/v1/answers", {"question": QUESTIONS[0], "contract_id": contract}, auth)
        assert ok[0] == 200
        cases = [
            ({"question": "x" * 4001, "contract_id": contract}, 413, "at most 4000"),
            ({"question": "Who?", "contract_id": "no-such-contract"}, 404, "unknown contract_id 'no-such-contract'"),
            ({"question": "Who?", "contract_id": contract, "model": "ffffff999999"}, 404, "unknown model"),
            ({"question": "Who?", "contract_id": contract, "path": "/etc/passwd"}, 422, "path"),
            ({"question": "y" * 70_000, "contract_id": contract}, 413, "request body is over 64000 bytes"),
        ]
        for body, status, message in cases:
            got = call("POST", f"{url}/v1/answers", body, auth)
            assert got[0] == status and message in got[1]["error"]["message"], (body.keys(), got)
    everything = "".join(fresh.queries.read(f.name).decode() for f in fresh.queries.files())
    assert ok[1]["request_id"] in everything and TOKEN not in everything and TOKEN not in caplog.text


def test_binding_beyond_loopback_needs_the_token(monkeypatch, capsys):
    from selfinstruct_assets.cli import main
    from selfinstruct_assets.cli.serve import check_bind

    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(ValueError, match="SELFINSTRUCT_SERVE_TOKEN"):
        check_bind("0.0.0.0", None)
    monkeypatch.delenv("SELFINSTRUCT_SERVE_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "set SELFINSTRUCT_SERVE_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("SELFINSTRUCT_SERVE_TOKEN", "short-secret")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "at least 16" in err and "short-secret" not in err


def test_openai_client_works_unchanged(fresh):
    import openai

    contract = sorted(fresh.contracts)[0]
    with serve_in_thread(fresh.app(fresh.service(), token=TOKEN)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0)
        assert "selfinstruct" in {m.id for m in client.models.list()}
        messages = [{"role": "user", "content": QUESTIONS[0]}]
        reply = client.chat.completions.create(
            model="selfinstruct", messages=messages, extra_body={"contract_id": contract}
        )
        text = reply.choices[0].message.content
        assert reply.model == A and (text == NO_CLAUSE or text in fresh.contracts[contract])
        streamed = client.chat.completions.create(
            model="selfinstruct", messages=messages, extra_body={"contract_id": contract}, stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in streamed) == text
        with pytest.raises(openai.UnprocessableEntityError, match="contract_id"):
            client.chat.completions.create(model="selfinstruct", messages=messages)
        with pytest.raises(openai.NotFoundError, match="unknown model 'gpt-4o'"):
            client.chat.completions.create(model="gpt-4o", messages=messages, extra_body={"contract_id": contract})


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


def test_cli_wiring_serves_the_projects_tables_and_index(home, tiny, world, monkeypatch, capsys):
    """build_app over a home: contracts and annotations from DuckDB, the index under home/chroma, the base model
    from SELFINSTRUCT_BASE_MODEL, the served pointer under home/serving."""
    import duckdb

    from resources.project import ChromaResource, EmbedderResource
    from selfinstruct.core.paths import duckdb_path
    from selfinstruct.corpus.chunking import chunk_contracts
    from selfinstruct_assets.cli import main
    from selfinstruct_assets.cli.serve import add_serve_parser, build_app

    monkeypatch.setenv("SELFINSTRUCT_BASE_MODEL", str(tiny))
    monkeypatch.setenv("SELFINSTRUCT_EMBEDDER", "hashing")
    contract = sorted(world.contracts)[0]
    text = world.contracts[contract]
    with duckdb.connect(duckdb_path()) as conn:
        conn.execute("create table cuad_contracts (contract_id varchar, text varchar, split varchar, sha256 varchar)")
        conn.execute("insert into cuad_contracts values (?, ?, 'eval', 'x')", [contract, text])
        conn.execute(
            "create table cuad_annotations (contract_id varchar, question varchar, category varchar, "
            "answer_texts varchar[])"
        )
        conn.execute("insert into cuad_annotations values (?, ?, 'Governing Law', [])", [contract, QUESTIONS[0]])
    ChromaResource().store(EmbedderResource(backend="hashing").get()).sync(
        chunk_contracts([{"contract_id": contract, "text": text}], 1000, 0)
    )
    sub = argparse.ArgumentParser().add_subparsers()
    add_serve_parser(sub)
    args = sub.choices["serve"].parse_args(["--candidate-share", "0"])
    with serve_in_thread(build_app(args, None)) as url:
        base = ask(url, QUESTIONS[0], contract)  # nothing promoted in this home: the base model answers
        status, body = call("POST", f"{url}/v1/answers", {"question": "Who?", "contract_id": "elsewhere"})
    assert (base["adapter_id"], base["arm"]) == ("base", "served") and status == 404
    assert base["answer"] == NO_CLAUSE or text[base["start"] : base["end"]] == base["answer"]
    assert main(["serve", "--candidate", "ffffff"]) == 2  # a named candidate that was never promoted
    assert "--candidate 'ffffff' names no promoted adapter" in capsys.readouterr().err


def test_each_model_answers_under_its_own_recorded_abstain_margin(fresh, tmp_path):
    import duckdb

    from selfinstruct_assets.cli.serve import recorded_margin

    service = fresh.service(margin_for=lambda adapter, method: math.inf if adapter == A else None)
    service.refresh()
    contract = next(iter(fresh.contracts))
    got = service.ask(QUESTIONS[0], contract)
    assert got["adapter_id"] == A and got["answer"] == NO_CLAUSE  # A's margin says: never quote
    db = str(tmp_path / "scores.duckdb")
    with duckdb.connect(db) as conn:
        conn.execute(
            "create table benchmark_scores (method text, adapter_id text, abstain_margin double, created_at timestamp)"
        )
        conn.execute(
            "insert into benchmark_scores values ('sft', 'aaaaaa000001', 0.5, '2026-01-01'), "
            "('sft', 'aaaaaa000001', 0.25, '2026-01-02'), ('base', '', null, '2026-01-02')"
        )
    assert recorded_margin(db, A, "sft") == 0.25  # the latest run's
    assert recorded_margin(db, "base", "base") == -math.inf  # recorded as always quote
    assert recorded_margin(db, B, "dpo") is None  # nothing recorded: the --margin fallback
    assert recorded_margin(str(tmp_path / "none.duckdb"), A, "sft") is None

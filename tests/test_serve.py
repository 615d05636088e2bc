"""`selfinstruct serve` on the tiny model: answers in the one format, the benchmark's answer, the OpenAI client,
the CLI's wiring over a project home and each model's recorded abstain margin.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_serve.py

The world and the helpers are tests/serve_world.py's; tests/test_serve_adapters.py (hot swap, A/B),
tests/test_serve_feedback.py (feedback, the query log, the review queue) and tests/test_serve_safety.py (tokens,
limits, binding) run against the same kind of world.
"""

import argparse
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_serve import QUESTIONS, call  # noqa: E402
from serve_world import TOKEN, A, B, ask, fresh_world, splits, tiny_world  # noqa: E402, F401 (fixtures)

from selfinstruct.answering import NO_CLAUSE  # noqa: E402
from selfinstruct.intake.queries import read_query_inbox  # noqa: E402
from selfinstruct.serving.answer import answer_question  # noqa: E402
from selfinstruct.serving.app import serve_in_thread  # noqa: E402
from selfinstruct.serving.serve_settings import ServeSettings  # noqa: E402

pytestmark = pytest.mark.slow  # loads the tiny model and starts uvicorn


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

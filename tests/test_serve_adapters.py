"""`selfinstruct serve` on the tiny model: which adapter answers. A promotion (and a rollback) is served without a
restart, a request keeps the model it started with, and an A/B share goes to the candidate with its arm recorded.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/test_serve_adapters.py

The world and the helpers are tests/serve_world.py's.
"""

import argparse
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_serve import QUESTIONS, call  # noqa: E402
from serve_world import A, B, ask, fresh_world, splits, tiny_world, wait_for  # noqa: E402, F401 (fixtures)

from selfinstruct.intake.queries import read_query_inbox  # noqa: E402
from selfinstruct.serving.app import serve_in_thread  # noqa: E402

pytestmark = pytest.mark.slow  # loads the tiny model and starts uvicorn


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

"""The continuous loop with real processes on a tiny model: dagster-daemon, dagster-webserver and
`selfinstruct serve` on loopback, one home.

Requests on train-split contracts through serve, ratings through its review page (serve writes them to the
feedback inbox), the feedback_sensor's refresh of exactly the downstream path, a new benchmark row, the gate's
decision, the webserver reporting the run, and serve answering with the promoted adapter without a restart
(issue 25 §4). One test, so main_job and the refresh run once; how the sensor reads dropped files is
tests/test_sensors.py. The upstream assets are materialised in this process (same DAGSTER_HOME).
"""

import json
import os
import time
import urllib.request
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from conftest import small_pipeline_config, txt_name_for, write_archive
from loop_serve import (
    ask,
    ask_and_rate,
    benchmark_methods,
    decision_of,
    materialised_at,
    served_adapter,
    start_serve,
    wait_served,
)
from procs import OPENER, free_port, log_tail, start, stop, wait_http

from selfinstruct.core.artifacts import serving_root
from selfinstruct.corpus.cuad import contract_id_for, split_for
from selfinstruct.serving.registry import current
from selfinstruct_assets.instance import ensure_instance_yaml

REFRESHED = {
    "human_feedback",
    "feedback_rejects",
    "preference_pairs",
    "dpo_adapter",
    "orpo_adapter",
    "benchmark_scores",
    "benchmark_answers",
    "serving_candidate",
    "promotion_decisions",
    "serving_model",
}
UPSTREAM = {"cuad_contracts", "contract_chunks", "vector_index", "sft_adapter", "rag_responses", "ai_feedback"}
RUN_DEADLINE_S = 600


@pytest.fixture
def loop_env(tmp_path, tiny, small_cuad, monkeypatch) -> dict:
    env = {
        "SELFINSTRUCT_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "SELFINSTRUCT_BASE_MODEL": str(tiny),
        "SELFINSTRUCT_EMBEDDER": "hashing",
        "SELFINSTRUCT_CUAD_URI": str(small_cuad),
        "SELFINSTRUCT_FEEDBACK_MIN_ROWS": "3",
        "HF_HUB_OFFLINE": "1",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ensure_instance_yaml()
    return {**os.environ, **env}


def materialise_everything(small_cuad, **overrides) -> None:
    from selfinstruct_assets.definitions import defs

    with dg.DagsterInstance.get() as instance:
        result = (
            defs()
            .resolve_job_def("main_job")
            .execute_in_process(run_config=small_pipeline_config(small_cuad, **overrides), instance=instance)
        )
    assert result.success


def wait_for_refresh(instance, log, deadline_s: float = RUN_DEADLINE_S) -> dg.DagsterRun:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"selfinstruct/trigger": "feedback"}))
        if runs and runs[0].is_finished:
            return runs[0]
        time.sleep(2)
    raise AssertionError(f"no finished feedback refresh within {deadline_s:.0f} s:\n{log_tail(log)}")


def graphql_status(base: str, run_id: str) -> str:
    body = json.dumps({"query": '{ runOrError(runId: "' + run_id + '") { ... on Run { status } } }'}).encode()
    req = urllib.request.Request(f"{base}/graphql", data=body, headers={"Content-Type": "application/json"})
    with OPENER.open(req, timeout=10) as resp:
        return json.loads(resp.read())["data"]["runOrError"]["status"]


N_RATINGS = 6  # the sensor's threshold is set to it: the refresh starts on the last rating


@pytest.fixture(scope="module")
def gate_cuad(cuad_members, tmp_path_factory) -> Path:
    """small_cuad's 12 contracts (one of them eval-split) plus the 3 shortest eval-split contracts of the next 68:
    the benchmark's answerable questions then fall on several contracts, which the paired gate needs for an
    interval (on one contract it can never pass)."""
    texts = cuad_members["texts"]
    rows = cuad_members["rows"]

    def name(row) -> str:
        return txt_name_for(row[0], texts)

    evals = [r for r in rows[12:80] if split_for(contract_id_for(name(r).rsplit("/", 1)[-1]), 0.2) == "eval"]
    picked = rows[:12] + sorted(evals, key=lambda r: len(texts[name(r)]))[:3]
    path = tmp_path_factory.mktemp("cuad_gate") / "CUAD_gate.zip"
    return write_archive(
        path, cuad_members["header"], picked, {name(r): texts[name(r)] for r in picked}, cuad_members["readme"]
    )


@pytest.mark.slow
def test_requests_and_ratings_through_serve_refresh_gate_and_swap_the_served_adapter(
    loop_env, gate_cuad, tmp_path, monkeypatch
):
    monkeypatch.setenv("SELFINSTRUCT_CUAD_URI", str(gate_cuad))
    # Tolerance 1 lets any candidate with a paired interval through, so the promote branch runs on a tiny random
    # model; the sensor-launched refresh keeps it because each op runs with the config it last ran with.
    materialise_everything(gate_cuad, serving_candidate={"config": {"tolerance": 1.0}})
    home = tmp_path / "home"
    database = str(home / "selfinstruct.duckdb")
    before = current(serving_root(home))["adapter_id"]
    env = {**loop_env, "SELFINSTRUCT_CUAD_URI": str(gate_cuad), "SELFINSTRUCT_FEEDBACK_MIN_ROWS": str(N_RATINGS)}
    daemon = start("dagster-daemon", ["run", "-w", "workspace.yaml"], env, tmp_path / "daemon.log")
    port = free_port()
    web = start(
        "dagster-webserver", ["-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)], env, tmp_path / "web.log"
    )
    serve = None
    try:
        serve, url = start_serve(env, tmp_path / "serve.log", free_port())
        assert served_adapter(url) == before
        got = ask_and_rate(url, database, N_RATINGS)
        asked = [r["request_id"] for r in got["records"]]
        assert {(r["adapter_id"], r["arm"]) for r in got["records"]} == {(before, "served")}
        assert set(asked) <= set(got["shown"]), "the review page did not show every answered request"
        assert got["rows"] == N_RATINGS
        with dg.DagsterInstance.get() as instance:
            run = wait_for_refresh(instance, tmp_path / "daemon.log", deadline_s=3 * RUN_DEADLINE_S)
            bench_at = materialised_at(instance, run.run_id, "benchmark_scores")
            events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        done = {e.dagster_event.asset_key.to_user_string() for e in events}
        assert done == REFRESHED and not done & UPSTREAM  # exactly the downstream path, nothing upstream
        wait_http(f"http://127.0.0.1:{port}/server_info", web, tmp_path / "web.log", 120)
        assert graphql_status(f"http://127.0.0.1:{port}", run.run_id) == "SUCCESS"  # the UI reports the run
        decision = decision_of(database, run.run_id)
        assert decision is not None and decision["passed"], (decision, log_tail(tmp_path / "daemon.log"))
        assert run.status == dg.DagsterRunStatus.SUCCESS, log_tail(tmp_path / "daemon.log")
        assert run.tags["selfinstruct/new_rows"] == str(N_RATINGS)
        ops = run.run_config["ops"]  # the profile main_job ran with, not the assets' defaults
        assert ops["benchmark_scores"]["config"]["n_questions"] == 6 and ops["serving_candidate"]["config"] == {
            "tolerance": 1.0
        }
        assert bench_at is not None and {"sft", "dpo", "orpo"} <= benchmark_methods(database, run.run_id)
        new = decision["candidate_adapter_id"]
        assert decision["served_adapter_id"] == before and new != before, decision
        assert current(serving_root(home))["adapter_id"] == new
        # serve follows the promotion without a restart: /v1/models and the next answer name the new adapter
        assert wait_served(url, new, timeout_s=300) is not None, log_tail(tmp_path / "serve.log")
        after = ask(url, *next((r["contract_id"], r["question"]) for r in got["records"]))
        assert (after["adapter_id"], after["method"]) == (new, decision["candidate_method"])
        assert serve.poll() is None
    finally:
        if serve is not None:
            stop(serve)
        stop(daemon)
        stop(web)
    with duckdb.connect(database, read_only=True) as conn:
        rated = conn.execute(
            "select count(*), count(distinct contract_id) from human_feedback "
            "where source = 'human' and comment like 'reviewer: loop-e2e;%'"
        ).fetchone()
    assert rated == (N_RATINGS, len({r["contract_id"] for r in got["records"]}))

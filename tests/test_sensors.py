"""Sensor ticks with build_sensor_context: cursors, skips, one run with the right selection, no duplicates."""

import json

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from resources.project import InboxResource
from selfinstruct.corpus.cuad import contract_id_for
from selfinstruct_assets.definitions import SENSORS, defs

CONTRACTS = [("c-train", "train", "a" * 64), ("c-eval", "eval", "b" * 64)]


@pytest.fixture
def db(tmp_path) -> str:
    path = str(tmp_path / "selfinstruct.duckdb")
    with duckdb.connect(path) as conn:
        conn.execute("create table cuad_contracts (contract_id varchar, split varchar, sha256 varchar)")
        conn.executemany("insert into cuad_contracts values (?, ?, ?)", CONTRACTS)
    return path


def sensor(name: str) -> dg.SensorDefinition:
    return next(s for s in SENSORS if s.name == name)


def tick(name, instance, tmp_path, db, cursor=None):
    ctx = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"inbox": InboxResource(root=str(tmp_path / "inbox")), "duckdb": DuckDBResource(database=db)},
    )
    result = sensor(name)(ctx)
    return result, ctx.cursor


def ratings(tmp_path, name: str, ids: list[str]) -> None:
    folder = tmp_path / "inbox" / "feedback"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        json.dumps(
            {
                "event_id": i,
                "question": "Who are the parties?",
                "answer": "Acme and Beta",
                "contract_id": "c-train",
                "score": 4,
                "scale": "1-5",
            }
        )
        for i in ids
    ]
    (folder / name).write_text("\n".join(rows) + "\n")


def test_feedback_sensor_skips_then_requests_one_refresh_then_ignores_a_duplicate(tmp_path, db, monkeypatch):
    monkeypatch.setenv("SELFINSTRUCT_FEEDBACK_MIN_ROWS", "3")
    with dg.instance_for_test() as instance:
        result, cursor = tick("feedback_sensor", instance, tmp_path, db)
        assert isinstance(result, dg.SkipReason) and "no new valid feedback rows" in result.skip_message
        ratings(tmp_path, "a.jsonl", ["e1", "e2"])
        result, cursor = tick("feedback_sensor", instance, tmp_path, db, cursor)
        assert isinstance(result, dg.SkipReason) and "2 new valid feedback rows < 3" in result.skip_message
        ratings(tmp_path, "b.jsonl", ["e3"])
        result, cursor = tick("feedback_sensor", instance, tmp_path, db, cursor)
        assert isinstance(result, dg.RunRequest) and result.tags["selfinstruct/new_rows"] == "3"
        ratings(tmp_path, "c.jsonl", ["e1", "e2", "e3"])  # the same rows again under another name
        result, _ = tick("feedback_sensor", instance, tmp_path, db, cursor)
        assert isinstance(result, dg.SkipReason)


def test_feedback_refresh_job_selects_the_downstream_path_and_nothing_upstream():
    job = defs().resolve_job_def(sensor("feedback_sensor").job_name)
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert keys == {
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
    assert not keys & {"rag_responses", "ai_feedback", "sft_adapter", "synthetic_qa", "cuad_contracts", "vector_index"}


def test_feedback_sensor_waits_for_the_corpus(tmp_path):
    with dg.instance_for_test() as instance:
        result, _ = tick("feedback_sensor", instance, tmp_path, str(tmp_path / "missing.duckdb"))
    assert isinstance(result, dg.SkipReason) and "make demo" in result.skip_message


def test_new_contracts_sensor_adds_a_partition_and_requests_only_it(tmp_path, db):
    folder = tmp_path / "inbox" / "contracts"
    folder.mkdir(parents=True)
    (folder / "Acme Supply Agreement.txt").write_text("This Supply Agreement is made between Acme and Beta.\n")
    cid = contract_id_for("Acme Supply Agreement.txt")
    with dg.instance_for_test() as instance:
        result, _ = tick("new_contracts_sensor", instance, tmp_path, db)
        assert [r.partition_key for r in result.run_requests] == [cid]
        assert result.dynamic_partitions_requests[0].partition_keys == [cid]
        again, _ = tick("new_contracts_sensor", instance, tmp_path, db, result.cursor)
        assert not again.run_requests and "no new complete contract files" in again.skip_reason.skip_message
    job = defs().resolve_job_def(sensor("new_contracts_sensor").job_name)
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "added_contracts",
        "added_contract_chunks",
        "added_contract_index",
    }


def test_drift_sensor_reads_new_queries_and_acts_on_a_drifted_report(tmp_path, db):
    folder = tmp_path / "inbox" / "queries"
    folder.mkdir(parents=True)
    (folder / "q.jsonl").write_text(
        '{"question": "What law governs?", "contract_id": "c-train", "timestamp": "2026-11-20T10:00:00Z"}\n'
    )
    with dg.instance_for_test() as instance:
        result, _ = tick("drift_sensor", instance, tmp_path, db)
        assert [r.job_name for r in result.run_requests] == ["query_log_job"]
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                "drift_report", metadata={"drifted": True, "reasons": "queries_embedding: mmd 0.4 > 0.1 (n=30)"}
            )
        )
        hot, _ = tick("drift_sensor", instance, tmp_path, db, result.cursor)
        assert [r.job_name for r in hot.run_requests] == ["regenerate_job"]
        instance.report_runless_asset_event(dg.AssetMaterialization("drift_report", metadata={"drifted": True}))
        cooling, _ = tick("drift_sensor", instance, tmp_path, db, hot.cursor)
        assert not cooling.run_requests and "cooldown" in cooling.skip_reason.skip_message


def test_a_refresh_runs_with_the_profile_the_user_chose(tmp_path, db, monkeypatch):
    """main_job ran benchmark_scores on 41 questions: the feedback refresh must too, not on the defaults."""

    class Profile(dg.Config):
        n_questions: int = 123

    @dg.asset(name="benchmark_scores")
    def chosen(config: Profile) -> int:
        return config.n_questions

    monkeypatch.setenv("SELFINSTRUCT_FEEDBACK_MIN_ROWS", "1")
    with dg.instance_for_test() as instance:
        ratings(tmp_path, "a.jsonl", ["e1"])
        result, _ = tick("feedback_sensor", instance, tmp_path, db)
        assert isinstance(result, dg.RunRequest) and not result.run_config  # nothing ran yet: the defaults
        profile = {"ops": {"benchmark_scores": {"config": {"n_questions": 41}}}}
        assert dg.materialize([chosen], instance=instance, run_config=profile).success
        ratings(tmp_path, "b.jsonl", ["e2"])
        result, _ = tick("feedback_sensor", instance, tmp_path, db)
        assert isinstance(result, dg.RunRequest) and result.run_config == profile


def test_the_demo_profile_is_valid_config_for_every_loop_job():
    from selfinstruct_assets.cli.demo import demo_run_config
    from selfinstruct_assets.loop.jobs import JOB_ASSETS

    ops = demo_run_config()["ops"]
    for name, assets in JOB_ASSETS.items():
        job = defs().resolve_job_def(name)
        assert set(assets) == {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
        kept = {op: c for op, c in ops.items() if op in assets}
        dg.validate_run_config(job, {"ops": kept})  # raises on an op the job lacks or a config it refuses
    assert "benchmark_scores" in JOB_ASSETS["feedback_refresh_job"] and "benchmark_scores" in ops

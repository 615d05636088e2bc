"""Loop assets materialised for real: an added contract's partition, the serving gate, drift_report, automation."""

import json

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
from safetensors.numpy import save_file

from resources.model_folders import adapter_hash
from resources.project import ChromaResource, EmbedderResource
from selfinstruct.corpus.cuad import contract_id_for
from selfinstruct_assets.constants import CORPUS, RETRIEVAL
from selfinstruct_assets.corpus.checks import CORPUS_CHECKS
from selfinstruct_assets.definitions import ALL_CHECKS, ASSETS, default_resources, defs
from selfinstruct_assets.partitions import ADDED_CONTRACTS
from selfinstruct_assets.retrieval.checks import RETRIEVAL_CHECKS

CHECKS = CORPUS_CHECKS + RETRIEVAL_CHECKS

ADDED = ["added_contracts", "added_contract_chunks", "added_contract_index"]
NEW_TEXT = ("MASTER SUPPLY AGREEMENT between Acme Corp and Beta LLC. " * 20 + "\n") * 5


def resources():
    return {**default_resources(), "embedder": EmbedderResource(backend="hashing")}


def test_an_added_contract_is_indexed_alone_and_survives_a_full_reindex(small_cuad, home):
    with dg.instance_for_test() as instance:
        corpus = dg.materialize(
            ASSETS + CHECKS,
            instance=instance,
            resources=resources(),
            selection=dg.AssetSelection.groups(CORPUS, RETRIEVAL),
            run_config={
                "ops": {
                    "cuad_corpus": {"config": {"uri": str(small_cuad)}},
                    "retriever_model": {"config": {"enabled": False}},
                }
            },
        )
        assert corpus.success
        inbox = home / "inbox" / "contracts"
        inbox.mkdir(parents=True)
        (inbox / "Acme Master Supply Agreement.txt").write_text(NEW_TEXT)
        cid = contract_id_for("Acme Master Supply Agreement.txt")
        instance.add_dynamic_partitions(ADDED_CONTRACTS.name, [cid])
        added = dg.materialize(
            ASSETS,
            instance=instance,
            resources=resources(),
            partition_key=cid,
            selection=dg.AssetSelection.assets(*ADDED),
        )
        assert added.success
        index_md = next(
            e.materialization.metadata
            for e in added.get_asset_materialization_events()
            if e.materialization.asset_key.to_user_string() == "added_contract_index"
        )
        with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
            (n_chunks,) = conn.execute(
                "select count(*) from added_contract_chunks where contract_id = ?", [cid]
            ).fetchone()
            (n_cuad,) = conn.execute("select count(*) from contract_chunks").fetchone()
        assert index_md["added"].value == n_chunks > 0 and index_md["count"].value == n_cuad + n_chunks
        # A full re-index of CUAD's chunks must leave the added contract's vectors alone.
        again = dg.materialize(
            ASSETS + CHECKS,
            instance=instance,
            resources=resources(),
            selection=dg.AssetSelection.assets("vector_index"),
        )
        assert again.success and all(e.passed for e in again.get_asset_check_evaluations())
        store = ChromaResource().store(EmbedderResource(backend="hashing").get())
        [hits] = store.search(store.embedder.embed(["Who are the parties to the supply agreement?"]), [cid], 3)
        assert hits and all(h["contract_id"] == cid for h in hits)


def fake_adapter(folder, seed: int) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "seed": seed}))
    save_file({"w": np.full((2, 2), seed, dtype=np.float32)}, str(folder / "adapter_model.safetensors"))
    return adapter_hash(folder)[:12]


def benchmark(home, run_id: str, rows: list[tuple]) -> None:
    frame = pl.DataFrame(
        [
            {
                "method": m,
                "cuad_match": c,
                "judge_score": 0.5,
                "token_f1": c,
                "exact_match": 0.0,
                "adapter_id": a,
                "run_id": run_id,
                "created_at": run_id,
            }
            for m, c, a in rows
        ]
    )
    with duckdb.connect(str(home / "selfinstruct.duckdb")) as conn:
        new = frame.to_arrow()  # noqa: F841
        conn.execute("create table if not exists benchmark_scores as select * from new limit 0")
        conn.execute("insert into benchmark_scores by name select * from new")


def answers(home, run_id: str, method: str, matches: list[int]) -> None:
    """benchmark_answers rows: question i about contract i // 2, CUAD match `matches[i]`."""
    frame = pl.DataFrame(
        [
            {
                "run_id": run_id,
                "method": method,
                "question_id": f"q{i:02d}",
                "contract_id": f"c{i // 2}",
                "cuad_match": float(m),
            }
            for i, m in enumerate(matches)
        ]
    )
    with duckdb.connect(str(home / "selfinstruct.duckdb")) as conn:
        new = frame.to_arrow()  # noqa: F841
        conn.execute("create table if not exists benchmark_answers as select * from new limit 0")
        conn.execute("insert into benchmark_answers by name select * from new")


def gate_run(instance, home):
    # serving_candidate finds the benchmarked adapter where dpo_adapter's materialisation recorded it.
    instance.report_runless_asset_event(
        dg.AssetMaterialization("dpo_adapter", metadata={"adapter_path": str(home / "adapters" / "dpo")})
    )
    return dg.materialize(
        ASSETS + ALL_CHECKS,
        instance=instance,
        resources=resources(),
        raise_on_error=False,
        selection=dg.AssetSelection.assets("serving_candidate", "promotion_decisions", "serving_model"),
    )


def test_the_gate_promotes_a_first_adapter_and_stops_a_regression(home):
    first = fake_adapter(home / "adapters" / "dpo", seed=1)
    benchmark(home, "r1", [("standard_rag", 0.1, ""), ("sft", 0.3, "x" * 12), ("dpo", 0.5, first)])
    with dg.instance_for_test() as instance:
        ok = gate_run(instance, home)
        assert ok.success
        served = json.loads((home / "serving" / "current.json").read_text())
        assert (served["method"], served["adapter_id"]) == ("dpo", first)
        worse = fake_adapter(home / "adapters" / "dpo", seed=2)
        benchmark(home, "r2", [("dpo", 0.3, worse), ("serving", 0.5, first)])
        answers(home, "r2", "serving", [1, 1, 0, 1] * 10)
        answers(home, "r2", "dpo", [1, 0, 0, 0] * 10)  # 0.25 vs 0.75 on the same 40 questions, 20 contracts
        blocked = gate_run(instance, home)
    assert not blocked.success
    [check] = blocked.get_asset_check_evaluations()
    assert check.check_name == "candidate_not_worse" and not check.passed
    reason = check.metadata["reason"].value
    assert "40 paired questions (20 contracts)" in reason and reason.endswith("failed")
    assert check.metadata["high"].value < -0.02  # the whole interval lies below the margin
    assert not [
        e
        for e in blocked.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == "serving_model"
    ]
    assert json.loads((home / "serving" / "current.json").read_text())["adapter_id"] == first  # the old one stays
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        decisions = conn.execute(
            "select candidate_adapter_id, passed from promotion_decisions order by created_at"
        ).fetchall()
        table = conn.execute("select adapter_id, is_current from serving_model").fetchall()
    assert decisions == [(first, True), (worse, False)] and table == [(first, True)]
    assert (home / "serving" / "adapters" / worse).is_dir()  # kept for the record, never served


def seed_tables(home, training: list[str], recent: list[str]) -> None:
    with duckdb.connect(str(home / "selfinstruct.duckdb")) as conn:
        conn.execute(
            "create table sft_dataset as select * from (values "
            + ", ".join(f"('e{i}', '{q}')" for i, q in enumerate(training))
            + ") t(example_id, question)"
        )
        conn.execute(
            "create table query_log as select * from (values "
            + ", ".join(f"('q{i}', '{q}', timestamp '2026-11-20 10:00:00')" for i, q in enumerate(recent))
            + ") t(query_id, question, asked_at)"
        )


@pytest.mark.parametrize("recent, drifted", [("same", False), ("other", True)])
def test_drift_report_appends_its_statistics_and_decision(home, recent, drifted):
    training = [f"What is the governing law of agreement number {i}?" for i in range(30)]
    queries = training if recent == "same" else [f"Which recipe uses {i} eggs and saffron rice?" for i in range(30)]
    seed_tables(home, training, queries)
    cfg = {"ops": {"drift_report": {"config": {"min_samples": 10}}}}
    for _ in range(2):
        assert dg.materialize(
            ASSETS, resources=resources(), run_config=cfg, selection=dg.AssetSelection.assets("drift_report")
        ).success
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        rows = conn.execute('select drifted, reasons, "queries_embedding.n_recent" from drift_report').fetchall()
    assert len(rows) == 2 and all(r[0] == drifted and r[2] == 30 for r in rows)
    assert ("queries_embedding: mmd" in rows[0][1]) == drifted


def test_drift_report_follows_its_inputs_by_automation(home):
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(
            defs=defs(), instance=instance, asset_selection=dg.AssetSelection.assets("drift_report")
        )
        assert first.total_requested == 0
        instance.report_runless_asset_event(dg.AssetMaterialization("query_log"))
        later = dg.evaluate_automation_conditions(
            defs=defs(),
            instance=instance,
            cursor=first.cursor,
            asset_selection=dg.AssetSelection.assets("drift_report"),
        )
        assert later.total_requested == 1


def test_the_gate_asks_for_a_new_benchmark_when_the_served_adapter_was_not_in_it(home):
    first = fake_adapter(home / "adapters" / "dpo", seed=1)
    benchmark(home, "r1", [("dpo", 0.5, first)])
    with dg.instance_for_test() as instance:
        assert gate_run(instance, home).success
        later = fake_adapter(home / "adapters" / "dpo", seed=3)
        benchmark(home, "r2", [("dpo", 0.9, later)])  # no "serving" answers in this run
        blocked = gate_run(instance, home)
    [check] = blocked.get_asset_check_evaluations()
    assert not check.passed and "re-materialise benchmark_scores" in check.metadata["reason"].value

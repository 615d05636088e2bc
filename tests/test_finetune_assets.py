"""The fine-tuning group end to end on a tiny random model and a fake judge: data, adapters, benchmark."""

import json

import dagster as dg
import duckdb
from conftest import small_pipeline_config as _config
from fakes import FakeLLMResource

from resources.llm import LMSpec
from resources.project import BaseModelResource, EmbedderResource
from selfinstruct.corpus.spans import verbatim_span
from selfinstruct_assets.definitions import ALL_CHECKS, ASSETS, default_resources
from selfinstruct_assets.loop.jobs import main_job


def _write_inbox(home, rows: list[str]):
    inbox = home / "inbox" / "feedback"
    inbox.mkdir(parents=True)
    (inbox / "a.jsonl").write_text("\n".join(rows) + "\n")


def test_finetune_group_end_to_end(small_cuad, home, tiny):
    resources = {
        **default_resources(),
        "embedder": EmbedderResource(backend="hashing"),
        "base_model": BaseModelResource(path=str(tiny)),
        "llm": FakeLLMResource(generator=LMSpec(model=str(tiny))),
    }
    _write_inbox(
        home,
        [
            json.dumps(
                {
                    "event_id": "e1",
                    "question": "Who are the parties?",
                    "answer": "Acme",
                    "contract_id": "no-such-contract",
                    "score": 1,
                }
            ),
            "{not json",
        ],
    )
    # One instance for every run, as in a deployment: consumers find adapters in their producers' metadata.
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        ASSETS + ALL_CHECKS,
        resources=resources,
        run_config=_config(small_cuad),
        selection=main_job.selection,
        instance=instance,
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    for name in (
        "sft_dataset_held_out",
        "rag_responses_held_out",
        "preference_pairs_held_out",
        "preference_pairs_minimum",
    ):
        assert checks[name], name
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        split = dict(conn.execute("select contract_id, split from cuad_contracts").fetchall())
        for table in ("sft_dataset", "rag_responses", "preference_pairs"):
            cids = [c for (c,) in conn.execute(f"select contract_id from {table}").fetchall()]
            assert cids and {split[c] for c in cids} == {"train"}, table
        assert conn.execute("select count(*) from human_feedback").fetchone() == (0,)
        assert conn.execute("select count(*) from feedback_rejects").fetchone() == (2,)
        origins = {o for (o,) in conn.execute("select distinct origin from rag_responses").fetchall()}
        assert origins == {"base", "sft", "sft_sample_1"}
        pairs = conn.execute("select chosen, rejected, margin from preference_pairs").fetchall()
        assert all(c != r and m >= 0.3 for c, r, m in pairs)
        scores = conn.execute("select method, n, adapter_id, improvement_pct from benchmark_scores").fetchall()
    methods = {m: (n, a) for m, n, a, _ in scores}
    assert set(methods) == {
        "standard_rag",
        "optimized_rag",
        "bm25_sentence",
        "oracle_retrieval",
        "base",
        "sft",
        "dpo",
        "orpo",
        "judge_rerank",
    }  # nothing served yet
    assert len({n for n, _ in methods.values()}) == 1  # every method on the same questions
    assert (
        all(methods[m][1] for m in ("sft", "dpo", "orpo")) and len({methods[m][1] for m in ("sft", "dpo", "orpo")}) == 3
    )
    for name in ("sft", "dpo", "orpo"):
        assert (home / "adapters" / name / "adapter_model.safetensors").is_file()
    assert not (home / "adapters" / "grpo").exists()
    served = json.loads((home / "serving" / "current.json").read_text())  # the first candidate passes its gate
    assert checks["candidate_not_worse"] and served["adapter_id"] == methods[served["method"]][1]

    # Re-materialising the benchmark appends a second set of rows: history stays queryable.
    only = {"ops": {"benchmark_scores": _config(small_cuad)["ops"]["benchmark_scores"]}}
    again = dg.materialize(
        ASSETS + ALL_CHECKS,
        resources=resources,
        run_config=only,
        instance=instance,
        selection=dg.AssetSelection.assets("benchmark_scores", "benchmark_answers"),
    )
    assert again.success
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        runs = conn.execute("select count(distinct run_id), count(*) from benchmark_scores").fetchone()
        second = {
            m
            for (m,) in conn.execute("select method from benchmark_scores where run_id = ?", [again.run_id]).fetchall()
        }
        answers = conn.execute("select count(*) from benchmark_answers where run_id = ?", [again.run_id]).fetchone()
    assert runs == (2, 2 * len(methods) + 1)
    assert second == set(methods) | {"serving"}  # the served adapter is scored on the same questions
    assert answers == (len(second) * methods["sft"][0],)

    # A reviewer corrects the answer to a question no candidate asks: it becomes an SFT row and a pair (issue 25).
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        cid, text = conn.execute(
            "select contract_id, text from cuad_contracts where split = 'train' limit 1"
        ).fetchone()
    quote = " ".join(text[len(text) // 2 :].split()[1:15])
    served = "reviewer: ana; request 0123456789abcdef answered by a1; correction of the served answer: No such clause."
    correction = {"question": "Which clause did the reviewer mark?", "answer": quote, "contract_id": cid, "score": 1}
    row = {"event_id": "0123456789abcdef-correct-0badcafe", **correction, "comment": served, "source": "human"}
    (home / "inbox" / "feedback" / "b.jsonl").write_text(json.dumps(row) + "\n")
    # Too few preferences (one question, one pair at most besides the reviewer's, none from the SFT window rows): DPO
    # and ORPO skip with a reason, the check fails, nothing crashes. (A gold clause against a wrong window differs by a
    # full grade, so a margin alone no longer empties the pairs.)
    few = {
        "ops": {
            "sft_dataset": _config(small_cuad)["ops"]["sft_dataset"],
            "rag_responses": {"config": {**_config(small_cuad)["ops"]["rag_responses"]["config"], "n_questions": 1}},
            "preference_pairs": {"config": {"max_pairs_per_question": 1, "window_pairs": False}},
            "benchmark_scores": _config(small_cuad)["ops"]["benchmark_scores"],
        }
    }
    third = dg.materialize(
        ASSETS + ALL_CHECKS,
        resources=resources,
        run_config=few,
        raise_on_error=False,
        instance=instance,
        selection=dg.AssetSelection.assets(
            "human_feedback",
            "feedback_rejects",
            "sft_dataset",
            "rag_responses",
            "ai_feedback",
            "preference_pairs",
            "dpo_adapter",
            "orpo_adapter",
            "benchmark_scores",
            "benchmark_answers",
        ),
    )
    assert third.success
    md = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in third.get_asset_materialization_events()
    }
    n_pairs = md["preference_pairs"]["dagster/row_count"].value
    assert n_pairs < 4
    assert (md["sft_dataset"]["human_rows"].value, md["sft_dataset"]["feedback_golds"].value) == (1, 1)
    pairs_md = md["preference_pairs"]
    assert (pairs_md["pairs_chosen_human"].value, pairs_md["gold_questions"].value) == (1, 1)
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        [(target,)] = conn.execute("select answer from sft_dataset where source = 'human'").fetchall()
        [(chosen, rejected)] = conn.execute(
            "select chosen, rejected from preference_pairs where chosen_source = 'human'"
        ).fetchall()
    # The target is the window holding the reviewer's quote, the contract's own text; the served answer is rejected.
    assert verbatim_span(target, text) is not None and verbatim_span(chosen, text) is not None
    assert rejected == "No such clause."
    assert all(f"{n_pairs} preference pairs < 4" in md[a]["skipped"].value for a in ("dpo_adapter", "orpo_adapter"))
    assert {e.check_name: e.passed for e in third.get_asset_check_evaluations()}["preference_pairs_minimum"] is False
    assert "benchmark_scores" in md

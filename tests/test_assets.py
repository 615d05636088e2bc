"""The corpus and retrieval assets materialised together on a small CUAD cut, with the hashing embedder."""

import dagster as dg
import duckdb
import pytest

from resources.project import EmbedderResource
from selfinstruct_assets.constants import CORPUS, RETRIEVAL
from selfinstruct_assets.corpus.checks import CORPUS_CHECKS
from selfinstruct_assets.definitions import ASSETS, default_resources, defs
from selfinstruct_assets.retrieval.checks import RETRIEVAL_CHECKS

CHECKS = CORPUS_CHECKS + RETRIEVAL_CHECKS

EXPECTED = {"cuad_contracts", "cuad_annotations", "cuad_rejects", "contract_chunks", "vector_index", "retrieval_eval"}


def run(small_cuad, selection=None, chunk_size=1000):
    resources = default_resources()
    resources["embedder"] = EmbedderResource(backend="hashing")
    config = {
        "ops": {
            "cuad_corpus": {"config": {"uri": str(small_cuad)}},
            "contract_chunks": {"config": {"chunk_size": chunk_size, "chunk_overlap": 100}},
            "retriever_model": {"config": {"enabled": False}},
        }
    }  # its training has its own tests
    if selection is None:
        selection = dg.AssetSelection.groups(CORPUS, RETRIEVAL)
    else:
        ops = ({"contract_chunks"} & set(selection)) | (
            {"cuad_corpus"} if any(s.startswith("cuad_") for s in selection) else set()
        )
        config["ops"] = {k: v for k, v in config["ops"].items() if k in ops}
        selection = dg.AssetSelection.assets(*selection)
    return dg.materialize(ASSETS + CHECKS, resources=resources, run_config=config, selection=selection)


def materializations(result, key):
    return [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == key
    ]


def test_definitions_load_with_every_asset_and_blocking_checks():
    d = defs()
    keys = {k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()}
    assert EXPECTED <= keys
    assert {
        k.to_user_string() for k in d.resolve_job_def("main_job").asset_layer.asset_graph.get_all_asset_keys()
    } >= EXPECTED
    assert all(spec.blocking for c in CHECKS for spec in c.check_specs)


def test_group_materialises_tables_named_after_assets(small_cuad, home):
    result = run(small_cuad)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    with duckdb.connect(str(home / "selfinstruct.duckdb"), read_only=True) as conn:
        tables = {r[0] for r in conn.execute("select table_name from information_schema.tables").fetchall()}
        assert EXPECTED - {"vector_index"} <= tables
        assert conn.execute("select count(*) from cuad_contracts").fetchone()[0] == 12
        assert conn.execute("select count(*) from cuad_annotations").fetchone()[0] == 12 * 41
        methods = {r[0] for r in conn.execute("select distinct method from retrieval_eval").fetchall()}
        assert methods == {"dense_index", "bm25", "hybrid", "seed_dense_5000"}  # fine-tuned rows need retriever_model
        (n,) = conn.execute("select min(n) from retrieval_eval").fetchone()
        assert n > 0
        (bad,) = conn.execute(
            "select count(*) from retrieval_eval where recall_low > recall or recall_high < recall"
        ).fetchone()
        assert bad == 0
    eval_md = materializations(result, "retrieval_eval")[0].metadata
    best = eval_md["best_method"].value
    assert "| method | versus |" in eval_md["paired_recall3"].value
    baselines = {"bm25", "seed_dense_5000"} - {best}
    assert {f"recall3_best_minus_{b}" for b in baselines} | {f"recall3_best_vs_{b}_p" for b in baselines} <= set(
        eval_md
    )
    index_md = materializations(result, "vector_index")[0].metadata
    assert index_md["count"].value == index_md["added"].value > 0


def test_rematerialising_unchanged_chunks_embeds_nothing(small_cuad, home):
    assert run(small_cuad).success
    again = run(small_cuad, selection=["contract_chunks", "vector_index"])
    md = materializations(again, "vector_index")[0].metadata
    assert md["added"].value == 0 and md["removed"].value == 0
    rechunked = run(small_cuad, selection=["contract_chunks", "vector_index"], chunk_size=800)
    md = materializations(rechunked, "vector_index")[0].metadata
    assert md["added"].value > 0 and md["removed"].value > 0
    checks = rechunked.get_asset_check_evaluations()
    assert {e.check_name for e in checks} == {"chunk_ids_unique", "every_contract_chunked", "index_matches_chunks"}
    assert all(e.passed for e in checks)


def test_failing_blocking_check_stops_downstream(small_cuad, home, monkeypatch):
    assert run(small_cuad).success
    with duckdb.connect(str(home / "selfinstruct.duckdb")) as conn:  # a contract that yields no chunk
        conn.execute(
            "insert into cuad_contracts select 'orphan', title, source_file, ' ', 1, sha256, split "
            "from cuad_contracts limit 1"
        )
    result = dg.materialize(
        ASSETS + CHECKS,
        resources={**default_resources(), "embedder": EmbedderResource(backend="hashing")},
        selection=dg.AssetSelection.assets("contract_chunks", "vector_index"),
        raise_on_error=False,
        run_config={"ops": {"contract_chunks": {"config": {"chunk_size": 1000, "chunk_overlap": 100}}}},
    )
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [e.check_name for e in failed] == ["every_contract_chunked"]
    assert not result.success
    assert materializations(result, "vector_index") == []


def test_bad_source_fails_the_run_with_a_clear_message(tmp_path, home):
    bad = tmp_path / "CUAD_v1.zip"
    bad.write_bytes(b"garbage")
    with pytest.raises(Exception, match="is not a readable zip archive"):
        run(bad, selection=["cuad_contracts", "cuad_annotations", "cuad_rejects"])

"""Pairs for retriever fine-tuning, the no-duplicates sampler, and a 2-step fine-tune published by rename."""

import json

import numpy as np
import pytest

from selfinstruct.core.held_out import EvalSplitLeak
from selfinstruct.retrieval.model import packaged_model_path
from selfinstruct.retrieval.pairs import balance, build_pairs, explain_no_pairs
from training.retriever import (
    NoTrainingPairs,
    RetrieverTrainSettings,
    no_duplicate_sampler,
    pair_dataset,
    train_retriever,
)

QUESTIONS = ["Which law governs?", "When does it expire?", "Who are the parties?", "Is there a non-compete?"]


def _chunk(cid, start, end, text=None):
    return {
        "chunk_id": f"{cid}:{start}",
        "contract_id": cid,
        "start": start,
        "end": end,
        "text": text or f"{cid} text {start}-{end}",
    }


def _ann(cid, question, spans, impossible=False):
    return {
        "contract_id": cid,
        "question": question,
        "is_impossible": impossible,
        "answer_starts": [s for s, _ in spans],
        "answer_ends": [e for _, e in spans],
        "answer_texts": ["x"] * len(spans),
    }


def test_pairs_take_the_chunks_that_overlap_a_gold_span_by_half():
    chunks = [_chunk("c1", 0, 100), _chunk("c1", 80, 180), _chunk("c1", 160, 260), _chunk("c2", 0, 100)]
    pairs = build_pairs([_ann("c1", "Q?", [(85, 100)]), _ann("c1", "None?", [], impossible=True)], chunks, {"e1"})
    assert sorted(p["chunk_id"] for p in pairs) == ["c1:0", "c1:80"]  # 85-100 lies in both overlapping windows
    assert all(p["question"] == "Q?" and p["contract_id"] == "c1" for p in pairs)
    # 5 chars of a 100-char span inside chunk c1:160 is less than half: not gold
    assert [p["chunk_id"] for p in build_pairs([_ann("c1", "Q?", [(155, 255)])], chunks[2:3], set())] == ["c1:160"]
    assert build_pairs([_ann("c1", "Q?", [(60, 165)])], chunks[2:3], set()) == []


def test_hard_negative_is_a_same_contract_chunk_touching_no_gold():
    chunks = [
        _chunk("c1", 0, 100, "governing law of delaware"),
        _chunk("c1", 100, 200, "governing law clause heading"),
        _chunk("c1", 200, 300, "payment terms"),
        _chunk("c2", 0, 100, "governing law governing law"),
    ]
    pairs = build_pairs([_ann("c1", "governing law", [(10, 60)])], chunks, set(), hard_negatives=True)
    assert len(pairs) == 1 and pairs[0]["negative"] == "governing law clause heading"


def test_eval_contracts_are_refused_by_name():
    with pytest.raises(EvalSplitLeak, match="held-1"):
        build_pairs([_ann("train-1", "Q?", [(0, 10)]), _ann("held-1", "Q?", [(0, 10)])], [], {"held-1", "held-2"})


def test_no_pairs_says_why_and_training_refuses(tmp_path):
    anns = [_ann("c1", "Q?", [(500, 600)])]
    chunks = [_chunk("c1", 0, 100)]
    assert build_pairs(anns, chunks, set()) == []
    assert "1 with a located gold span" in explain_no_pairs(anns, chunks)
    with pytest.raises(NoTrainingPairs, match="no \\(question, gold chunk\\) pairs"):
        train_retriever([], tmp_path / "model")
    assert not (tmp_path / "model").exists()


def _repeated_pairs(n_contracts=8):
    # CUAD's shape: every contract is asked the same questions.
    return [
        {"question": q, "positive": f"contract {c} clause for {q}", "contract_id": f"c{c}", "chunk_id": f"{c}{i}"}
        for c in range(n_contracts)
        for i, q in enumerate(QUESTIONS)
    ]


def test_no_duplicate_sampler_never_repeats_a_question_in_a_batch():
    pairs = balance(_repeated_pairs(), None)
    ds = pair_dataset(pairs)
    assert ds.column_names == ["anchor", "positive"]  # contract ids would count as duplicate values
    batches = list(no_duplicate_sampler(ds, batch_size=4, seed=3))
    assert sorted(i for b in batches for i in b) == list(range(len(pairs)))
    for b in batches:
        anchors = [pairs[i]["question"] for i in b]
        assert len(anchors) == len(set(anchors))


def test_balance_takes_questions_round_robin():
    pairs = _repeated_pairs()[:-3] + [{"question": "Rare?", "positive": "p", "contract_id": "c", "chunk_id": "r"}]
    taken = balance(pairs, 9, seed=1)
    counts = {q: sum(p["question"] == q for p in taken) for q in {p["question"] for p in pairs}}
    assert counts["Rare?"] == 1 and max(counts.values()) - min(counts.values()) <= 1


def test_settings_are_validated():
    with pytest.raises(ValueError, match="batch_size"):
        RetrieverTrainSettings(batch_size=1)
    with pytest.raises(ValueError, match="precision"):
        RetrieverTrainSettings(precision="fp8")


def test_two_step_fine_tune_changes_embeddings_and_publishes_whole(tmp_path):
    from sentence_transformers import SentenceTransformer

    pairs = _repeated_pairs(4)  # 16 pairs
    settings = RetrieverTrainSettings(
        batch_size=4, max_steps=2, learning_rate=1e-4, max_seq_length=32, precision="float32"
    )
    target = tmp_path / "retriever"
    metrics = train_retriever(pairs, target, settings)
    assert metrics["steps"] == 2 and metrics["pairs"] == 16 and np.isfinite(metrics["final_loss"])
    assert metrics["model_dir"] == str(target) and metrics["seconds"] > 0
    assert (target / "modules.json").is_file() and (target / "model.safetensors").is_file()
    assert json.loads((target / "retriever_metrics.json").read_text())["steps"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["retriever"]  # no temp folder left beside it
    texts = ["Which law governs?", "contract 1 clause for Which law governs?"]
    before = SentenceTransformer(str(packaged_model_path()), device="cpu", local_files_only=True).encode(texts)
    after = SentenceTransformer(str(target), device="cpu", local_files_only=True).encode(texts)
    assert not np.allclose(before, after, atol=1e-4)


def test_a_failed_save_publishes_nothing(tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    def broken_save(self, path, *a, **k):
        (tmp_path / "partial-marker").write_text("save started")
        open(f"{path}/model.safetensors", "w").write("half")
        raise OSError("disk full")

    monkeypatch.setattr(SentenceTransformer, "save", broken_save)
    settings = RetrieverTrainSettings(batch_size=4, max_steps=1, max_seq_length=16, precision="float32")
    with pytest.raises(OSError, match="disk full"):
        train_retriever(_repeated_pairs(2), tmp_path / "retriever", settings)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partial-marker"]


def _write_config(tmp_path, rows, **config):
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"dataset": "rows.jsonl", "out_dir": "models/retriever", **config}))
    return path


def test_cli_trains_the_retriever_from_a_config_file(tmp_path, capsys):
    from training.__main__ import main

    settings = {"batch_size": 4, "max_steps": 1, "max_seq_length": 16, "precision": "float32"}
    config = _write_config(tmp_path, _repeated_pairs(2), settings=settings)
    assert main(["retriever", "--config", str(config)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    target = tmp_path / "models" / "retriever"
    assert metrics["model_dir"] == str(target) and metrics["steps"] == 1 and metrics["pairs"] == 8
    assert json.loads((target / "retriever_metrics.json").read_text())["settings"]["max_seq_length"] == 16


@pytest.mark.parametrize(
    ("rows", "config", "message"),
    [
        (_repeated_pairs(1), {"settings": {"lr": 1}}, "unknown retriever setting(s) lr"),
        (_repeated_pairs(1), {"settings": {"batch_size": 1}}, "batch_size must be >= 2"),
        (_repeated_pairs(1), {"start_adapter": "a"}, "unknown key(s) start_adapter"),
        ([{"question": "Q?"}], {}, "rows.jsonl: row 1 needs 'positive' as a non-empty string"),
        ([{"question": "Q?", "positive": "p", "negative": 3}], {}, "row 1 needs 'negative'"),
    ],
)
def test_cli_names_a_bad_retriever_config(tmp_path, capsys, rows, config, message):
    from training.__main__ import main

    assert main(["retriever", "--config", str(_write_config(tmp_path, rows, **config))]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "models").exists()

"""The trained cross-encoder judge and its agreement with CUAD match (its training rows: test_judge_candidates.py)."""

import json

import numpy as np
import pytest

from selfinstruct.core.metrics import cuad_match
from selfinstruct.judging.trained_judge import TrainedJudge, agreement_report, judge_input
from training.judge import JudgeTrainSettings, train_judge


def test_agreement_report_on_known_inputs():
    perfect = agreement_report([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert perfect == {"agreement": 1.0, "kappa": 1.0, "auroc": 1.0, "n": 4, "n_missing": 0, "threshold": 0.5}
    mixed = agreement_report([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0])
    assert mixed["agreement"] == 0.5 and mixed["kappa"] == pytest.approx(0.0)
    assert mixed["auroc"] == pytest.approx(0.75)  # 3 of the 4 (positive, negative) pairs ordered right
    gaps = agreement_report([0.9, None, 0.1, float("nan")], [1.0, 0.0, 0.0, 1.0])
    assert gaps["n"] == 2 and gaps["n_missing"] == 2 and gaps["kappa"] == 1.0
    assert agreement_report([0.9, 0.8], [1, 1])["auroc"] is None  # one class: AUROC undefined
    with pytest.raises(ValueError, match="2 judge scores but 1"):
        agreement_report([0.1, 0.2], [1])


GOLD = "This Agreement shall be governed by the laws of the State of New York."


def test_judge_input_with_and_without_gold():
    assert judge_input("Q?", ["a", "b"], "cand", use_gold=True) == ("Q?\nReference: a | b", "cand")
    assert judge_input("Q?", ["a"], "cand", use_gold=False) == ("Q?", "cand")


def _examples():
    pos = [
        GOLD,
        "governed by the laws of the State of New York",
        "shall be governed by the laws of New York State",
        "This Agreement shall be governed by the laws of the State of New York. Notices",
    ]
    neg = [
        "Payment is due in thirty days.",
        "Notices shall be sent by mail.",
        "The term begins on the Effective Date.",
        "Each party shall keep the other's information confidential.",
    ]
    q = "Which state's law governs the contract?"
    return [
        {"question": q, "golds": [GOLD], "candidate": c, "label": int(cuad_match(c, [GOLD]))} for c in pos + neg
    ] * 2


def _bce(p, y):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_a_few_steps_move_predictions_toward_the_labels(tmp_path):
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    from selfinstruct.retrieval.model import packaged_model_path

    ex = _examples()
    y = np.array([e["label"] for e in ex], dtype=float)
    assert 0 < y.sum() < len(y)
    pairs = [judge_input(e["question"], e["golds"], e["candidate"], True) for e in ex]
    settings = JudgeTrainSettings(
        max_steps=8, batch_size=8, learning_rate=2e-4, max_length=64, precision="float32", warmup_ratio=0.0
    )
    torch.manual_seed(settings.seed)  # as train_judge does, so the fresh head starts the same
    before = CrossEncoder(
        str(packaged_model_path()), num_labels=1, max_length=64, device="cpu", local_files_only=True
    ).predict(pairs, show_progress_bar=False)
    metrics = train_judge(ex, tmp_path / "judge", settings)
    assert metrics["steps"] == 8 and metrics["model_dir"] == str(tmp_path / "judge")
    assert [p.name for p in tmp_path.iterdir()] == ["judge"]
    judge = TrainedJudge(tmp_path / "judge")
    assert judge.use_gold is True
    after = judge.score([e["question"] for e in ex], [e["candidate"] for e in ex], [e["golds"] for e in ex])
    assert ((after >= 0) & (after <= 1)).all()
    assert _bce(after, y) < _bce(np.asarray(before), y)
    assert (
        after[y == 1].mean() - after[y == 0].mean()
        > np.asarray(before)[y == 1].mean() - np.asarray(before)[y == 0].mean()
    )
    with pytest.raises(ValueError, match="pass golds"):
        judge.score(["q"], ["c"])


def test_training_needs_both_labels(tmp_path):
    with pytest.raises(ValueError, match="both labels"):
        train_judge([e for e in _examples() if e["label"]], tmp_path / "judge")
    assert not (tmp_path / "judge").exists()


def test_only_as_many_questions_as_the_caps_need_are_labelled():
    from training.judge import _enough

    anns = [
        {
            "contract_id": f"c{i}",
            "question": "q",
            "is_impossible": i % 2 == 1,
            "answer_starts": [0] if i % 2 == 0 else [],
        }
        for i in range(100)
    ]
    got = _enough(anns, rows=60, per_question=6, seed=0)
    assert len(got) == 30 and all(not a["is_impossible"] for a in got)  # 3 x 60 rows / 6 per question
    assert got == _enough(anns, rows=60, per_question=6, seed=0)  # seeded
    assert len(_enough(anns, rows=None, per_question=6, seed=0)) == 50  # no cap: every answerable question


def _judge_config(tmp_path, rows, **config):
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "judge.json"
    path.write_text(json.dumps({"dataset": "rows.jsonl", "out_dir": "models/judge", **config}))
    return path


def test_cli_trains_the_judge_from_a_config_file(tmp_path, capsys):
    from training.__main__ import main

    settings = {"max_steps": 2, "batch_size": 4, "max_length": 32, "precision": "float32"}
    assert main(["judge", "--config", str(_judge_config(tmp_path, _examples(), settings=settings))]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model_dir"] == str(tmp_path / "models" / "judge") and metrics["steps"] == 2
    assert TrainedJudge(metrics["model_dir"]).score(["q"], ["c"], [["g"]]).shape == (1,)


@pytest.mark.parametrize(
    ("rows", "config", "message"),
    [
        (_examples(), {"settings": {"use_golds": True}}, "unknown judge setting(s) use_golds"),
        (_examples(), {"out_dir": ""}, "missing out_dir"),
        ([{"question": "q", "candidate": "c", "label": 2}], {}, "rows.jsonl: row 1 needs 'label' 0 or 1"),
        ([{"question": "q", "label": 1}], {}, "row 1 needs 'candidate' as a string"),
        ([{"question": "q", "candidate": "c", "label": 1, "golds": [1]}], {}, "row 1 has 'golds' [1]"),
    ],
)
def test_cli_names_a_bad_judge_config(tmp_path, capsys, rows, config, message):
    from training.__main__ import main

    assert main(["judge", "--config", str(_judge_config(tmp_path, rows, **config))]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "models").exists()

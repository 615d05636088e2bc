"""The serving pointer: candidate choice, the gate, snapshots, promotion, rollback and `selfinstruct promote`."""

import argparse
import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from selfinstruct.serving import registry as serving
from selfinstruct.serving.gate import gate, paired_gate, pick_candidate
from selfinstruct.serving.registry import adapter_dir, current, history, promote, rollback, snapshot_adapter
from selfinstruct_assets.cli.promote import add_promote_parser


def row(method: str, cuad, judge=0.5, run_id="run-1") -> dict:
    return {"method": method, "judge_score": judge, "cuad_match": cuad, "adapter_id": f"{method}-id", "run_id": run_id}


def make_adapter(folder: Path, weights: bytes = b"weights-1", metrics: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "adapter_model.safetensors").write_bytes(weights)
    if metrics:
        (folder / "training_metrics.json").write_text('{"loss": 1.0}')
    return folder


def serve(tmp_path: Path, method: str, adapter_id: str, cuad: float = 0.4) -> dict:
    """Snapshot a fresh adapter for `method` and promote it, as serving_model does."""
    snap = snapshot_adapter(
        make_adapter(tmp_path / "adapters" / method, adapter_id.encode()), tmp_path / "serving", adapter_id
    )
    entry = {
        "method": method,
        "adapter_id": adapter_id,
        "path": str(snap),
        "scores": {"cuad_match": cuad, "judge_score": 0.6},
        "benchmark_run_id": "run-1",
    }
    return promote(tmp_path / "serving", entry, "passed the gate")


def killed(*args):
    raise OSError("killed")


@pytest.fixture
def three(tmp_path) -> list[dict]:  # sft A, then dpo B, then sft C (served)
    return [
        serve(tmp_path, "sft", "aaaaaa111111"),
        serve(tmp_path, "dpo", "aaaaaa222222"),
        serve(tmp_path, "sft", "cccccc333333"),
    ]


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([row("standard_rag", 0.9), row("optimized_rag", 0.95), row("base", 0.8), row("sft", 0.3)], "sft"),
        ([row("sft", 0.4, judge=0.5), row("orpo", 0.4, judge=0.7)], "orpo"),  # same metric: higher judge wins
        ([row("sft", 0.4, judge=None), row("grpo", 0.4, judge=0.1)], "grpo"),  # a missing judge ranks lowest
        ([row("grpo", 0.4, judge=0.5), row("dpo", 0.4, judge=0.5)], "dpo"),  # then the method name
        ([row("sft", None), row("dpo", float("nan")), row("orpo", 0.1)], "orpo"),  # unscored rows are skipped
        ([row("base", 0.5), row("sft", None), row("dpo", float("nan"))], None),
        ([], None),
    ],
)
def test_pick_candidate_takes_the_best_adapter_only(rows, expected):
    assert (pick_candidate(rows) or {}).get("method") == expected


def test_pick_candidate_rejects_rows_of_several_runs_and_unknown_metrics():
    with pytest.raises(ValueError, match="2 benchmark runs"):
        pick_candidate([row("sft", 0.4, run_id="a"), row("dpo", 0.5, run_id="b")])
    with pytest.raises(ValueError, match="no benchmark row has a 'cuad_mach' column"):
        pick_candidate([row("sft", 0.4)], metric="cuad_mach")


@pytest.mark.parametrize(
    "cand, cur, passed",
    [(0.1, None, True), (0.49, 0.50, True), (0.50, 0.52, True), (0.6, 0.5, True), (0.47, 0.50, False)],
)
def test_gate_lets_through_drops_within_the_tolerance_only(cand, cur, passed):
    served = None if cur is None else {"method": "dpo", "scores": {"cuad_match": cur}}  # a promoted entry
    verdict = gate(row("sft", cand), served, tolerance=0.02)
    assert verdict["passed"] is passed and verdict["current"] == cur
    assert verdict["delta"] == (None if cur is None else pytest.approx(cand - cur))
    assert ("nothing is served yet" if cur is None else "within" if passed else "beyond") in verdict["reason"]


@pytest.mark.parametrize("value", [None, float("nan")])
def test_gate_never_passes_a_candidate_without_a_score(value):
    for served in (None, row("sft", 0.0)):
        verdict = gate(row("dpo", value), served)
        assert not verdict["passed"] and "has no cuad_match score" in verdict["reason"]
    verdict = gate(row("orpo", 0.30), row("sft", 0.45))  # and a real failure says why
    assert verdict["reason"] == "orpo cuad_match 0.300 vs served 0.450 (delta -0.150) is beyond the tolerance 0.02"


def per_question(matches, contracts=None):
    return [
        {
            "question_id": f"q{i}",
            "contract_id": (contracts or [f"c{i // 2}" for i in range(len(matches))])[i],
            "cuad_match": m,
        }
        for i, m in enumerate(matches)
    ]


def test_paired_gate_passes_an_equal_candidate_and_stops_a_clear_regression():
    served = per_question([1, 0, 1, 1] * 15)
    same = paired_gate("sft", per_question([1, 0, 1, 1] * 15), served, tolerance=0.02)
    assert same["passed"] and same["delta"] == 0 and same["n_paired"] == 60
    worse = paired_gate("dpo", per_question([0, 0, 1, 0] * 15), served, tolerance=0.02)
    assert not worse["passed"] and worse["high"] < 0 and worse["low"] < -0.02
    assert worse["reason"].startswith(
        "dpo cuad_match: candidate 0.25 vs served 0.75 on 60 paired questions (30 contracts)"
    )  # resampled by contract, not by question


def test_paired_gate_uses_only_questions_both_answered_and_needs_two_contracts():
    served = per_question([1, 1, None, 1])
    cand = per_question([1, 1, 0, 1])[:3] + [{"question_id": "other", "contract_id": "c9", "cuad_match": 0}]
    verdict = paired_gate("sft", cand, served)
    assert verdict["n_paired"] == 2 and not verdict["passed"]  # q0, q1 of one contract: no interval
    assert "no interval" in verdict["reason"]


@pytest.mark.parametrize("tolerance", [-0.01, 1.5, float("nan"), True, "0.02"])
def test_gate_rejects_a_tolerance_outside_0_1(tolerance):
    with pytest.raises(ValueError, match=r"tolerance must be a number in \[0, 1\]"):
        gate(row("sft", 0.4), None, tolerance=tolerance)


def test_snapshot_survives_the_next_training_run_and_is_content_addressed(tmp_path):
    source = make_adapter(tmp_path / "adapters" / "sft")
    snap = snapshot_adapter(source, tmp_path / "serving", "abc123def456")
    assert snap == tmp_path / "serving" / "adapters" / "abc123def456"
    assert sorted(p.name for p in snap.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "training_metrics.json",
    ]
    make_adapter(source, weights=b"weights-2")  # the next run overwrites adapters/sft
    assert (snap / "adapter_model.safetensors").read_bytes() == b"weights-1"
    assert snapshot_adapter(source, tmp_path / "serving", "abc123def456") == snap
    assert (snap / "adapter_model.safetensors").read_bytes() == b"weights-1"
    bare = snapshot_adapter(make_adapter(tmp_path / "b", metrics=False), tmp_path / "serving", "id2")
    assert sorted(p.name for p in bare.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]


def test_snapshot_and_promote_refuse_an_incomplete_adapter_a_bad_id_and_missing_keys(tmp_path):
    source, root = make_adapter(tmp_path / "a"), tmp_path / "serving"
    for adapter_id in ("", "../escape", ".tmp-x", "a/b"):
        with pytest.raises(ValueError, match="adapter_id must be a plain folder name"):
            snapshot_adapter(source, root, adapter_id)
    (source / "adapter_model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="adapter_model.safetensors is missing"):
        snapshot_adapter(source, root, "id1")
    entry = {"method": "sft", "adapter_id": "x", "path": str(source), "scores": {}, "benchmark_run_id": "r"}
    with pytest.raises(ValueError, match="has no adapter_model.safetensors"):
        promote(root, entry, "ok")
    with pytest.raises(ValueError, match="lacks benchmark_run_id"):
        promote(root, {k: v for k, v in entry.items() if k != "benchmark_run_id"}, "ok")
    assert not root.exists()


def test_a_failing_copy_leaves_no_folder_and_no_temp_sibling(tmp_path, monkeypatch):
    real_copy, calls = shutil.copy2, []

    def copy_then_fail(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_copy(src, dst)

    monkeypatch.setattr(shutil, "copy2", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        snapshot_adapter(make_adapter(tmp_path / "a"), tmp_path / "serving", "id1")
    assert len(calls) == 2 and list((tmp_path / "serving" / "adapters").iterdir()) == []


def test_promote_stamps_the_entry_and_points_current_at_it(tmp_path):
    entry = serve(tmp_path, "dpo", "aaaaaa111111", cuad=0.42)
    assert current(tmp_path / "serving") == entry == history(tmp_path / "serving")[-1]
    assert entry["reason"] == "passed the gate" and len(entry["entry_id"]) == 10
    assert datetime.fromisoformat(entry["promoted_at"]).utcoffset().total_seconds() == 0


def test_promote_appends_history_before_publishing_current(tmp_path, monkeypatch):
    first = serve(tmp_path, "sft", "aaaaaa111111")
    monkeypatch.setattr(serving.os, "replace", killed)
    with pytest.raises(OSError, match="killed"):
        serve(tmp_path, "dpo", "bbbbbb222222")
    root = tmp_path / "serving"
    assert [e["adapter_id"] for e in history(root)] == ["aaaaaa111111", "bbbbbb222222"]
    assert current(root) == first  # still the old, complete document
    assert sorted(p.name for p in root.iterdir()) == ["adapters", "current.json", "history.jsonl"]  # no temp file


def test_current_json_always_parses_and_a_torn_history_line_is_dropped(tmp_path):
    root = tmp_path / "serving"
    assert current(root) is None and history(root) == []
    serve(tmp_path, "sft", "aaaaaa111111")
    with open(root / "history.jsonl", "a") as f:
        f.write('{"entry_id": "torn", "meth')  # an append killed mid-write
    assert len(history(root)) == 1
    entry = serve(tmp_path, "dpo", "bbbbbb222222")
    assert json.loads((root / "current.json").read_text()) == entry
    assert [e["adapter_id"] for e in history(root)] == ["aaaaaa111111", "bbbbbb222222"]
    (root / "history.jsonl").write_text("not json\n" + (root / "history.jsonl").read_text())
    with pytest.raises(ValueError, match="line 1 is not JSON"):
        history(root)


@pytest.mark.parametrize(
    "to, adapter_id",
    [("previous", "aaaaaa222222"), ("sft", "aaaaaa111111"), ("dpo", "aaaaaa222222"), ("aaaaaa1", "aaaaaa111111")],
)
def test_rollback_targets(tmp_path, three, to, adapter_id):
    root = tmp_path / "serving"
    entry = rollback(root, to)
    assert entry["adapter_id"] == adapter_id and current(root) == entry == history(root)[-1]
    assert entry["entry_id"] not in {e["entry_id"] for e in three}
    assert entry["reason"].startswith("rollback to ") and len(history(root)) == 4


def test_rollback_by_entry_id_and_previous_toggling_and_a_no_op(tmp_path, three):
    root = tmp_path / "serving"
    assert rollback(root, "cccccc") == three[-1] and len(history(root)) == 3
    assert rollback(root, three[0]["entry_id"])["adapter_id"] == "aaaaaa111111"
    assert rollback(root, "previous")["adapter_id"] == "cccccc333333"
    assert rollback(root, "previous")["adapter_id"] == "aaaaaa111111"
    serve(tmp_path, "sft", "aaaaaa111111")  # the served adapter promoted again: "previous" looks past it
    assert rollback(root, "previous")["adapter_id"] == "cccccc333333"
    assert three[0]["path"] == "adapters/aaaaaa111111"  # relative to the serving root: a moved home still serves
    shutil.rmtree(adapter_dir(root, three[0]))  # a snapshot deleted by hand is never pointed at again
    with pytest.raises(ValueError, match="has no adapter_model.safetensors"):
        rollback(root, "previous")


@pytest.mark.parametrize(
    "to, message",
    [
        ("aaaaaa", "starts several adapter_ids"),
        ("zzzzzz", "no promoted entry"),
        ("aaa", "at least 6 characters"),
        ("orpo", "other than the served one"),
    ],
)
def test_rollback_errors_list_the_entries(tmp_path, three, to, message):
    with pytest.raises(ValueError, match=message) as info:
        rollback(tmp_path / "serving", to)
    assert "aaaaaa111111" in str(info.value) and "aaaaaa222222" in str(info.value)
    assert current(tmp_path / "serving") == three[-1]


def run_cli(tmp_path: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="selfinstruct")
    add_promote_parser(parser.add_subparsers(dest="command", required=True), lambda: tmp_path)
    args = parser.parse_args(["promote", *argv])
    return args.func(args)


def test_cli_list_marks_the_served_entry_and_to_prints_the_new_one(tmp_path, three, capsys):
    assert run_cli(tmp_path, "--list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [c.strip() for c in lines[0].split("|")][:4] == ["", "entry_id", "method", "adapter_id"]
    starred = [line for line in lines if line.startswith("*")]
    assert len(starred) == 1 and three[-1]["entry_id"] in starred[0] and "0.400" in starred[0]
    assert lines[-1] == "(3 rows)"
    assert run_cli(tmp_path, "--to", "previous") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == current(tmp_path / "serving") and printed["adapter_id"] == "aaaaaa222222"


@pytest.mark.parametrize(
    "argv, promoted", [(("--list",), False), (("--to", "previous"), False), (("--to", "zzzzzz"), True)]
)
def test_cli_exits_1_naming_list_when_nothing_is_promoted_or_matches(tmp_path, capsys, argv, promoted):
    if promoted:
        serve(tmp_path, "sft", "aaaaaa111111")
    assert run_cli(tmp_path, *argv) == 1
    err = capsys.readouterr().err
    assert "selfinstruct promote --list" in err and ("'zzzzzz'" in err if promoted else "nothing yet" in err)


@pytest.mark.parametrize("argv", [(), ("--list", "--to", "sft")])
def test_cli_needs_exactly_one_of_to_and_list(tmp_path, argv):
    with pytest.raises(SystemExit, match="2"):
        run_cli(tmp_path, *argv)


def test_the_loop_serves_only_a_candidate_that_passes(tmp_path):
    root = tmp_path / "serving"
    for run_id, cuad, adapter_id, served in (
        ("run-1", 0.40, "aaaaaa111111", "aaaaaa111111"),
        ("run-2", 0.30, "bbbbbb222222", "aaaaaa111111"),
        ("run-3", 0.39, "bbbbbb333333", "bbbbbb333333"),
    ):
        best = pick_candidate(
            [row("base", 0.9, run_id=run_id), {**row("orpo", cuad, run_id=run_id), "adapter_id": adapter_id}]
        )
        if (verdict := gate(best, current(root)))["passed"]:
            snap = snapshot_adapter(make_adapter(tmp_path / "adapters" / "orpo", adapter_id.encode()), root, adapter_id)
            promote(
                root,
                {**best, "path": str(snap), "scores": {"cuad_match": cuad}, "benchmark_run_id": run_id},
                verdict["reason"],
            )
        assert current(root)["adapter_id"] == served
    assert [e["benchmark_run_id"] for e in history(root)] == ["run-1", "run-3"]

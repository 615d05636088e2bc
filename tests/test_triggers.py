"""The sensors' decisions, Dagster-free: counting new feedback rows, new files, new contracts and drift."""

import json
import os

from selfinstruct.core.inbox import Inbox
from selfinstruct.corpus.cuad import contract_id_for
from selfinstruct.intake.triggers import contracts_decision, drift_decision, feedback_decision, new_files_decision

CONTRACTS = {"c1": "train", "c2": "eval"}
NOW = 1_900_000_000.0


def rating(event_id: str, **over) -> str:
    row = {
        "event_id": event_id,
        "question": "Who may terminate?",
        "answer": "Either party.",
        "contract_id": "c1",
        "score": 0.5,
        **over,
    }
    return json.dumps(row)


def drop(folder, name: str, lines: list[str], newline: bool = True, age_s: float = 0.0):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines) + ("\n" if newline else ""))
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def tick(folder, cursor, min_rows=3, max_wait_s=3600.0, now=NOW):
    inbox = Inbox(str(folder))
    return feedback_decision(inbox.files(), inbox.read, CONTRACTS, cursor, now, min_rows, max_wait_s)


def test_feedback_waits_for_enough_valid_rows_then_requests_one_run(tmp_path):
    assert tick(tmp_path, None).reason == "no new valid feedback rows"
    drop(tmp_path, "a.jsonl", [rating("e1"), rating("e2"), rating("bad", score=9), "{not json"])
    first = tick(tmp_path, None)
    assert not first.request and first.new_rows == 2 and "2 new valid feedback rows < 3" in first.reason
    drop(tmp_path, "b.jsonl", [rating("e3")])
    second = tick(tmp_path, first.cursor)
    assert second.request and second.new_rows == 3 and second.items == ["a.jsonl", "b.jsonl"]
    assert second.run_key.startswith("feedback:")
    assert tick(tmp_path, second.cursor).reason == "no new valid feedback rows"  # consumed, never counted twice


def test_a_duplicate_file_requests_no_second_run(tmp_path):
    drop(tmp_path, "a.jsonl", [rating("e1"), rating("e2"), rating("e3")])
    done = tick(tmp_path, None)
    assert done.request
    drop(tmp_path, "0-copy.jsonl", [rating("e1"), rating("e2"), rating("e3")])  # sorts before the original
    again = tick(tmp_path, done.cursor, min_rows=1)
    assert not again.request and again.new_rows == 0


def test_appended_rows_of_a_consumed_file_count_alone(tmp_path):
    drop(tmp_path, "a.jsonl", [rating("e1"), rating("e2"), rating("e3")])
    done = tick(tmp_path, None)
    drop(tmp_path, "a.jsonl", [rating("e1"), rating("e2"), rating("e3"), rating("e4")])
    later = tick(tmp_path, done.cursor, min_rows=2)
    assert not later.request and later.new_rows == 1


def test_a_half_written_file_is_ignored_until_it_settles(tmp_path):
    drop(tmp_path, "a.jsonl", [rating("e1"), rating("e2"), rating("e3")[:20]], newline=False)
    first = tick(tmp_path, None, min_rows=2)
    assert not first.request and first.new_rows == 0  # no trailing newline and not seen before
    drop(tmp_path, "a.jsonl", [rating("e1"), rating("e2"), rating("e3")], newline=False)
    assert not tick(tmp_path, first.cursor, min_rows=2).request  # it changed since the last tick
    settled = tick(tmp_path, tick(tmp_path, first.cursor, min_rows=2).cursor, min_rows=2)
    assert settled.request and settled.new_rows == 3


def test_the_oldest_waiting_row_triggers_after_max_wait(tmp_path):
    drop(tmp_path, "a.jsonl", [rating("e1")], age_s=100)
    assert not tick(tmp_path, None, min_rows=20, max_wait_s=300).request
    late = tick(tmp_path, None, min_rows=20, max_wait_s=60)
    assert late.request and "waiting 100 s >= 60 s" in late.reason


def test_new_files_decision_takes_new_and_changed_files_once(tmp_path):
    inbox = Inbox(str(tmp_path))
    assert not new_files_decision(inbox.files(), inbox.read, None, "query").request
    drop(tmp_path, "q1.jsonl", ["{}"])
    first = new_files_decision(inbox.files(), inbox.read, None, "query")
    assert first.request and first.items == ["q1.jsonl"]
    assert not new_files_decision(inbox.files(), inbox.read, first.cursor, "query").request
    drop(tmp_path, "q1.jsonl", ["{}", "{}"])
    changed = new_files_decision(inbox.files(), inbox.read, first.cursor, "query")
    assert changed.request and changed.run_key != first.run_key


def test_contracts_decision_indexes_new_and_changed_texts_and_rejects_the_rest(tmp_path):
    inbox = Inbox(str(tmp_path), suffixes=(".txt", ".zip"))
    (tmp_path / "New Supply Agreement.txt").write_text("This Supply Agreement is made between A and B.\n")
    (tmp_path / "Copy.txt").write_text("Known text of a CUAD contract.\n")
    (tmp_path / "Cuad One.txt").write_text("A changed text under a CUAD contract's name.\n")
    import hashlib

    known = {
        "k1": ("train", hashlib.sha256(b"Known text of a CUAD contract.\n").hexdigest()),
        contract_id_for("Cuad One.txt"): ("eval", "0" * 64),
    }
    d, rejects = contracts_decision(inbox, None, known, cuad_ids={"k1", contract_id_for("Cuad One.txt")})
    assert d.request and [cid for cid, _ in d.items] == [contract_id_for("New Supply Agreement.txt")]
    reasons = sorted(r["reason"] for r in rejects)
    assert reasons[0].startswith("contract_id") and "belongs to a CUAD contract" in reasons[0]
    assert reasons[1] == "duplicate contract: same text as k1"
    again, _ = contracts_decision(inbox, d.cursor, known, cuad_ids={"k1"})
    assert not again.request and again.reason == "no new complete contract files"


def test_a_contract_without_final_newline_is_taken_once_it_settled(tmp_path):
    inbox = Inbox(str(tmp_path), suffixes=(".txt", ".zip"))
    path = tmp_path / "Late Supply Agreement.txt"
    path.write_text("This Supply Agreement is made between A and B.")  # no final newline, like most contracts
    os.utime(path, (NOW, NOW))
    fresh, _ = contracts_decision(inbox, None, {}, cuad_ids=set(), now=NOW + 2)
    assert not fresh.request  # modified 2 s ago: maybe still being copied
    settled, _ = contracts_decision(inbox, None, {}, cuad_ids=set(), now=NOW + 15)
    assert settled.request and [cid for cid, _ in settled.items] == [contract_id_for(path.name)]


def test_drift_requests_regeneration_once_per_report_and_respects_the_cooldown():
    assert drift_decision({}, None, False, "", NOW, 600).reason == "no new drift_report"
    calm = drift_decision({}, 5, False, "", NOW, 600)
    assert not calm.request and "no drift" in calm.reason
    hot = drift_decision(json.loads(calm.cursor), 6, True, "queries_embedding: mmd 0.3 > 0.1", NOW, 600)
    assert hot.request and hot.run_key == "drift:6"
    assert not drift_decision(json.loads(hot.cursor), 6, True, "x", NOW + 1000, 600).request  # same report
    cooling = drift_decision(json.loads(hot.cursor), 7, True, "x", NOW + 100, 600)
    assert not cooling.request and "cooldown" in cooling.reason
    assert drift_decision(json.loads(cooling.cursor), 8, True, "x", NOW + 700, 600).request

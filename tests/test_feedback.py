"""The feedback inbox: validation, score normalisation, complete-file reading, atomic writes and the CLI."""

import json
import os
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from selfinstruct.core.inbox import Inbox
from selfinstruct.intake.feedback import (
    FEEDBACK_COLUMNS,
    FeedbackError,
    feedback_inbox,
    parse_feedback_line,
    read_feedback_bytes,
    read_feedback_file,
    read_feedback_inbox,
    write_feedback_file,
)
from selfinstruct.intake.jsonl import REJECT_COLUMNS

CONTRACTS = {"c-train": "train", "c-eval": "eval"}


def row(**over) -> dict:
    base = {
        "event_id": "e1",
        "question": "Who may terminate?",
        "answer": "Either party.",
        "contract_id": "c-train",
        "score": 0.5,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def line(**over) -> str:
    return json.dumps(row(**over))


def drop(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"event_id": "e1", ', "invalid JSON"),
        ("[1, 2]", "not a JSON object (got array)"),
        (line(question=...), "missing field question"),
        (line(score=...), "missing field score"),
        (line(score="4"), "wrong type for score (expected a number, got string)"),
        (line(score=True), "wrong type for score (expected a number, got boolean)"),
        (line(answer=3), "wrong type for answer (expected a string, got number)"),
        (line(comment=None), "wrong type for comment (expected a string, got null)"),
        (line(score=-0.1), "score -0.1 is out of range"),
        (line(score=5.5), "score 5.5 is out of range"),
        ('{"event_id": "e1", "question": "q", "answer": "a", "contract_id": "c-train", "score": NaN}', "NaN"),
        (line(score=2, scale="0-1"), "out of range for scale '0-1'"),
        (
            line(contract_id="c-missing"),
            "unknown contract_id 'c-missing': it must be a contract_id from cuad_contracts",
        ),
        (line(question="x" * 4001), "oversize question: 4001 chars, at most 4000"),
        (line(answer="x" * 4001), "oversize answer"),
        (line(comment="x" * 2001), "oversize comment: 2001 chars, at most 2000"),
        (line(scroe=1), "unknown field(s) 'scroe'"),
        (line(file="a.jsonl", line=3), "unknown field(s) 'file', 'line'"),
        (line(question="  "), "empty question"),
        (line(answer=""), "empty answer"),
        (line(event_id=""), "empty event_id"),
        (line(source="robot"), "wrong value for source: 'robot'"),
        (line(scale="1-10"), "wrong value for scale: '1-10'"),
    ],
)
def test_bad_rows_are_rejected_with_their_reason(text, reason):
    with pytest.raises(FeedbackError) as err:
        parse_feedback_line(text, CONTRACTS)
    assert reason in str(err.value)


def test_out_of_range_reason_names_the_value_and_the_allowed_ranges():
    with pytest.raises(FeedbackError, match=r"score 7 is out of range: allowed are 0 to 1, or 1 to 5"):
        parse_feedback_line(line(score=7), CONTRACTS)
    with pytest.raises(FeedbackError, match=r"score 7 is out of range for scale '1-5': allowed are 1 to 5"):
        parse_feedback_line(line(score=7, scale="1-5"), CONTRACTS)


@pytest.mark.parametrize(
    "score, scale, expected",
    [
        (0.5, None, 0.5),
        (0, None, 0.0),
        (1, None, 1.0),
        (4, None, 0.75),
        (5, None, 1.0),
        (1.5, None, 0.125),
        (1, "1-5", 0.0),
        (3, "1-5", 0.5),
        (1, "0-1", 1.0),
        (0.25, "0-1", 0.25),
    ],
)
def test_scores_are_normalised_to_0_1(score, scale, expected):
    parsed = parse_feedback_line(line(score=score, scale=scale if scale else ...), CONTRACTS)
    assert parsed["score"] == pytest.approx(expected) and isinstance(parsed["score"], float)


def test_a_valid_row_gets_defaults_and_only_the_feedback_fields():
    parsed = parse_feedback_line(line(score=4), CONTRACTS)
    assert parsed == {
        "event_id": "e1",
        "question": "Who may terminate?",
        "answer": "Either party.",
        "contract_id": "c-train",
        "score": 0.75,
        "comment": "",
        "source": "human",
    }
    assert parse_feedback_line(line(source="ai", comment="ok"), CONTRACTS)["source"] == "ai"


def test_inbox_reads_only_complete_files_in_name_order(tmp_path):
    inbox = feedback_inbox(tmp_path)
    assert inbox == tmp_path / "inbox" / "feedback"
    assert read_feedback_inbox(inbox, CONTRACTS) == ([], [])  # no folder yet
    drop(inbox, "b.jsonl", [line(event_id="b1")])
    drop(inbox, "a.jsonl", [line(event_id="a1"), "", "   ", line(event_id="a2", contract_id="c-eval", score=2)])
    drop(inbox, "c.jsonl.tmp", [line(event_id="t1"), '{"half": '])  # still being written
    drop(inbox, ".d.jsonl", ["garbage"])  # hidden
    drop(inbox, "notes.txt", ["garbage"])
    rows, rejects = read_feedback_inbox(inbox, CONTRACTS)
    assert rejects == []
    assert [(r["event_id"], r["file"], r["line"]) for r in rows] == [
        ("a1", "a.jsonl", 1),
        ("a2", "a.jsonl", 4),
        ("b1", "b.jsonl", 1),
    ]
    assert all(tuple(r) == FEEDBACK_COLUMNS for r in rows)
    assert rows[1]["contract_id"] == "c-eval" and rows[1]["score"] == 0.25  # eval-split rows are kept


def test_duplicate_event_ids_keep_the_first_and_name_where_it_was(tmp_path):
    drop(tmp_path, "1.jsonl", [line(event_id="x", answer="first"), line(event_id="y", score=9)])
    drop(tmp_path, "2.jsonl", [line(event_id="y"), line(event_id="x", answer="second"), line(event_id="y")])
    rows, rejects = read_feedback_inbox(tmp_path, CONTRACTS)
    assert [(r["event_id"], r["file"], r.get("answer")) for r in rows] == [
        ("x", "1.jsonl", "first"),
        ("y", "2.jsonl", "Either party."),
    ]
    assert [(r["file"], r["line"]) for r in rejects] == [("1.jsonl", 2), ("2.jsonl", 2), ("2.jsonl", 3)]
    assert "out of range" in rejects[0]["reason"]  # an invalid row does not claim its event id
    assert rejects[1]["reason"] == "duplicate event_id 'x' (already seen in file 1.jsonl line 1)"
    assert rejects[2]["reason"] == "duplicate event_id 'y' (already seen in file 2.jsonl line 1)"
    assert all(tuple(r) == REJECT_COLUMNS for r in rejects)


def test_seen_event_ids_are_rejected_as_duplicates(tmp_path):
    drop(tmp_path, "1.jsonl", [line(event_id="old"), line(event_id="new")])
    rows, rejects = read_feedback_inbox(tmp_path, CONTRACTS, seen_event_ids=iter(["old"]))
    assert [r["event_id"] for r in rows] == ["new"]
    assert rejects[0]["line"] == 1 and rejects[0]["reason"].startswith("duplicate event_id 'old'")
    assert "seen_event_ids" in rejects[0]["reason"]


def test_non_utf8_and_long_lines_are_rejects_with_truncated_raw(tmp_path):
    tmp_path.joinpath("1.jsonl").write_bytes(
        b"\xef\xbb\xbf"
        + line(event_id="bom").encode()
        + b"\r\n"
        + b'{"question": "caf\xe9"}\n'
        + b"x" * 900
        + b"\n"
        + line(event_id="ok").encode()
    )
    os.utime(tmp_path / "1.jsonl", (0, 0))  # no final newline: read once it settled (see the test below)
    rows, rejects = read_feedback_inbox(tmp_path, CONTRACTS)
    assert [(r["event_id"], r["line"]) for r in rows] == [("bom", 1), ("ok", 4)]
    assert rejects[0]["line"] == 2 and rejects[0]["reason"] == "not valid UTF-8: byte 0xe9 at position 17"
    assert rejects[0]["raw"] == '{"question": "caf\ufffd"}'
    assert rejects[1]["reason"].startswith("invalid JSON") and rejects[1]["raw"] == "x" * 500


def test_write_feedback_file_is_atomic_and_round_trips(tmp_path):
    inbox = feedback_inbox(tmp_path)
    parsed = [
        parse_feedback_line(line(event_id=f"e{i}", score=s, comment="né\u2028x"), CONTRACTS)
        for i, s in enumerate([1, 4, 0.2])
    ]
    first = write_feedback_file(inbox, parsed)
    second = write_feedback_file(inbox, parsed[:1])
    assert first != second and first.name.endswith(".jsonl") and second.name.endswith(".jsonl")
    assert sorted(p.name for p in inbox.iterdir()) == sorted([first.name, second.name])  # no temp file left
    rows, rejects = read_feedback_file(first, CONTRACTS)
    assert rejects == [] and [{k: r[k] for k in parsed[0]} for r in rows] == parsed
    assert [r["score"] for r in rows] == [1.0, 0.75, 0.2] and rows[0]["comment"] == "né\u2028x"
    rows, rejects = read_feedback_inbox(inbox, CONTRACTS)
    assert len(rows) == 3 and [r["reason"][:26] for r in rejects] == ["duplicate event_id 'e0' (a"]
    with pytest.raises(ValueError):
        write_feedback_file(inbox, [{**parsed[0], "secret": "x"}])
    with pytest.raises(ValueError):
        write_feedback_file(inbox, [])
    assert len(list(inbox.iterdir())) == 2


def test_read_feedback_bytes_checks_one_file_and_shares_seen_ids():
    data = (line(event_id="a") + "\n" + line(event_id="b", score=9) + "\n").encode()
    rows, rejects = read_feedback_bytes("one.jsonl", data, CONTRACTS, {"a"})
    assert rows == [] and [(r["file"], r["line"]) for r in rejects] == [("one.jsonl", 1), ("one.jsonl", 2)]
    assert "seen_event_ids" in rejects[0]["reason"] and "out of range" in rejects[1]["reason"]
    seen: dict[str, str] = {}
    assert len(read_feedback_bytes("one.jsonl", data, CONTRACTS, seen)[0]) == 1
    assert seen == {"a": "in file one.jsonl line 1"}  # a dict grows, so the next file sees "a"
    rows, rejects = read_feedback_bytes("two.jsonl", data, CONTRACTS, seen)
    assert rows == [] and rejects[0]["reason"] == "duplicate event_id 'a' (already seen in file one.jsonl line 1)"


def test_a_local_inbox_object_reads_like_its_folder(tmp_path):
    drop(tmp_path, "1.jsonl", [line(event_id="x"), "oops"])
    drop(tmp_path, "2.json", [line(event_id="y")])
    assert read_feedback_inbox(Inbox(str(tmp_path)), CONTRACTS) == read_feedback_inbox(tmp_path, CONTRACTS)
    rows, rejects = read_feedback_inbox(str(tmp_path), CONTRACTS)
    assert [r["event_id"] for r in rows] == ["x"] and [r["line"] for r in rejects] == [2]
    written = write_feedback_file(Inbox(str(tmp_path)), rows)
    assert isinstance(written, str) and Path(written).parent == tmp_path and written.endswith(".jsonl")


@pytest.fixture
def s3(monkeypatch):
    # Fake credentials so nothing can reach a real account; moto answers every call.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="feedback-inbox")
        yield client


def test_s3_inbox_round_trips_written_rows(s3):
    inbox = Inbox("s3://feedback-inbox/in/")
    assert read_feedback_inbox(inbox, CONTRACTS) == ([], [])  # empty prefix
    parsed = [
        parse_feedback_line(line(event_id=f"e{i}", score=s, comment="né\u2028x"), CONTRACTS)
        for i, s in enumerate([1, 4, 0.2])
    ]
    first = write_feedback_file(inbox, parsed)
    assert isinstance(first, str) and first.startswith("s3://feedback-inbox/in/") and first.endswith(".jsonl")
    for key, body in [
        ("in/zz.jsonl.tmp", "half"),
        ("in/old/a.jsonl", line(event_id="old")),  # unfinished, deeper
        ("in/zz.jsonl", line(event_id="e1") + "\nnope\n"),
    ]:
        s3.put_object(Bucket="feedback-inbox", Key=key, Body=body.encode())
    rows, rejects = read_feedback_inbox(inbox, CONTRACTS)
    assert [{k: r[k] for k in parsed[0]} for r in rows] == parsed
    assert rows[0]["file"] == first.rsplit("/", 1)[1] and [r["line"] for r in rows] == [1, 2, 3]
    assert [(r["file"], r["line"]) for r in rejects] == [("zz.jsonl", 1), ("zz.jsonl", 2)]
    assert rejects[0]["reason"].startswith("duplicate event_id 'e1' (already seen in file 2")
    assert rejects[1]["reason"].startswith("invalid JSON")


# --- the CLI -----------------------------------------------------------------------------------------------


def test_a_line_still_being_written_waits_for_its_end_as_the_sensor_does(tmp_path):
    import time

    from selfinstruct.intake.jsonl import SETTLE_S

    path = tmp_path / "ratings.jsonl"
    whole = line(event_id="b")
    path.write_bytes((line(event_id="a") + "\n" + whole[:25]).encode())  # a writer appending, mid-line
    rows, rejects = read_feedback_inbox(tmp_path, CONTRACTS)
    assert [r["event_id"] for r in rows] == ["a"] and rejects == []  # the fragment is neither a row nor a reject

    path.write_bytes((line(event_id="a") + "\n" + whole).encode())  # its end came, still no newline
    assert [r["event_id"] for r in read_feedback_inbox(tmp_path, CONTRACTS)[0]] == ["a"]
    settled = time.time() - SETTLE_S - 1  # unchanged that long: a file that simply lacks a final newline
    os.utime(path, (settled, settled))
    rows, rejects = read_feedback_inbox(tmp_path, CONTRACTS)
    assert [r["event_id"] for r in rows] == ["a", "b"] and rejects == []

    path.write_bytes((line(event_id="a") + "\n" + whole[:25]).encode())
    os.utime(path, (settled, settled))  # a fragment nobody finishes is rejected once it settled
    rows, rejects = read_feedback_inbox(tmp_path, CONTRACTS)
    assert [r["line"] for r in rejects] == [2] and rejects[0]["reason"].startswith("invalid JSON")

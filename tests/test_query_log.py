"""The production query log: row validation, timestamp normalisation, ids, duplicates and complete-file reading."""

import json
import os
import time
from datetime import UTC, datetime

import pytest

from selfinstruct.core.inbox import Inbox
from selfinstruct.intake.jsonl import REJECT_COLUMNS
from selfinstruct.intake.queries import (
    QUERY_COLUMNS,
    QueryLogError,
    default_query_id,
    parse_query_line,
    parse_timestamp,
    read_query_inbox,
)

CONTRACTS = {"c-train": "train", "c-eval": "eval"}
NOW = datetime(2026, 5, 1, 12, 0, 0)  # naive UTC, like asked_at


def row(**over) -> dict:
    base = {"question": "Who may terminate?", "contract_id": "c-train", "timestamp": "2026-05-01T10:00:00Z"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def line(**over) -> str:
    return json.dumps(row(**over))


def drop(folder, name: str, lines: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(x + "\n" for x in lines), encoding="utf-8")


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"question": ', "invalid JSON"),
        ('"just text"', "not a JSON object (got string)"),
        (line(latency_s=0).replace("0}", "1" * 5000 + "}"), "invalid JSON: Exceeds the limit (4300 digits)"),
        (line(question=...), "missing field question"),
        (line(contract_id=...), "missing field contract_id"),
        (line(timestamp=...), "missing field timestamp"),
        (line(question=7), "wrong type for question (expected a string, got number)"),
        (line(answer=None), "wrong type for answer (expected a string, got null)"),
        (line(query_id=12), "wrong type for query_id (expected a string, got number)"),
        (line(latency_s="0.3"), "wrong type for latency_s (expected a number, got string)"),
        (line(latency_s=True), "wrong type for latency_s (expected a number, got boolean)"),
        (line(timestamp=True), "wrong type for timestamp (expected an ISO 8601 string or POSIX seconds, got boolean)"),
        (line(timestamp=None), "wrong type for timestamp"),
        (line(question=" \t"), "empty question"),
        (line(query_id=""), "empty query_id"),
        (line(question="x" * 4001), "oversize question: 4001 chars, at most 4000 allowed"),
        (line(answer="x" * 4001), "oversize answer: 4001 chars"),
        (line(query_id="q" * 201), "oversize query_id: 201 chars, at most 200"),
        (line(qestion="typo"), "unknown field(s) 'qestion'; allowed: question, contract_id, timestamp, query_id"),
        (line(file="a.jsonl", line=2), "unknown field(s) 'file', 'line'"),
        (
            line(contract_id="c-missing"),
            "unknown contract_id 'c-missing': it must be a contract_id from cuad_contracts",
        ),
        (line(timestamp="yesterday"), "bad timestamp 'yesterday': expected ISO 8601"),
        (line(timestamp=""), "bad timestamp ''"),
        (line(timestamp="1714564800"), "bad timestamp '1714564800'"),  # seconds must be a JSON number
        (line(timestamp="2026-05-01T12:00:00+25:00"), "bad timestamp"),
        (line(timestamp=1e300), "bad timestamp 1e+300"),
        (line(contract_id="c-train").replace('"2026-05-01T10:00:00Z"', "NaN"), "bad timestamp NaN"),
        (
            line(timestamp="2026-05-02T12:00:01Z"),
            "future timestamp '2026-05-02T12:00:01Z': 2026-05-02T12:00:01 UTC is "
            "more than 1 day after now (2026-05-01T12:00:00 UTC)",
        ),
        (line(timestamp=1777723201), "future timestamp 1777723201"),  # 2026-05-02T12:00:01Z
        (line(timestamp=1777723201000), "bad timestamp 1777723201000"),  # milliseconds: beyond year 9999
        (line(latency_s=-0.5), "latency_s -0.5 is out of range: it must be a finite number of seconds, at least 0"),
        (line(contract_id="c-train").replace("}", ', "latency_s": Infinity}'), "latency_s Infinity is out of range"),
        (line(latency_s=10**400), "latency_s 1000000000"),  # too big for a float
    ],
)
def test_bad_rows_are_rejected_with_their_reason(text, reason):
    with pytest.raises(QueryLogError) as err:
        parse_query_line(text, CONTRACTS, now=NOW)
    assert reason in str(err.value)


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-05-01T10:00:00Z",
        "2026-05-01T10:00:00+00:00",
        "2026-05-01T12:00:00+02:00",
        "2026-05-01T05:30:00-04:30",
        "2026-05-01T10:00:00",
        "2026-05-01 10:00:00",
        "20260501T100000Z",
        1777629600,
        1777629600.0,
    ],
)
def test_timestamp_forms_are_the_same_utc_instant(stamp):
    asked = parse_query_line(line(timestamp=stamp), CONTRACTS, now=NOW)["asked_at"]
    assert asked == datetime(2026, 5, 1, 10, 0, 0) and asked.tzinfo is None


def test_fractional_seconds_and_the_future_limit():
    assert parse_timestamp(1777629600.25, NOW) == datetime(2026, 5, 1, 10, 0, 0, 250000)
    assert parse_timestamp("2026-05-02T12:00:00Z", NOW) == datetime(2026, 5, 2, 12)  # exactly a day ahead is fine
    aware_now = datetime(2026, 5, 1, 14, 0, tzinfo=UTC)
    with pytest.raises(QueryLogError, match="future timestamp"):
        parse_timestamp("2026-05-02T14:00:01", aware_now)
    with pytest.raises(QueryLogError, match="future timestamp"):
        parse_timestamp("2999-01-01T00:00:00Z")  # default now: the current time


def test_a_valid_row_gets_its_defaults():
    assert parse_query_line(line(), CONTRACTS, now=NOW) == {
        "query_id": None,
        "question": "Who may terminate?",
        "contract_id": "c-train",
        "asked_at": datetime(2026, 5, 1, 10),
        "answer": "",
        "latency_s": None,
        "adapter": "",
        "arm": "",
    }
    full = parse_query_line(
        line(query_id="q-1", answer="Either party.", latency_s=2, contract_id="c-eval"), CONTRACTS, now=NOW
    )
    assert (full["query_id"], full["answer"], full["latency_s"], full["contract_id"]) == (
        "q-1",
        "Either party.",
        2.0,
        "c-eval",
    )
    assert isinstance(full["latency_s"], float)
    assert parse_query_line(line(latency_s=0), CONTRACTS, now=NOW)["latency_s"] == 0.0


def test_inbox_reads_only_complete_files_in_name_order(tmp_path):
    assert read_query_inbox(tmp_path / "missing", CONTRACTS, now=NOW) == ([], [])
    drop(tmp_path, "b.jsonl", [line(query_id="b1")])
    drop(tmp_path, "a.jsonl", [line(query_id="a1"), "", "  ", line(question="no id", latency_s=0.4)])
    drop(tmp_path, "c.jsonl.tmp", [line(query_id="t1"), '{"half": '])  # still being written
    drop(tmp_path, ".d.jsonl", ["garbage"])
    drop(tmp_path, "notes.txt", ["garbage"])
    drop(tmp_path / "sub", "e.jsonl", [line(query_id="deep")])
    rows, rejects = read_query_inbox(Inbox(str(tmp_path)), CONTRACTS, now=NOW)
    assert rejects == []
    assert [(r["query_id"], r["file"], r["line"]) for r in rows] == [
        ("a1", "a.jsonl", 1),
        (default_query_id("a.jsonl", 4, line(question="no id", latency_s=0.4)), "a.jsonl", 4),
        ("b1", "b.jsonl", 1),
    ]
    assert all(tuple(r) == QUERY_COLUMNS for r in rows)
    assert len(rows[1]["query_id"]) == 16 and int(rows[1]["query_id"], 16) >= 0 and rows[1]["latency_s"] == 0.4
    assert read_query_inbox(str(tmp_path), CONTRACTS, now=NOW) == (rows, [])  # the same ids on a re-read


def test_default_ids_differ_by_file_line_and_text():
    ids = {
        default_query_id("a.jsonl", 1, "x"),
        default_query_id("b.jsonl", 1, "x"),
        default_query_id("a.jsonl", 2, "x"),
        default_query_id("a.jsonl", 1, "y"),
    }
    assert len(ids) == 4


def test_duplicate_query_ids_keep_the_first_and_name_where_it_was(tmp_path):
    drop(tmp_path, "1.jsonl", [line(query_id="x", answer="first"), line(query_id="y", latency_s=-1)])
    drop(tmp_path, "2.jsonl", [line(query_id="y"), line(query_id="x", answer="second"), line(query_id="y")])
    rows, rejects = read_query_inbox(tmp_path, CONTRACTS, now=NOW)
    assert [(r["query_id"], r["file"], r["answer"]) for r in rows] == [("x", "1.jsonl", "first"), ("y", "2.jsonl", "")]
    assert [(r["file"], r["line"]) for r in rejects] == [("1.jsonl", 2), ("2.jsonl", 2), ("2.jsonl", 3)]
    assert "latency_s -1 is out of range" in rejects[0]["reason"]  # an invalid row does not claim its id
    assert rejects[1]["reason"] == "duplicate query_id 'x' (already seen in file 1.jsonl line 1)"
    assert rejects[2]["reason"] == "duplicate query_id 'y' (already seen in file 2.jsonl line 1)"
    assert all(tuple(r) == REJECT_COLUMNS for r in rejects)


def test_bom_crlf_non_utf8_and_long_lines(tmp_path):
    tmp_path.joinpath("1.jsonl").write_bytes(
        b"\xef\xbb\xbf"
        + line(query_id="bom").encode()
        + b"\r\n"
        + b'{"question": "caf\xe9"}\n'
        + b"x" * 900
        + b"\n"
        + line(query_id="ok").encode()
    )
    os.utime(tmp_path / "1.jsonl", (time.time() - 60, time.time() - 60))  # settled: its last line is whole
    rows, rejects = read_query_inbox(tmp_path, CONTRACTS, now=NOW)
    assert [(r["query_id"], r["line"]) for r in rows] == [("bom", 1), ("ok", 4)]
    assert rejects[0]["line"] == 2 and rejects[0]["reason"] == "not valid UTF-8: byte 0xe9 at position 17"
    assert rejects[0]["raw"] == '{"question": "caf\ufffd"}'
    assert rejects[1]["reason"].startswith("invalid JSON") and rejects[1]["raw"] == "x" * 500


def test_now_is_fixed_once_for_the_whole_read(tmp_path):
    drop(
        tmp_path,
        "1.jsonl",
        [
            line(query_id="soon", timestamp="2026-05-02T11:00:00Z"),
            line(query_id="late", timestamp="2026-05-03T00:00:00Z"),
        ],
    )
    rows, rejects = read_query_inbox(tmp_path, CONTRACTS, now=datetime(2026, 5, 1, 12, tzinfo=UTC))
    assert [r["query_id"] for r in rows] == ["soon"]
    assert [r["line"] for r in rejects] == [2] and rejects[0]["reason"].startswith("future timestamp")


def test_a_line_still_being_written_waits_for_the_next_read(tmp_path):
    (tmp_path / "1.jsonl").write_bytes(line(query_id="a").encode() + b"\n" + line(query_id="b").encode()[:20])
    rows, rejects = read_query_inbox(tmp_path, CONTRACTS, now=NOW)
    assert [r["query_id"] for r in rows] == ["a"] and rejects == []  # the fragment is neither a row nor a reject
    with (tmp_path / "1.jsonl").open("ab") as f:
        f.write(line(query_id="b").encode()[20:] + b"\n")
    rows, rejects = read_query_inbox(tmp_path, CONTRACTS, now=NOW)
    assert [r["query_id"] for r in rows] == ["a", "b"] and rejects == []
